"""first-line: the time from the call that starts a tiny job (it prints one
line at once, then stays running ``RQ_PAUSE`` s) to the first poll that shows
the line, for (a) the thread executor (``@background``, polled with the
returned ``Job``'s ``.output``), (b) the RQ executor
(``@background(queue=...)``, same poll) and (c) a plain RQ job
(``Queue.enqueue``, the line saved in ``job.meta``, polled with the returned rq
``Job``'s ``get_meta()``); every poll loop is the same, ``POLL_PAUSE`` s between
polls.  The store is the runner's throw-away redis-server.  (b) and (c) are run
by one stock ``rq worker`` (the default forking Worker) started as the README
recommends, ``rq worker -c rqbench_settings`` (RQ's settings module,
benchmarks/rqbench_settings.py, which preloads the jobs of rqbench_jobs.py,
web_background, web.py and web_background.executors.rq before the worker
forks).  Rounds alternate the
order; the table has medians: RQ executor vs plain RQ, and plain RQ vs the
thread executor (the thread executor's speed-up).  The notes add the same with
a second worker started without the settings module (its own queue,
interleaved rounds), where the time goes, (a') the thread executor polled with
the store's own read, as another process sees it (no flush by the poll), and
the thread executor on the memory store.  The process-start and cancel rows
use its helpers (``first_line_kinds``, ``plain_rq_kind``, ``end_wb``, ...).
"""

import statistics
import sys
import time

from _harness import BENCH_DIR, Row, RQWorker, fmt_time, ratio_row

import web_background.jobs
import web_background.maintenance
from web_background import DEFAULTS, background, configure

REDIS = True  # run with ctx.redis_url and ctx.rq_command

RQ_PAUSE = 0.2  # s the first-line job stays running after its line (> FLUSH_INTERVAL: still live when seen)
POLL_PAUSE = 0.0002  # s between two polls of every first-line loop (the same loop for every kind)
FIRST_LINE_TIMEOUT = 30.0  # s any job of the first-line rows may take to show its line or to end
RQ_SETTINGS = "rqbench_settings"  # benchmarks/rqbench_settings.py: the preloaded worker's RQ settings module


def first_line_round(start, poll, tag):
    """Start a job printing the line of ``tag`` and poll until the line shows:
    (the job's handle, {phase: seconds after the call started}, polls made)."""
    marker = "first line %s " % tag
    w0, t0 = time.time(), time.perf_counter()
    handle = start(tag)
    t_call = time.perf_counter()
    polls = 0
    while True:
        text = poll(handle) or ""
        polls += 1
        if marker in text:
            break
        if time.perf_counter() - t0 > FIRST_LINE_TIMEOUT:
            raise RuntimeError("the line of %s was not visible within %ss" % (tag, FIRST_LINE_TIMEOUT))
        time.sleep(POLL_PAUSE)
    t1 = time.perf_counter()
    printed = float(text.split(marker, 1)[1].split()[0])  # time.time() in the job, when it printed
    return handle, {"w0": w0, "call": t_call - t0, "printed": printed - w0, "visible": t1 - t0}, polls


