"""isolation: a plain 1 KB handler (``GET /plain``, one request after another,
a new connection each) under web.py's own server, a process of its own
(``bench.py --child bench_isolation serve PORT``; default settings: nice=10,
memory store), while 2 CPU-bound pure-Python jobs run in that server vs while
none do: the jobs are started inside the server (``GET /spin``), with
``executor="processes"`` or ``executor="threads"``, and cancelled with
``job.cancel()`` at the end of each block (``GET /stop``).  Rounds rotate the
order of the three blocks (none, process jobs, thread jobs); the table has the
p90 latencies over all rounds: process jobs vs none (the target), thread jobs
vs none (reported).  The notes add medians, how long the server's threads
waited on a run queue per request, how busy the machine was, how much CPU
the jobs got and how long their cancels took."""

import glob
import json
import os
import statistics
import sys
import threading
import time

from _harness import (
    BENCH_PY,
    KB_TEXT,
    Row,
    fmt_time,
    http_get,
    percentile,
    plain_latencies,
    ratio_row,
    tests_on_path,
)
import web

from web_background import DEFAULTS, background, configure, threaddb

JOBS = 2  # CPU-bound jobs running during a "with" block
SPIN_MAX_SECONDS = 60.0  # whatever it is asked, a spin job ends by itself after this
SERVER_MAX_SECONDS = 300.0  # the server exits by itself after this
REPORT_EVERY = 0.25  # s between two lines of a spin job
SIDES = ("none", "processes", "threads")


def spin(seconds):
    """Pure-Python arithmetic until cancelled (or ``seconds``, at most
    SPIN_MAX_SECONDS); a line every REPORT_EVERY s: ``spin <loops> <CPU
    seconds of this thread> <wall seconds>`` (the first at once)."""
    t0 = time.monotonic()
    deadline = t0 + min(seconds, SPIN_MAX_SECONDS)
    loops, x, report = 0, 1, t0
    while True:
        now = time.monotonic()
        if now >= report:
            print("spin %d %.4f %.4f" % (loops, time.thread_time(), now - t0), flush=True)
            report = now + REPORT_EVERY
        if now >= deadline:
            return loops
        for _ in range(2000):
            x = (x * 1103515245 + 12345) % 2147483648
        loops += 1


spin_process = background(executor="processes")(spin)
spin_thread = background(executor="threads")(spin)


class Plain:
    def GET(self):
        return KB_TEXT


class Spin:
    def GET(self):
        """Start ``n`` spin jobs on ``executor``; their ids."""
        q = web.input(executor="processes", n=str(JOBS), seconds="30")
        start = spin_process if q.executor == "processes" else spin_thread
        return json.dumps([start(float(q.seconds)).id for _ in range(int(q.n))])


class Running:
    def GET(self):
        """Whether every job of ``ids`` has printed its first line (its loop runs)."""
        ids = web.input(ids="").ids.split(",")
        return json.dumps(all(threaddb[i].output.startswith("spin ") for i in ids))


class Stop:
    def GET(self):
        """Cancel every job of ``ids``; how each ended, how long its cancel took
        (``cancel()`` to ended) and its last line."""
        got = []
        for job_id in web.input(ids="").ids.split(","):
            job = threaddb[job_id]
            t0 = time.perf_counter()
            job.cancel()
            ended = job.wait(10)
            took = time.perf_counter() - t0
            lines = job.output.splitlines()
            got.append({"status": str(job.status) if ended else "still running", "cancel": took,
                        "last": lines[-1] if lines else ""})
        return json.dumps(got)


APP = web.application(("/plain", "Plain", "/spin", "Spin", "/running", "Running", "/stop", "Stop"),
                      {"Plain": Plain, "Spin": Spin, "Running": Running, "Stop": Stop}, autoreload=False)


def child(what, port):
    """``bench.py --child bench_isolation serve PORT``: APP under web.py's own server on 127.0.0.1."""
    if what != "serve":
        raise SystemExit("bench_isolation: unknown child %r" % what)
    configure(**dict(DEFAULTS, store="memory://"))
    timer = threading.Timer(SERVER_MAX_SECONDS, os._exit, (3,))  # never outlive a lost parent
    timer.daemon = True
    timer.start()
    web.httpserver.runsimple(APP.wsgifunc(), ("127.0.0.1", int(port)))


def get_json(port, target):
    status, _, body, _ = http_get(port, target, timeout=30)
    if status != 200:
        raise RuntimeError("GET %s -> %d %r" % (target, status, body[:300]))
    return json.loads(body)


def start_jobs(port, executor):
    """Start JOBS spin jobs in the server; their ids once every one's loop runs."""
    ids = get_json(port, "/spin?executor=%s&n=%d&seconds=%g" % (executor, JOBS, SPIN_MAX_SECONDS))
    deadline = time.monotonic() + 20
    while not get_json(port, "/running?ids=" + ",".join(ids)):
        if time.monotonic() > deadline:
            raise RuntimeError("the %s jobs did not start within 20 s" % executor)
        time.sleep(0.01)
    return ids


def stop_jobs(port, ids, executor):
    ended = get_json(port, "/stop?ids=" + ",".join(ids))
    bad = [e for e in ended if e["status"] != "cancelled"]
    if bad:
        raise RuntimeError("%s jobs did not end cancelled: %r" % (executor, bad))
    return ended


