"""history: what a long history costs, on each store, N=10,000 retained
finished jobs vs N=100 side by side: the dashboard's JSON (what its page polls
every second) and its peak memory, the CLI's ``list`` (per listed job, and its
``--status`` filter with no match), a start at the ``max_jobs`` cap, 10,000
jobs (each with a ``key=``) expiring at once while jobs run and print, and the
idle CPU of a process running 100 silent jobs."""

import contextlib
import io
import os
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc

from _harness import WAIT, Row, alternate, fmt_time, per_call, ratio_row
import web

import web_background
import web_background.maintenance
from web_background import DEFAULTS, background, configure
from web_background import cli
from web_background.jobs import get_runner
from web_background.stores.memory import MemoryStore

REDIS = True  # run with ctx.redis_url
SMALL, BIG = 100, 10_000
KINDS = ("memory", "SQLite", "Redis")

DASHBOARD = web.application(("/jobs", web_background.dashboard(allow=lambda: True)), {}, autoreload=False)


@background
def quick():
    pass


@background
def printing(seconds, gate):
    """Print a numbered line every 10 ms for ``seconds`` (or until ``gate`` is set)."""
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline and not gate.is_set():
        print("line %d" % i)
        i += 1
        time.sleep(0.01)


@background
def silent(gate):
    gate.wait(WAIT)


def _store_spec(kind, ctx, tmp, name):
    """A fresh, empty store of ``kind``: a Store object (memory), or a URL."""
    if kind == "memory":
        return MemoryStore()
    if kind == "SQLite":
        return "sqlite:///" + os.path.join(tmp, name + ".db")
    import redis

    db = {"small": 1, "big": 2, "expire": 3, "idle": 4, "cap-small": 5, "cap-big": 6}[name]
    url = ctx.redis_url.rsplit("/", 1)[0] + "/%d" % db
    redis.Redis.from_url(url).flushdb()
    return url


def _use(spec, **settings):
    configure(**dict(DEFAULTS, store=spec, **settings))
    return get_runner()


def _fill(n, finished_at, key=False, output=True):
    """``n`` finished jobs in the runner's store, created one µs apart (a line of output each)."""
    store = get_runner().store
    base = time.time() - 3600
    for i in range(n):
        job_id = "h%07d%s" % (i, os.urandom(4).hex())
        record = {"id": job_id, "status": "done" if i % 10 else "failed", "name": "report_%d" % (i % 7),
                  "created": base + i * 1e-6, "started": base, "finished": finished_at, "progress": None,
                  "result": None, "error": None, "cancel": False, "heartbeat": None}
        if key:
            record["key"] = "nightly-%d" % i
        store.create(record)
        if key:
            store.claim(record["key"], job_id)
        if output:
            store.append(job_id, "report %d: 42 rows\n" % i)


def _dashboard_json():
    r = DASHBOARD.request("/jobs/?_format=json")
    if not r.status.startswith("200"):
        raise RuntimeError("dashboard -> %s %r" % (r.status, r.data[:200]))
    return r


def _peak(fn):
    """Peak Python memory (tracemalloc) of one call of fn, in bytes."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _cli_list(spec, *extra):
    """Seconds for the CLI's ``list`` (in this process, output to a buffer); its line count."""
    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = cli.main(["--store", spec, "list"] + list(extra))
    took = time.perf_counter() - t0
    if code != 0:
        raise RuntimeError("list exited %s" % code)
    return took, out.getvalue().count("\n") - 1


