"""cancel: the time from ``job.cancel()`` to the first poll of ``job.status``
that shows ``cancelled``, for (a) a process job (``executor="processes"``,
the memory store) in ``time.sleep(3600)``, (b) an RQ job
(``@background(queue=...)``, the runner's throw-away redis-server as the
store) in ``time.sleep(3600)``, run by a stock ``rq worker -c
rqbench_settings`` (preloaded, as in the first-line rows), and (c) a thread
job (the memory store) in a pure-Python loop that never prints.  (a) and (b)
are rqbench_jobs.sleeper, cancelled once its line is visible; (c) once the
job is running and ``SETTLE`` s later.  Rounds rotate the order of the three;
every poll loop is the same (``POLL_PAUSE`` s between polls).  The table has
the medians against the absolute target (at most ``TARGET`` s each); the notes
add the spread and what the cancel took on each path."""

import statistics
import sys
import time

import rqbench_jobs
from _harness import Row, RQWorker, absolute_row, finished_job, fmt_time, stop_fork_server
from bench_first_line import RQ_SETTINGS

import web_background.maintenance
from web_background import DEFAULTS, background, configure

REDIS = True  # run with ctx.redis_url and ctx.rq_command

TARGET = 0.5  # s from cancel() to "cancelled" visible, each kind
POLL_PAUSE = 0.0005  # s between two polls (of the line before the cancel, of the status after)
SETTLE = 0.02  # s the thread job runs its loop before it is cancelled
WAIT = 20.0  # s any job may take to start, or to end once cancelled, before the benchmark gives up
SPIN_MAX_SECONDS = 60.0  # whatever it is asked, the thread job's loop ends by itself after this


def spin_quiet(seconds):
    """A pure-Python loop that never prints, until cancelled (or ``seconds``, at most SPIN_MAX_SECONDS)."""
    deadline = time.monotonic() + min(seconds, SPIN_MAX_SECONDS)
    x = 1
    while time.monotonic() < deadline:
        for _ in range(1000):
            x = (x * 1103515245 + 12345) % 2147483648
    return x


# At import, so that the fork server (started on the first process job) preloads their modules.
sleep_process = background(executor="processes")(rqbench_jobs.sleeper)
spin_thread = background(executor="threads")(spin_quiet)


def poll_until(check, what):
    deadline = time.monotonic() + WAIT
    polls = 0
    while True:
        polls += 1
        if check():
            return polls
        if time.monotonic() > deadline:
            raise RuntimeError("%s: not within %ss" % (what, WAIT))
        time.sleep(POLL_PAUSE)


def cancel_round(start, ready, tag):
    """Start a job, wait until ``ready(job)``, cancel it and poll its status
    until it shows cancelled: {"cancel": cancel() returned, "visible":
    cancelled seen (both in seconds after cancel() was called), "polls"}."""
    job = start(tag)
    poll_until(lambda: ready(job), "job %s (%s) ready" % (job.id, tag))
    t0 = time.perf_counter()
    if not job.cancel():
        raise RuntimeError("job %s (%s) had already ended: %s %s" % (job.id, tag, job.status, job.error))
    t1 = time.perf_counter()
    polls = poll_until(lambda: job.status in ("cancelled", "done", "failed", "interrupted"),
                       "job %s (%s) ended after cancel()" % (job.id, tag))
    t2 = time.perf_counter()
    if job.status != "cancelled":
        raise RuntimeError("job %s (%s) ended %s, not cancelled: %s" % (job.id, tag, job.status, job.error))
    return {"cancel": t1 - t0, "visible": t2 - t0, "polls": polls}