def run_queue_wait(pid):
    """Seconds the threads of process ``pid`` have waited on a run queue, in
    all (runnable, not running: /proc/PID/task/*/schedstat); None when unknown."""
    total = None
    for path in glob.glob("/proc/%d/task/*/schedstat" % pid):
        try:
            with open(path) as f:
                total = (total or 0) + int(f.read().split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            pass
    return total


def cpu_times():
    """(busy, total) CPU seconds of the whole machine so far (/proc/stat; busy:
    not idle nor waiting for I/O), or None."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - ticks[3] - ticks[4]) / hz, sum(ticks) / hz


def run(ctx):
    """Rows 'isolation': p90 of GET /plain with 2 CPU-bound process jobs (and
    thread jobs, reported) running in the server vs none."""
    tests_on_path()
    from servers import Server, free_port

    rounds = 4 * ctx.scale
    block = 1.8  # seconds of sequential GET /plain per block
    settle = 0.1  # s between the jobs' loops running and the block
    took = {side: [] for side in SIDES}
    bad = {side: 0 for side in SIDES}
    waits = {side: [] for side in SIDES}  # the server's run-queue wait per request, each block
    busy = {side: [] for side in SIDES}  # the machine's busy fraction, each block
    ended = {side: [] for side in SIDES[1:]}
    port = free_port()
    server = Server([sys.executable, BENCH_PY, "--child", "bench_isolation", "serve", str(port)], port).start()
    try:
        plain_latencies(port, 0.3)  # warm-up: the server's threads
        for executor in SIDES[1:]:  # warm-up: the fork server, started on the first process job
            stop_jobs(port, start_jobs(port, executor), executor)
        for r in range(rounds):
            k = r % len(SIDES)
            for side in SIDES[k:] + SIDES[:k]:
                ids = start_jobs(port, side) if side != "none" else None
                try:
                    time.sleep(settle)
                    w0, c0 = run_queue_wait(server.proc.pid), cpu_times()
                    got, failed = plain_latencies(port, block)
                    w1, c1 = run_queue_wait(server.proc.pid), cpu_times()
                finally:
                    if ids is not None:
                        ended[side] += stop_jobs(port, ids, side)
                took[side] += got
                bad[side] += failed
                if w0 is not None and w1 is not None and got:
                    waits[side].append((w1 - w0) / len(got))
                if c0 is not None and c1 is not None and c1[1] > c0[1]:
                    busy[side].append((c1[0] - c0[0]) / (c1[1] - c0[1]))
        output = server.output()
    finally:
        server.stop()
    if "Traceback" in output:
        raise RuntimeError("the server logged errors:\n" + output[-3000:])

    p90 = {side: percentile(took[side], 0.9) for side in SIDES}

    def median_of(values, fmt):
        return fmt(statistics.median(values)) if values else "n/a"

    def summary(side):
        xs = took[side]
        return ("%d requests, median %s, p90 %s, max %s, %d not 200; run-queue wait of the server's threads %s "
                "per request; machine busy %s" % (
                    len(xs), fmt_time(statistics.median(xs)), fmt_time(p90[side]), fmt_time(max(xs)), bad[side],
                    median_of(waits[side], fmt_time), median_of(busy[side], lambda x: "%.0f%%" % (100 * x))))

    def jobs_summary(side):
        runs = [e["last"].split() for e in ended[side]]
        cpu = [float(r[2]) / float(r[3]) for r in runs if len(r) == 4 and float(r[3]) > 0]
        cancels = [e["cancel"] for e in ended[side]]
        return "each job got %s of a CPU, cancel() to ended %s (max %s)" % (
            median_of(cpu, lambda x: "%.0f%%" % (100 * x)), fmt_time(statistics.median(cancels)),
            fmt_time(max(cancels)))

    ctx.notes.append(
        "isolation: web.py's own server (cheroot, 10 threads; default settings: memory store, nice=%d) in a "
        "process of its own; %d rounds, each a %s block of sequential GET /plain (1 KB, new connection each, "
        "10 ms apart) with no jobs, with %d CPU-bound pure-Python jobs on executor=\"processes\", and with %d on "
        "executor=\"threads\" (started in the server, their loops running %s before the block, job.cancel() "
        "after it), in rotating order; medians of the blocks, and machine busy = share of all %d CPUs' time not "
        "idle (/proc/stat). None: %s. Process jobs: %s; %s. Thread jobs: %s (that wait counts the jobs' own "
        "threads too); %s" % (
            DEFAULTS["nice"], rounds, fmt_time(block), JOBS, JOBS, fmt_time(settle), os.cpu_count() or 0,
            summary("none"), summary("processes"), jobs_summary("processes"), summary("threads"),
            jobs_summary("threads")))
    process_row = ratio_row("plain request p90, %d CPU-bound process jobs vs none" % JOBS,
                            p90["processes"], p90["none"], "<=", 1.5)
    thread_row = ratio_row("plain request p90, %d CPU-bound thread jobs vs none" % JOBS,
                           p90["threads"], p90["none"], "report", None)
    return [Row("isolation", *process_row), Row(None, *thread_row)]