def _history_rows(kind, ctx, tmp):
    """Dashboard JSON, its peak memory and the CLI's list, N=BIG vs N=SMALL."""
    specs = {}
    for name, n in (("small", SMALL), ("big", BIG)):
        specs[name] = _store_spec(kind, ctx, tmp, name)
        _use(specs[name], max_jobs=2 * BIG, ttl=10 * 3600)
        _fill(n, time.time())
    rounds, calls = 6, 20 * ctx.scale

    def dashboard(name):
        def block():
            _use(specs[name], max_jobs=2 * BIG, ttl=10 * 3600)
            _dashboard_json()  # warm
            return per_call(_dashboard_json, calls)
        return block

    big, small = alternate(rounds, dashboard("big"), dashboard("small"))
    label = "dashboard JSON, %s, N=10,000 vs N=100" % kind
    rows = [Row("dashboard %s" % kind, *ratio_row(label, min(big), min(small), "<=", 2.0))]
    peaks = {}
    for name in ("big", "small"):
        _use(specs[name], max_jobs=2 * BIG, ttl=10 * 3600)
        _dashboard_json()
        peaks[name] = min(_peak(_dashboard_json) for _ in range(3))
    grow = (peaks["big"] - peaks["small"]) / 1e6
    ok = grow <= 2.0
    rows.append(Row("dashboard peak %s" % kind, "| a dashboard request's peak memory, %s, N=10,000 vs N=100 "
                    "(tracemalloc) | %.2f MB | %.2f MB | %+.2f MB | within +2 MB %s |" % (
                        kind, peaks["big"] / 1e6, peaks["small"] / 1e6, grow, "met" if ok else "MISSED"), ok))
    if kind == "memory":  # the CLI reads a store another process can reach
        return rows
    lists = {}
    for name in ("big", "small"):
        _use(specs[name], max_jobs=2 * BIG, ttl=10 * 3600)
        took, lines = min(_cli_list(specs[name]) for _ in range(3))
        if lines != (BIG if name == "big" else SMALL):
            raise RuntimeError("list printed %d jobs" % lines)
        lists[name] = took
    per_job = (lists["big"] - lists["small"]) / (BIG - SMALL)
    ok = per_job <= 50e-6
    rows.append(Row("cli list %s" % kind, "| CLI list, %s, a listed job ((N=10,000 - N=100) / 9,900) | %s | - | - "
                    "| <= 50 µs %s |" % (kind, fmt_time(per_job), "met" if ok else "MISSED"), ok))

    def no_match(name):
        def block():
            _use(specs[name], max_jobs=2 * BIG, ttl=10 * 3600)
            took, lines = _cli_list(specs[name], "--status", "cancelled")
            if lines:
                raise RuntimeError("list --status cancelled printed %d jobs" % lines)
            return took
        return block

    big, small = alternate(rounds, no_match("big"), no_match("small"))
    rows.append(Row("cli status %s" % kind, *ratio_row(
        "CLI list --status with no match, %s, N=10,000 vs N=100" % kind, min(big), min(small), "<=", 1.5)))
    ctx.notes.append("history %s: CLI list of every job %s (N=10,000) vs %s (N=100)" % (
        kind, fmt_time(lists["big"]), fmt_time(lists["small"])))
    return rows


