"""process-start: the time from the call that starts a tiny job (it prints one
line at once, then stays running ``PAUSE`` s) to the first poll that shows the
line, for (a) the process executor (``@background(executor="processes")``,
the memory store, polled with the returned ``Job``'s ``.output``) vs (b) a
plain RQ job (``Queue.enqueue``, the line saved in ``job.meta``, polled with
``get_meta()``), run by a stock ``rq worker -c rqbench_settings`` (preloaded,
as in the first-line rows, whose helpers these are) on the runner's
throw-away redis-server.  Both print rqbench_jobs' line; every poll loop is
the same (``POLL_PAUSE`` s between polls); rounds alternate the order; the
table has medians.  The notes add (a') the process executor with the job
printing its line with ``flush=True`` (where the time of (a) goes)."""

import statistics
import time

import rqbench_jobs
from _harness import Row, RQWorker, finished_job, fmt_time, ratio_row, stop_fork_server
from bench_first_line import (
    POLL_PAUSE,
    RQ_SETTINGS,
    end_wb,
    first_line_kinds,
    job_output,
    plain_rq_kind,
)

from web_background import DEFAULTS, background, configure
from web_background.executors import child

REDIS = True  # run with ctx.redis_url and ctx.rq_command

PAUSE = 0.05  # s each job stays running after its line (still live when seen)


def first_line_flushed(tag, pause=0.0):
    """rqbench_jobs.first_line, its line flushed at once (``print(..., flush=True)``)."""
    print(rqbench_jobs.line_for(tag), flush=True)
    if pause:
        time.sleep(min(pause, rqbench_jobs.MAX_PAUSE))
    return tag


# At import, so that the fork server (started on the first process job) preloads their modules.
line_process = background(executor="processes")(rqbench_jobs.first_line)
line_process_flushed = background(executor="processes")(first_line_flushed)


def run(ctx):
    """Row 'first line visible, process executor vs plain RQ' (medians)."""
    import redis

    rounds = 30 if ctx.scale == 1 else 60
    warmup = 2
    conn = redis.Redis.from_url(ctx.redis_url)
    worker = None
    try:
        configure(**dict(DEFAULTS, store="memory://"))
        worker = RQWorker(ctx.rq_command, ctx.redis_url, rqbench_jobs.QUEUE, settings=RQ_SETTINGS)
        finished_job(line_process, "warm-up", 0)  # starts the fork server (not measured)
        worker.wait_registered(conn)
        kinds = {  # name: (start, poll, wait for the end)
            "process executor": (lambda tag: line_process(tag, PAUSE), job_output, end_wb),
            "plain RQ": plain_rq_kind(conn, rqbench_jobs.QUEUE, worker, PAUSE),
            "process executor, flush=True": (lambda tag: line_process_flushed(tag, PAUSE), job_output, end_wb),
        }
        got = first_line_kinds(kinds, rounds, warmup)
    finally:
        stop_fork_server()
        if worker is not None:
            worker.stop()
        conn.close()

    found = [p["preloaded"] for p in got["plain RQ"]]
    if not all(found):
        raise RuntimeError("plain RQ: %d/%d work-horses found web_background already imported, expected all" % (
            sum(found), len(found)))

    def med(name, key):
        return statistics.median([p[key] for p in got[name]])

    def gap(name, since, until):
        return fmt_time(statistics.median([p[until] - p[since] for p in got[name]]))

    for name in got:
        ctx.notes.append(
            "process start, %s: %d rounds (+%d warm-up), medians from the call: returned %s, %s printed %s, "
            "visible %s (min %s, max %s); printed -> visible %s; %g polls (median, %s pause); seen while the "
            "job still ran: %d/%d" % (
                name, rounds, warmup, fmt_time(med(name, "call")),
                "RQ work-horse started %s," % fmt_time(med(name, "rq started")) if name == "plain RQ"
                else "marked running %s," % fmt_time(med(name, "body started")),
                fmt_time(med(name, "printed")), fmt_time(med(name, "visible")),
                fmt_time(min(p["visible"] for p in got[name])), fmt_time(max(p["visible"] for p in got[name])),
                gap(name, "printed", "visible"), med(name, "polls"), fmt_time(POLL_PAUSE),
                sum(p["live"] for p in got[name]), len(got[name])))
    a, b, f = med("process executor", "visible"), med("plain RQ", "visible"), med("process executor, flush=True",
                                                                                    "visible")
    ctx.notes.append(
        "process start, where the time goes (medians): the call -> the job's print %s (the fork server hands "
        "the job to a spare child it forked and prepared ahead of time), print -> visible %s: a young job's "
        "lines go out at once (line-buffered for its first %g s, then batched every FLUSH=%g s, "
        "web_background/executors/child.py), the collecting thread of the web process reads them into the "
        "job's sink, which job.output flushes into the store; with print(..., flush=True) in the job "
        "(a'): visible %s, %.2fx plain RQ's %s" % (
            fmt_time(med("process executor", "printed")), gap("process executor", "printed", "visible"),
            child.LINE_BUFFERED, child.FLUSH, fmt_time(f), f / b, fmt_time(b)))
    return [Row("process-start", *ratio_row(
        "first line visible, process executor (memory store) vs plain RQ (medians)", a, b, "<=", 0.33))]