def first_line_kinds(kinds, rounds, warmup):
    """Run every kind ``warmup + rounds`` times, one job at a time, each kind
    going first in turn; {kind: [phases of each measured round]}, where phases
    are seconds after the start call ("call" returned, "printed", "visible",
    and what the kind's end function adds), "polls" and "live" (the line was
    seen before the job finished)."""
    names = list(kinds)
    got = {name: [] for name in names}
    for r in range(warmup + rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            start, poll, end = kinds[name]
            handle, phases, polls = first_line_round(start, poll, "%s-%d" % (name.replace(" ", "_"), r))
            ended = end(handle)  # nothing overlaps the next job
            w0 = phases.pop("w0")
            phases["polls"] = polls
            for key in ("rq started", "body started"):
                if ended.get(key) is not None:
                    phases[key] = ended[key] - w0
            phases["live"] = ended["finished"] is not None and w0 + phases["visible"] < ended["finished"]
            if "preloaded" in ended:
                phases["preloaded"] = ended["preloaded"]
            if r >= warmup:
                got[name].append(phases)
    return got


def rq_times(conn, job_id):
    """(started, ended) wall times of RQ job ``job_id``, as RQ recorded them (None: not yet)."""
    import rq

    j = rq.job.Job.fetch(job_id, connection=conn)
    return (j.started_at.timestamp() if j.started_at else None,
            j.ended_at.timestamp() if j.ended_at else None)


def end_wb(job, conn=None, worker=None):
    """Wait for a web_background job: its RQ start (with ``worker``: run by
    RQ, whose Redis is ``conn``), body start and end (wall times)."""
    if not job.wait(FIRST_LINE_TIMEOUT):
        raise RuntimeError("job %s did not end within %ss" % (job.id, FIRST_LINE_TIMEOUT))
    record = web_background.jobs.get_runner().store.get(job.id)
    if record["status"] != "done":
        raise RuntimeError("job %s ended %s: %s%s" % (job.id, record["status"], record["error"],
                                                     "\nworker:\n" + worker.output() if worker else ""))
    return {"rq started": rq_times(conn, job.id)[0] if worker else None, "body started": record["started"],
            "finished": record["finished"]}


def end_plain(job, conn, worker):
    """Wait for a plain RQ job: its RQ start and end (wall times), and whether
    its work-horse found web_background imported."""
    import rq

    deadline = time.monotonic() + FIRST_LINE_TIMEOUT
    while True:
        status = job.get_status(refresh=True)
        if status == rq.job.JobStatus.FINISHED:
            break
        if status in (rq.job.JobStatus.FAILED, rq.job.JobStatus.STOPPED, rq.job.JobStatus.CANCELED):
            raise RuntimeError("plain RQ job %s ended %s:\n%s" % (job.id, status, worker.output()))
        if time.monotonic() > deadline:
            raise RuntimeError("plain RQ job %s did not end within %ss" % (job.id, FIRST_LINE_TIMEOUT))
        time.sleep(0.005)
    started, ended = rq_times(conn, job.id)
    return {"rq started": started, "finished": ended, "preloaded": job.get_meta()["preloaded"]}


# The polls: each kind's lightest public read of the job it started, one round trip or few:
def job_output(job):  # the Job that @background returned: flush of this process's sink, get, read
    return job.output


def store_read(job):  # what another process reads: the store's own read, no flush first
    got = web_background.jobs.get_runner().store.read(job.id, 0)
    return got[0] if got else ""


def plain_meta(job):  # the rq Job that enqueue returned: one HGET of its meta
    return job.get_meta(refresh=True).get("line", "")


def plain_rq_kind(conn, queue_name, worker, pause=RQ_PAUSE):
    """The plain RQ kind of ``first_line_kinds``: (start, poll, end) of
    rqbench_jobs.plain_first_line enqueued on ``queue_name`` (Redis ``conn``),
    which ``worker`` (an _harness.RQWorker) runs."""
    import rq
    import rqbench_jobs

    queue = rq.Queue(queue_name, connection=conn)
    return (lambda tag: queue.enqueue(rqbench_jobs.plain_first_line, tag, pause), plain_meta,
            lambda job: end_plain(job, conn, worker))


def run(ctx):
    """Rows 'first line visible': thread executor, RQ executor and plain RQ, the
    RQ jobs run by a worker started with its settings module (preloaded); the
    notes add a worker without it, and the thread executor on the memory store."""
    import redis

    if BENCH_DIR not in sys.path:
        sys.path.insert(0, BENCH_DIR)
    import rqbench_jobs

    redis_url, rq_command, scale, notes = ctx.redis_url, ctx.rq_command, ctx.scale, ctx.notes
    rounds = 30 if scale == 1 else 60
    warmup = 2
    conn = redis.Redis.from_url(redis_url)
    line_thread = background(rqbench_jobs.first_line)
    workers = {}
    try:
        configure(**dict(DEFAULTS, store=redis_url))
        workers["preloaded"] = RQWorker(rq_command, redis_url, rqbench_jobs.QUEUE, settings=RQ_SETTINGS)
        workers["no preload"] = RQWorker(rq_command, redis_url, rqbench_jobs.QUEUE_COLD)
        for worker in workers.values():
            worker.wait_registered(conn)

        kinds = {  # name: (start, poll, wait for the end)
            "thread": (lambda tag: line_thread(tag, RQ_PAUSE), job_output, end_wb),
            "thread, store read": (lambda tag: line_thread(tag, RQ_PAUSE), store_read, end_wb),
        }
        for which, queue_name in (("", rqbench_jobs.QUEUE), (", no preload", rqbench_jobs.QUEUE_COLD)):
            worker = workers["no preload" if which else "preloaded"]
            line_rq = background(queue=queue_name)(rqbench_jobs.first_line)
            kinds["RQ executor" + which] = (
                lambda tag, line_rq=line_rq: line_rq(tag, RQ_PAUSE), job_output,
                lambda job, worker=worker: end_wb(job, conn, worker))
            kinds["plain RQ" + which] = plain_rq_kind(conn, queue_name, worker)
        got = first_line_kinds(kinds, rounds, warmup)
        # The thread executor on the default memory store (notes only), in its own rounds.
        configure(**dict(DEFAULTS, store="memory://"))
        got.update(first_line_kinds(
            {"thread, memory store": (lambda tag: line_thread(tag, RQ_PAUSE), job_output, end_wb)}, rounds, warmup))
    finally:
        configure(**dict(DEFAULTS, store="memory://"))
        for worker in workers.values():
            worker.stop()
        conn.close()

    for name, want in (("plain RQ", True), ("plain RQ, no preload", False)):
        found = [p["preloaded"] for p in got[name]]
        if found != [want] * len(found):
            raise RuntimeError("%s: %d/%d work-horses found web_background already imported, expected %s" % (
                name, sum(found), len(found), "all" if want else "none"))

    def med(name, key):
        values = [p[key] for p in got[name] if key in p]
        return statistics.median(values) if values else None

    def t(x):
        return "n/a" if x is None else fmt_time(x)

    for name in got:
        notes.append(
            "first line, %s: %d rounds (+%d warm-up), medians from the call: returned %s, %s%s printed %s, "
            "visible %s (min %s, max %s); %g polls (median, %s pause); seen while the job still ran: %d/%d" % (
                name, rounds, warmup, t(med(name, "call")),
                "" if med(name, "rq started") is None else "RQ work-horse started %s, " % t(med(name, "rq started")),
                "" if med(name, "body started") is None else "job body started %s, " % t(med(name, "body started")),
                t(med(name, "printed")), t(med(name, "visible")),
                t(min(p["visible"] for p in got[name])), t(max(p["visible"] for p in got[name])),
                med(name, "polls"), fmt_time(POLL_PAUSE), sum(p["live"] for p in got[name]), len(got[name])))

    def gap(name, since, until):
        return t(statistics.median([p[until] - p[since] for p in got[name]]))

    a, b, c = med("thread", "visible"), med("RQ executor", "visible"), med("plain RQ", "visible")
    b0, c0 = med("RQ executor, no preload", "visible"), med("plain RQ, no preload", "visible")
    notes.append("first line, the RQ rows' worker: stock `rq worker -c %s` (benchmarks/%s.py: REDIS_URL, QUEUES, "
                 "and it imports rqbench_jobs, web_background, so web.py too, and web_background.executors.rq, "
                 "once, before the worker forks); "
                 "every plain RQ work-horse of it found web_background imported. Without the settings module "
                 "(`rq worker --url URL --path benchmarks QUEUE`, its work-horses import the job modules each "
                 "time; same rounds, interleaved), medians: RQ executor visible %s (%.2fx its plain RQ, vs %.2fx "
                 "preloaded), plain RQ %s; RQ work-horse started -> job body started %s without vs %s with the "
                 "preload (the plain job's line printed %s vs %s after its work-horse started)" % (
                     RQ_SETTINGS, RQ_SETTINGS, t(b0), b0 / c0, b / c, t(c0),
                     gap("RQ executor, no preload", "rq started", "body started"),
                     gap("RQ executor", "rq started", "body started"),
                     gap("plain RQ, no preload", "rq started", "printed"), gap("plain RQ", "rq started", "printed")))
    notes.append("first line, where the preloaded RQ executor's time goes (medians): RQ work-horse started -> job "
                 "body started %s (in the work-horse: a new Redis connection for the store, reading the record "
                 "and marking it running); printed -> visible %s, vs %s for the plain job's save_meta(): the "
                 "line waits in the work-horse's sink until its flusher thread, started idle when the job is, "
                 "first wakes (it sleeps 0.25 s while it had no job, not TICK=%s s) or the job ends (RQ_PAUSE=%s s); "
                 "the thread executor polled with the store's own read (a') needs %s, vs %s when the poll flushes "
                 "its sink (a)" % (
                     gap("RQ executor", "rq started", "body started"), gap("RQ executor", "printed", "visible"),
                     gap("plain RQ", "printed", "visible"), web_background.maintenance.TICK, RQ_PAUSE,
                     t(med("thread, store read", "visible")), t(a)))
    notes.append("first line, what 50x would take: plain RQ's median %s / 50 = %s, while the thread executor's "
                 "start call alone returns after %s and its job prints the line %s after the call (medians; with a "
                 "Redis store the call makes 3 round trips, each job.output poll 2 or 3); the same thread executor "
                 "on the default memory store: visible %s (%.0fx faster than plain RQ)" % (
                     t(c), t(c / 50), t(med("thread", "call")), t(med("thread", "printed")),
                     t(med("thread, memory store", "visible")), c / med("thread, memory store", "visible")))
    rq_row = ratio_row("first line visible, RQ executor vs plain RQ (medians)", b, c, "<=", 1.3)
    thread_row = ratio_row("first line visible, plain RQ vs thread executor (medians; speed-up)", c, a, ">=", 50.0)
    return [Row("rq-vs-plain-rq", *rq_row), Row("thread-vs-plain-rq", *thread_row)]