def _start_at_cap(kind, ctx, tmp):
    """A start (the call returning) with the store at ``max_jobs`` finished jobs, N=BIG vs N=SMALL."""
    specs = {}
    for name, n in (("cap-small", SMALL), ("cap-big", BIG)):
        specs[name] = _store_spec(kind, ctx, tmp, name)
        _use(specs[name], max_jobs=n, workers=8, queue_limit=1000)
        _fill(n, time.time(), output=False)
    starts = 50 * ctx.scale

    def block(name):
        def run():
            _use(specs[name], max_jobs=BIG if name == "cap-big" else SMALL, workers=8, queue_limit=1000)
            jobs, took = [], []
            for _ in range(starts):
                t0 = time.perf_counter()
                jobs.append(quick())
                took.append(time.perf_counter() - t0)
            for job in jobs:
                job.wait(WAIT)
            return sorted(took)[len(took) // 2]
        return run

    big, small = alternate(6, block("cap-big"), block("cap-small"))
    label = "a start at the max_jobs cap, %s, N=10,000 vs N=100 (medians)" % kind
    return [Row("start at cap %s" % kind, *ratio_row(label, min(big), min(small), "<=", 1.5))]


def _expiring(kind, ctx, tmp):
    """10,000 finished jobs with ``key=`` passing their ttl at once while 3 jobs print."""
    spec = _store_spec(kind, ctx, tmp, "expire")
    _use(spec, ttl=3600.0, max_jobs=2 * BIG)  # no job has started: nothing prunes while it fills
    finished = time.time()
    _fill(BIG, finished, key=True, output=False)
    ttl = time.time() - finished + 1.5  # every one of them is past it 1.5 s from now
    runner = _use(spec, ttl=ttl, max_jobs=2 * BIG)
    gate = threading.Event()
    store = runner.store
    spent = []
    prune = store.prune

    def timed_prune(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return prune(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t0)

    store.prune = timed_prune
    try:
        jobs = [printing(8.0, gate) for _ in range(3)]
        ends = {j.id: [] for j in jobs}
        beats = {j.id: [] for j in jobs}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = time.monotonic()
            for job in jobs:
                record = store.get(job.id) or {}
                ends[job.id].append((now, record.get("end")))
                beats[job.id].append((now, record.get("heartbeat")))
            if store.page(limit=0).counts.get("done", 0) == 0 and now > deadline - 14:
                break
            time.sleep(0.005)
        left = store.page(limit=0).counts
        gate.set()
        for job in jobs:
            job.wait(WAIT)
    finally:
        store.prune = prune
    interrupted = sum(1 for j in jobs if j.status == "interrupted")
    work = sum(spent)

    def gaps(series):
        """Longest time a value did not change, over every job (from its first value on)."""
        longest = 0.0
        for points in series.values():
            last_t, last_v = None, None
            for t, v in points:
                if v is None:
                    continue
                if v != last_v:
                    if last_t is not None:
                        longest = max(longest, t - last_t)
                    last_t, last_v = t, v
        return longest

    out_gap, beat_gap = gaps(ends), gaps(beats)
    beat_late = max(0.0, beat_gap - web_background.maintenance.HEARTBEAT_INTERVAL)
    ok_work = work <= 0.5 and left.get("done", 0) == 0 and left.get("failed", 0) == 0
    ok_gaps = out_gap <= 0.5 and beat_late <= 0.5 and interrupted == 0
    ctx.notes.append("history %s: 10,000 jobs expiring: %d prune slices, store work %s, the longest slice %s; "
                     "left afterwards: %s; longest output gap %s, heartbeat interval %s; %d running jobs "
                     "interrupted" % (kind, len(spent), fmt_time(work), fmt_time(max(spent or [0])),
                                      {s: n for s, n in left.items() if n}, fmt_time(out_gap),
                                      fmt_time(beat_gap), interrupted))
    return [Row("expire %s" % kind, "| 10,000 jobs with key= expiring at once, %s: store work | %s | - | - "
                "| <= 0.5 s %s |" % (kind, fmt_time(work), "met" if ok_work else "MISSED"), ok_work),
            Row("expire gaps %s" % kind, "| ... meanwhile, %s: longest output gap / heartbeat late / jobs "
                "interrupted | %s / %s / %d | - | - | <= 0.5 s / 0.5 s / 0 %s |" % (
                    kind, fmt_time(out_gap), fmt_time(beat_late), interrupted, "met" if ok_gaps else "MISSED"),
                ok_gaps)]


def _idle_cpu(kind, ctx, tmp):
    """CPU time of this process per second while it runs 100 silent jobs."""
    n = 100
    _use(_store_spec(kind, ctx, tmp, "idle"), workers=n, queue_limit=n)
    gate = threading.Event()
    jobs = [silent(gate) for _ in range(n)]
    try:
        deadline = time.monotonic() + 30
        while sum(1 for j in jobs if j.status == "running") < n and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # settled
        seconds = 3.0 * ctx.scale
        c0, t0 = time.process_time(), time.monotonic()
        time.sleep(seconds)
        per_second = (time.process_time() - c0) / (time.monotonic() - t0)
    finally:
        gate.set()
        for job in jobs:
            job.wait(WAIT)
    ok = per_second <= 0.010
    return [Row("idle cpu %s" % kind, "| idle CPU with 100 running silent jobs, %s | %.1f ms/s | - | - "
                "| <= 10 ms/s %s |" % (kind, per_second * 1e3, "met" if ok else "MISSED"), ok)]


def run(ctx):
    tmp = tempfile.mkdtemp(prefix="wb-bench-history-")
    rows = []
    try:
        for kind in KINDS:
            rows += _history_rows(kind, ctx, tmp)
        for kind in KINDS:
            rows += _start_at_cap(kind, ctx, tmp)
        for kind in KINDS:
            rows += _expiring(kind, ctx, tmp)
        for kind in KINDS:
            rows += _idle_cpu(kind, ctx, tmp)
    finally:
        configure(**dict(DEFAULTS, store="memory://"))
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    sys.exit("run it through benchmarks/bench.py history")
