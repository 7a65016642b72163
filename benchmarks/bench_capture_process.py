"""capture-process: a process job (``executor="processes"``, the memory store,
``max_output`` raised so nothing is cut) printing 1M short lines vs the same
loop printing into an io.StringIO in a plain thread (the capture row's
baseline).  The row is the job's end-to-end time, from the call to every
line being in the store (``job.wait()``: a job's end is recorded after its
last output is flushed; the output is checked), vs the baseline's loop
(medians of alternating rounds); the notes add the loop as timed inside the
job's process and where the rest goes."""

import statistics
import time

from _harness import WAIT, Row, alternate, fmt_time, ratio_row, stop_fork_server
from bench_capture import baseline_print_lines

import web_background.jobs
from web_background import DEFAULTS, background, configure


def print_lines_timed(n):
    """The capture row's loop (n short prints), timed inside the job's process:
    (seconds of the loop, CPU seconds of it, time.time() at its start, at its end)."""
    w0, t0, c0 = time.time(), time.perf_counter(), time.thread_time()
    for i in range(n):
        print("line %d" % i)
    return time.perf_counter() - t0, time.thread_time() - c0, w0, time.time()


print_lines_process = background(executor="processes")(print_lines_timed)


def run(ctx):
    n = 1_000_000 * ctx.scale
    rounds = 5
    expected_length = sum(len("line %d\n" % i) for i in range(n))
    phases = []  # per measured job: {"total", "loop", "start", "drain"}
    try:
        # Keep all of it (1M lines are ~11.9 MB): max_output is not what is measured.
        configure(**dict(DEFAULTS, store="memory://", max_output=max(16_000_000, 16 * n)))
        runner = web_background.jobs.get_runner()

        def ours(check=False):
            w0, t0 = time.time(), time.perf_counter()
            job = print_lines_process(n)
            if not job.wait(WAIT):
                raise RuntimeError("job %s did not finish in %ss" % (job.id, WAIT))
            total = time.perf_counter() - t0
            w1 = time.time()
            if job.status != "done":
                raise RuntimeError("job %s ended %s: %s" % (job.id, job.status, job.error))
            got = runner.store.read(job.id, 0)
            if got is None or got[1:] != (expected_length, 0) or len(got[0]) != expected_length:
                raise RuntimeError("the store kept %r characters (cut %r), not the %d printed" % (
                    got and got[1], got and got[2], expected_length))
            if check and got[0] != "".join("line %d\n" % i for i in range(n)):
                raise RuntimeError("the store holds other text than the job printed")
            loop, cpu, loop_start, loop_end = job.result
            runner.store.delete(job.id)
            phases.append({"total": total, "loop": loop, "cpu": cpu, "start": loop_start - w0,
                           "drain": w1 - loop_end})
            return total

        def base():
            t, length = baseline_print_lines(n)
            if length != expected_length:
                raise RuntimeError("baseline wrote %d characters, expected %d" % (length, expected_length))
            return t

        base()  # warm-up
        ours(check=True)  # warm-up (starts the fork server), its output compared whole
        phases.clear()
        t_ours, t_base = alternate(rounds, ours, base)
    finally:
        configure(**dict(DEFAULTS, store="memory://"))
        stop_fork_server()
    a, b = statistics.median(t_ours), statistics.median(t_base)

    def med(key):
        return statistics.median([p[key] for p in phases])

    ctx.notes.append(
        "capture, process job (memory store, nice=%d): %d lines, %d alternating rounds; call -> all output in "
        "the store (job.wait) median %s (best %s; all: %s); inside the job's process the loop took median %s "
        "(%.2fx the baseline; best %s), %s of it on the CPU (the job's stdout: a write-through TextIOWrapper "
        "over a 64 KB buffer, flushed into a pipe), starting %s after the call, and the last line was in the "
        "store %s after the loop ended (the web process's collecting thread reading the pipe, the last flush "
        "into the store, the end recorded); baseline (the same loop into a StringIO in a plain thread) median "
        "%s, best %s" % (
            DEFAULTS["nice"], n, rounds, fmt_time(a), fmt_time(min(t_ours)),
            ", ".join(fmt_time(x) for x in t_ours), fmt_time(med("loop")), med("loop") / b,
            fmt_time(min(p["loop"] for p in phases)), fmt_time(med("cpu")), fmt_time(med("start")),
            fmt_time(med("drain")), fmt_time(b), fmt_time(min(t_base))))
    return [Row("capture-process", *ratio_row(
        "capture %dM lines through a process job, call to all output in the store, vs the same loop into a "
        "StringIO (medians)" % (n // 1_000_000), a, b, "<=", 2.0))]