def run(ctx):
    """Rows 'cancel': cancel() to status cancelled visible, process job, RQ job
    (both in time.sleep(3600)) and a silent thread job in a Python loop."""
    import redis

    rounds = 20 * ctx.scale
    warmup = 1
    conn = redis.Redis.from_url(ctx.redis_url)
    worker = None
    stores = {"process": "memory://", "RQ": ctx.redis_url, "thread": "memory://"}
    current = {"store": None}

    def line_visible(tag):
        marker = "first line %s " % tag
        return lambda job: marker in job.output

    def running(job):
        if job.status == "running":
            time.sleep(SETTLE)  # into its loop
            return True
        return False

    try:
        worker = RQWorker(ctx.rq_command, ctx.redis_url, rqbench_jobs.QUEUE, settings=RQ_SETTINGS)
        sleep_rq = background(queue=rqbench_jobs.QUEUE)(rqbench_jobs.sleeper)
        kinds = {  # name: (start, ready)
            "process": (sleep_process, line_visible),
            "RQ": (sleep_rq, line_visible),
            "thread": (lambda tag: spin_thread(SPIN_MAX_SECONDS), lambda tag: running),
        }
        configure(**dict(DEFAULTS, store="memory://"))
        finished_job(spin_thread, 0)  # nothing measured yet: the thread pool
        cancel_round(sleep_process, line_visible("warm-up"), "warm-up")  # starts the fork server
        worker.wait_registered(conn)
        names = list(kinds)
        got = {name: [] for name in names}
        for r in range(warmup + rounds):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                if current["store"] != stores[name]:
                    configure(**dict(DEFAULTS, store=stores[name]))
                    current["store"] = stores[name]
                start, ready = kinds[name]
                tag = "cancel-%s-%d" % (name, r)
                phases = cancel_round(start, ready(tag), tag)
                if r >= warmup:
                    got[name].append(phases)
    except Exception:
        if worker is not None:
            ctx.notes.append("cancel: the rq worker's log: " + worker.output())
        raise
    finally:
        configure(**dict(DEFAULTS, store="memory://"))
        stop_fork_server()
        if worker is not None:
            worker.stop()
        conn.close()

    def med(name, key):
        return statistics.median([p[key] for p in got[name]])

    for name, what in (("process", "a process job (executor=\"processes\", memory store) in time.sleep(3600)"),
                       ("RQ", "an RQ job (real rq worker, Redis store) in time.sleep(3600)"),
                       ("thread", "a thread job (memory store) in a pure-Python loop, no output")):
        xs = sorted(p["visible"] for p in got[name])
        ctx.notes.append(
            "cancel, %s: %d rounds (+%d warm-up); cancel() returned after %s, status cancelled seen after %s "
            "(median; min %s, p90 %s, max %s; %g polls, %s apart)" % (
                what, rounds, warmup, fmt_time(med(name, "cancel")), fmt_time(med(name, "visible")),
                fmt_time(xs[0]), fmt_time(xs[min(len(xs) - 1, int(len(xs) * 0.9))]), fmt_time(xs[-1]),
                med(name, "polls"), fmt_time(POLL_PAUSE)))
    ctx.notes.append(
        "cancel, the paths: a process job is sent SIGUSR1 by the web process (Cancelled raised in the sleep), "
        "its end comes back on its control socket; an RQ job's cancel() only sets the cancel flag in Redis, "
        "which the work-horse's maintenance thread reads every FLUSH_INTERVAL=%g s, counted from the job's "
        "start, and answers with SIGUSR1 to its own main thread: cancelled here a few ms after the job's start "
        "(once its line is visible), the RQ job waits nearly a whole FLUSH_INTERVAL (a cancel at a random "
        "moment would wait half of one on average); a thread job gets Cancelled as an "
        "asynchronous exception at its next bytecode once it holds the GIL (switch interval %g ms)" % (
            web_background.maintenance.FLUSH_INTERVAL, 1000 * sys.getswitchinterval()))
    return [
        Row("cancel-process", *absolute_row(
            "cancel() to status cancelled, process job in time.sleep(3600) (memory store; median)",
            med("process", "visible"), TARGET)),
        Row("cancel-rq", *absolute_row(
            "cancel() to status cancelled, RQ job in time.sleep(3600) (rq worker, Redis store; median)",
            med("RQ", "visible"), TARGET)),
        Row("cancel-thread", *absolute_row(
            "cancel() to status cancelled, thread job in a pure-Python loop, no output (median)",
            med("thread", "visible"), TARGET)),
    ]
