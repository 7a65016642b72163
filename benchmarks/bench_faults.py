"""faults: what a process job costs the web process at its limits.  (a) "50 MB
result back": the time from starting a process job that returns 50 MB
(``bytes``) to its ``result`` in the record (memory store), vs making, pickling
and unpickling the same value here: the hand-over must stay linear (target <= 2x).  (b) "web process RSS, 200 MB printed, max_output 1 MB":
the web process's peak RSS growth (``VmHWM`` after ``/proc/self/clear_refs``)
while a process job prints 200 MB with ``max_output`` = 1 MB, vs ``max_output``
itself (target: at most a few times it, not the 200 MB)."""

import pickle
import statistics
import time

from _harness import WAIT, Row, alternate, fmt_time, ratio_row, stop_fork_server

from web_background import DEFAULTS, background, configure

SIZE = 50_000_000
PRINTED_MB = 200
MAX_OUTPUT = 1_000_000


@background(executor="processes")
def returns_bytes(size):
    return b"r" * size


@background(executor="processes")
def prints_megabytes(megabytes):
    line = "x" * 1023
    for _ in range(megabytes * 1024):
        print(line)


def _status_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no %s in /proc/self/status" % key)


def result_back():
    t0 = time.perf_counter()
    job = returns_bytes(SIZE)
    if not job.wait(WAIT) or job.status != "done":
        raise RuntimeError("the 50 MB job ended %s: %s" % (job.status, job.error))
    if len(job.result) != SIZE:
        raise RuntimeError("the 50 MB result came back with %d bytes" % len(job.result))
    return time.perf_counter() - t0


def pickle_round_trip():
    t0 = time.perf_counter()
    value = b"r" * SIZE  # made, as the job makes it
    pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    return time.perf_counter() - t0


def rss_growth_mb():
    before = _status_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    job = prints_megabytes(PRINTED_MB)
    if not job.wait(WAIT) or job.status != "done":
        raise RuntimeError("the printing job ended %s: %s" % (job.status, job.error))
    return _status_mb("VmHWM") - before


def run(ctx):
    rounds = 5 * ctx.scale
    configure(**dict(DEFAULTS, store="memory://", max_output=MAX_OUTPUT))
    try:
        returns_bytes(10).wait(WAIT)  # starts the fork server (not measured)
        growths = [rss_growth_mb() for _ in range(3 * ctx.scale)]  # first: before 50 MB values grow the heap
        ours, base = alternate(rounds, result_back, pickle_round_trip)
    finally:
        configure(**dict(DEFAULTS, store="memory://"))
        stop_fork_server()
    text, ok = ratio_row("50 MB result back (process job vs make, pickle, unpickle)", min(ours), min(base), "<=", 2.0)
    growth = statistics.median(growths)
    limit = 10.0
    ok_rss = growth <= limit * MAX_OUTPUT / 1e6
    rss_text = "| web process RSS, %d MB printed, max_output 1 MB | %.1f MB | %.1f MB | %.2fx | <= %s %s |" % (
        PRINTED_MB, growth, MAX_OUTPUT / 1e6, growth / (MAX_OUTPUT / 1e6), "%.1fx" % limit,
        "met" if ok_rss else "MISSED")
    ctx.notes.append("faults: 50 MB result back, medians %s (job) vs %s (pickle round trip); RSS growth per run "
                     "%s MB" % (fmt_time(statistics.median(ours)), fmt_time(statistics.median(base)),
                                ", ".join("%.1f" % g for g in growths)))
    return [Row("50 MB result back", text, ok), Row("web process RSS, 200 MB printed", rss_text, ok_rss)]
