"""capture: a @background job printing 1M short lines (its own perf_counter
around the loop) vs the same loop printing into an io.StringIO in a plain
thread, on the memory store; the notes add start-to-finished (``job.wait``)
times.  ``capture_rounds`` is also the capture-sqlite and capture-redis rows'.
"""

import io
import statistics
import threading
import time

from _harness import WAIT, Row, alternate, finished_job, fmt_time, job_end, ratio_row

import web_background
from web_background import DEFAULTS, background, configure


@background
def print_lines(n):
    """The capture job: n short prints, timed from inside."""
    t0 = time.perf_counter()
    for i in range(n):
        print("line %d" % i)
    return time.perf_counter() - t0


def baseline_print_lines(n):
    """The same loop in a plain thread, into its own StringIO."""
    out = {}

    def body():
        buf = io.StringIO()
        t0 = time.perf_counter()
        for i in range(n):
            print("line %d" % i, file=buf)
        out["t"] = time.perf_counter() - t0
        out["len"] = len(buf.getvalue())

    t = threading.Thread(target=body, name="baseline")
    t.start()
    t.join(WAIT)
    if "t" not in out:
        raise RuntimeError("baseline thread did not finish in %ss" % WAIT)
    return out["t"], out["len"]


def capture_rounds(store, label, n, rounds, notes):
    """The capture rows: a @background job printing n short lines (the loop
    timed inside the job) vs the same loop into a StringIO in a plain thread,
    with ``configure(store=store)``; alternating rounds after a warm-up round of
    each.  The first measured job's output is read back whole from the store
    and compared; every later one's end offset is checked over HTTP.  Each job
    is deleted after its round, so the store is the same size every round.
    Returns (best loop in the job, best baseline)."""
    try:
        # Keep all of it (1M lines are ~11.9 MB): max_output is not what is measured.
        configure(**dict(DEFAULTS, store=store, max_output=max(16_000_000, 16 * n)))
        runner = web_background.jobs.get_runner()
        expected = "".join("line %d\n" % i for i in range(n))
        totals, checked = [], []

        def ours():
            t0 = time.perf_counter()
            job = finished_job(print_lines, n)
            totals.append(time.perf_counter() - t0)
            loop = job.result
            if not checked:  # once: everything printed is in the store, in order
                got = runner.store.read(job.id, 0)
                if got is None or got[0] != expected or got[1:] != (len(expected), 0):
                    raise RuntimeError("the %s store kept %r characters (cut %r), not the %d printed" % (
                        label, got and got[1], got and got[2], len(expected)))
                checked.append(True)
            elif job_end(job.id) != len(expected):
                raise RuntimeError("job kept %d characters, expected %d" % (job_end(job.id), len(expected)))
            runner.store.delete(job.id)
            return loop

        def base():
            t, length = baseline_print_lines(n)
            if length != len(expected):
                raise RuntimeError("baseline wrote %d characters, expected %d" % (length, len(expected)))
            return t

        base()  # warm-up
        ours()  # warm-up, checked whole; the measured jobs are checked by their end offset
        totals.clear()
        t_ours, t_base = alternate(rounds, ours, base)
    finally:
        configure(**dict(DEFAULTS, store="memory://"))
    a, b = min(t_ours), min(t_base)
    notes.append("capture, %s store: %d lines, %d rounds; loop in job best %s, median %s (all: %s); "
                 "baseline best %s, median %s; start-to-finished (job.wait) best %s, median %s (all: %s), "
                 "i.e. %s after the loop at best" % (
                     label, n, rounds, fmt_time(a), fmt_time(statistics.median(t_ours)),
                     ", ".join(fmt_time(x) for x in t_ours), fmt_time(b),
                     fmt_time(statistics.median(t_base)), fmt_time(min(totals)),
                     fmt_time(statistics.median(totals)), ", ".join(fmt_time(x) for x in totals),
                     fmt_time(min(tot - loop for tot, loop in zip(totals, t_ours)))))
    return a, b


def run(ctx):
    n = 1_000_000 * ctx.scale
    a, b = capture_rounds("memory://", "memory", n, 3 if ctx.scale == 1 else 5, ctx.notes)
    return [Row("capture", *ratio_row("capture %dM lines" % (n // 1_000_000), a, b, "<=", 2.0))]
