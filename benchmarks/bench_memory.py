"""memory: memory still held (tracemalloc, after gc.collect()) after 10k jobs
were started, finished and expired, vs before them; the notes add the RSS
delta over a second such run without tracemalloc."""

import gc
import os
import time
import tracemalloc

from _harness import ROOT, WAIT, Row, fmt_time, rss_bytes

import web_background
from web_background import DEFAULTS, background, configure, threaddb


@background
def tiny(i):
    print("job %d" % i)
    return i


def run_jobs(count, batch, store=None):
    """Start ``count`` tiny jobs, ``batch`` at a time, waiting for each batch;
    return the most records the store held after a batch (None if unknown)."""
    peak = None
    for start in range(0, count, batch):
        jobs = [tiny(i) for i in range(start, min(start + batch, count))]
        for job in jobs:
            if not job.wait(WAIT):
                raise RuntimeError("job %s did not finish in %ss" % (job.id, WAIT))
        del jobs
        held = len(getattr(store, "_jobs", ())) if store is not None else None
        if held is not None and (peak is None or held > peak):
            peak = held
    return peak


def expire_all(ttl):
    time.sleep(ttl * 4 + 0.05)
    left = len(list(threaddb))  # iterating threaddb expires
    gc.collect()
    return left


def run(ctx):
    count = 10_000 * ctx.scale
    batch = 500
    ttl = 0.05
    max_jobs = DEFAULTS["max_jobs"]
    configure(**dict(DEFAULTS, store="memory://", ttl=ttl, workers=8, queue_limit=batch, max_jobs=max_jobs))
    store = web_background.jobs.get_runner().store
    gc.collect()
    tracemalloc.start()
    try:
        run_jobs(1_000, batch)  # warm-up: pool threads, flusher, caches
        expire_all(ttl)
        before = tracemalloc.get_traced_memory()[0]
        snap_before = tracemalloc.take_snapshot()
        t0 = time.perf_counter()
        peak = run_jobs(count, batch, store)
        t_run = time.perf_counter() - t0
        left = expire_all(ttl)
        after = tracemalloc.get_traced_memory()[0]
        growth = tracemalloc.take_snapshot().compare_to(snap_before, "lineno")
    finally:
        tracemalloc.stop()
    del snap_before
    gc.collect()
    # RSS over the same run with tracemalloc off (its own tables would swamp RSS).
    rss_before = rss_bytes()
    run_jobs(count, batch)
    expire_all(ttl)
    rss_after = rss_bytes()
    delta = (after - before) / 1e6

    def where(frame):
        name = frame.filename
        name = os.path.relpath(name, ROOT) if name.startswith(ROOT + os.sep) else os.path.basename(name)
        return "%s:%d" % (name, frame.lineno)

    top = ", ".join("%s %+.0f KB" % (where(st.traceback[0]), st.size_diff / 1e3)
                    for st in growth[:3] if st.size_diff > 0)
    ctx.notes.append("memory: %d jobs in batches of %d (%s with tracemalloc on); left in threaddb after "
                     "expiry: %d; the store peaked at %s records (max_jobs=%d, ttl=%ss); largest growth: %s; "
                     "RSS delta over a second such run without tracemalloc: %s" % (
                         count, batch, fmt_time(t_run), left, peak, max_jobs, ttl, top or "none",
                         "n/a" if rss_before is None else "%+.2f MB" % ((rss_after - rss_before) / 1e6)))
    ok = abs(delta) <= 1.0
    return [Row("memory", "| %s | %.2f MB | %.2f MB | %+.3f MB | within 1 MB %s |" % (
        "memory after %dk jobs expired" % (count // 1000), after / 1e6, before / 1e6, delta,
        "met" if ok else "MISSED"), ok)]
