#!/usr/bin/env python3
"""Side-by-side benchmarks of web_background against plain Python / web.py.

Run from the repository root:

    python3 benchmarks/bench.py          # default sizes (about 3 minutes on 2 cores)
    python3 benchmarks/bench.py --long   # about 3x the counts, and a bigger load (notes only)

Every row is a ratio of two things measured in the same run, in alternating
rounds (A B, B A, A B, ...), so a shared, noisy machine affects both sides
alike.  Each side keeps its best round (the minimum time), which is the
least noisy estimate of what the code itself costs.

Rows:

  capture  a @background job printing N short lines (its own perf_counter
           around the loop) vs the same loop printing into an io.StringIO
           in a plain thread; the notes add start-to-finished (``job.wait``)
           times;
  poll     ``?_t=<id>&_format=json&_offset=<end>`` of a finished job holding
           50 MB of output vs the same poll of a 1 KB job;
  serve    ``?_t=<id>&_format=text`` of a finished 1 KB job vs a plain
           web.py handler returning the same 1 KB string;
  memory   memory still held (tracemalloc, after gc.collect()) after N jobs
           were started, finished and expired, vs before them;
  capture, SQLite
           the capture row with ``configure(store="sqlite:///<tmp>/jobs.db")``
           (the output moved to SQLite in batches by the flusher thread);
  poll by another process, SQLite
           two real web.py servers (this script with ``--serve``) on one
           SQLite file; a job runs in server A, printing a timestamped line
           every 10 ms; a tailing ``_format=json&_offset=<last end>`` poll
           answered by B vs the same poll answered by A, one new connection
           per request, in alternating blocks.  The notes add the visibility
           latency: B alone polling every ~5 ms, how long after a line was
           printed in A the first poll of B that shows it came back;
  watchers tests/apps.py under web.py's own server with a long job
           (``/ticker``) running: the median latency of plain requests
           (``GET /plain``, one after another, a new connection each) while
           100 Server-Sent Events clients watch that job (this script with
           ``--watch``, a process of its own: each client reads until its
           stream ends and reconnects after the server's ``retry:`` pause with
           ``Last-Event-ID``, as an EventSource does) vs while none do, in
           alternating blocks (medians).

The Redis rows run against one throw-away redis-server this script starts on
127.0.0.1 (a free port, no persistence) and stops at the end:

  capture, Redis
           the capture row (100k lines) with ``configure(store=<redis url>)``;
           no target (reported);
  first line visible
           the time from the call that starts a tiny job (it prints one line
           at once, then stays running ``RQ_PAUSE`` s) to the first poll that
           shows the line, for (a) the thread executor (``@background``,
           polled with the returned ``Job``'s ``.output``), (b) the RQ
           executor (``@background(queue=...)``, same poll) and (c) a plain
           RQ job (``Queue.enqueue``, the line saved in ``job.meta``, polled
           with the returned rq ``Job``'s ``get_meta()``); every poll loop is
           the same, ``POLL_PAUSE`` s between polls.  (b) and (c) are run by
           one stock ``rq worker`` (the default forking Worker) started as
           the README recommends, ``rq worker -c rqbench_settings`` (RQ's
           settings module, benchmarks/rqbench_settings.py, which preloads
           the jobs, web_background and web.py before the worker forks).
           Rounds alternate the order; the table has medians: RQ executor vs
           plain RQ, and plain RQ vs the thread executor (the thread
           executor's speed-up).  The notes add the same with a second
           worker started without the settings module (its own queue,
           interleaved rounds), where the time goes, (a') the thread executor
           polled with the store's own read, as another process sees it (no
           flush by the poll), and the thread executor on the memory store.

With ``--long``, the notes also have tests/reliability/test_load.py's load,
bigger: 1000 jobs of 40 lines on the memory store under web.py's own server,
followed by 16 clients (jobs started/s, polls/s, 5xx, lost lines).

Each side keeps its best round for the table, except the first-line and
watchers rows (medians); medians are in the notes.
"""

import argparse
import gc
import http.client
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from urllib.parse import urlsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "benchmarks")  # where rqbench_jobs.py, the RQ jobs, lives
sys.path.insert(0, ROOT)

import web  # noqa: E402

# Production settings: no debugger pages and no module reloader on every request
# (the reloader would add the same constant cost to both sides of each ratio).
web.config.debug = False

import web_background  # noqa: E402
from web_background import DEFAULTS, background, backgrounder, configure, threaddb  # noqa: E402

WAIT = 300.0  # seconds any single job may take before the benchmark gives up

# -- the jobs --------------------------------------------------------------------


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


@background
def emit(total, line_len=100):
    """Write ``total`` characters of output as lines of ``line_len``."""
    line = "x" * (line_len - 1) + "\n"
    for _ in range(total // line_len):
        sys.stdout.write(line)
    rest = total % line_len
    if rest:
        sys.stdout.write("y" * rest)


@background
def write_text(text):
    sys.stdout.write(text)


@background
def tiny(i):
    print("job %d" % i)
    return i


# -- the web.py application --------------------------------------------------------

KB_TEXT = ("0123456789abcdef" * 64)[:1023] + "\n"  # 1 KB, what the 1 KB job prints


class JobPage:
    @backgrounder
    def GET(self):
        write_text(KB_TEXT)


class Plain:
    def GET(self):
        return KB_TEXT


APP = web.application(("/job", "JobPage", "/plain", "Plain"),
                      {"JobPage": JobPage, "Plain": Plain}, autoreload=False)


# What the servers of the cross-process row serve (``bench.py --serve PORT STORE``).

TICK_MAX_SECONDS = 120.0  # the longest a ticker job may run, whatever it is asked
SERVE_MAX_SECONDS = 600.0  # a server started with --serve exits by itself after this


@background
def ticker(seconds, delay):
    """Print ``<n> <time.time()>`` every ``delay`` s for ``seconds`` s (or until cancelled)."""
    deadline = time.monotonic() + min(seconds, TICK_MAX_SECONDS)
    i = 0
    while time.monotonic() < deadline:
        print("%d %.6f" % (i, time.time()))
        i += 1
        time.sleep(delay)
    return i


class Tick:
    @backgrounder
    def GET(self):
        q = web.input(seconds="30", delay="0.01")
        ticker(float(q.seconds), max(float(q.delay), 0.001))


class Stop:
    def GET(self):
        job = threaddb.get(web.input(id="").id)
        if job is None:
            raise web.notfound("no such job\n")
        return "cancelled\n" if job.cancel() else "already ended\n"


SERVE_APP = web.application(("/tick", "Tick", "/stop", "Stop"), {"Tick": Tick, "Stop": Stop},
                            autoreload=False)


def serve(port, store):
    """Run SERVE_APP under web.py's own server (what ``app.run()`` uses) on 127.0.0.1."""
    configure(**dict(DEFAULTS, store=store))
    timer = threading.Timer(SERVE_MAX_SECONDS, os._exit, (3,))  # never outlive a lost parent
    timer.daemon = True
    timer.start()
    web.httpserver.runsimple(SERVE_APP.wsgifunc(), ("127.0.0.1", port))


def request(path):
    r = APP.request(path)
    if not r.status.startswith("200"):
        raise RuntimeError("%s -> %s %r" % (path, r.status, r.data[:200]))
    return r


def finished_job(func, *args):
    job = func(*args)
    if not job.wait(WAIT):
        raise RuntimeError("job %s did not finish in %ss" % (job.id, WAIT))
    if job.status != "done":
        raise RuntimeError("job %s ended %s: %s" % (job.id, job.status, job.error))
    return job


def job_end(job_id):
    """The job's output end offset, read over HTTP (X-Job-Offset)."""
    r = request("/job?_t=%s&_format=text&_offset=999999999999" % job_id)
    return int(r.headers["X-Job-Offset"])


# -- measuring ---------------------------------------------------------------------


def alternate(rounds, a, b):
    """Call a() and b() ``rounds`` times each, alternating which goes first;
    return the lists of their results."""
    ra, rb = [], []
    for k in range(rounds):
        if k % 2 == 0:
            ra.append(a())
            rb.append(b())
        else:
            rb.append(b())
            ra.append(a())
    return ra, rb


def per_call(fn, n):
    """Seconds per call of fn over a block of n calls."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def fmt_time(seconds):
    if seconds >= 1:
        return "%.3f s" % seconds
    if seconds >= 1e-3:
        return "%.2f ms" % (seconds * 1e3)
    return "%.1f µs" % (seconds * 1e6)


def load_average():
    try:
        return "%.2f" % os.getloadavg()[0]
    except OSError:
        return "n/a"


def rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


# -- the benchmarks ----------------------------------------------------------------


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
        runner = web_background.jobs._runner()
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


def bench_capture(scale, notes):
    n = 1_000_000 * scale
    a, b = capture_rounds("memory://", "memory", n, 3 if scale == 1 else 5, notes)
    return ("capture %dM lines" % (n // 1_000_000), a, b, 2.0)


def bench_poll(scale, notes):
    big, small = 50_000_000, 1_000
    polls = 2000 * scale
    blocks = 10
    configure(**dict(DEFAULTS, store="memory://", max_output=60_000_000))
    t0 = time.perf_counter()
    big_job = finished_job(emit, big)
    t_big_job = time.perf_counter() - t0
    small_job = finished_job(emit, small)
    big_end, small_end = job_end(big_job.id), job_end(small_job.id)
    if (big_end, small_end) != (big, small):
        raise RuntimeError("ends %r, expected %r" % ((big_end, small_end), (big, small)))
    url_big = "/job?_t=%s&_format=json&_offset=%d" % (big_job.id, big_end)
    url_small = "/job?_t=%s&_format=json&_offset=%d" % (small_job.id, small_end)
    for url, end in ((url_big, big_end), (url_small, small_end)):
        body = json.loads(request(url).data)
        if body["output"] != "" or body["offset"] != end or body["status"] != "done":
            raise RuntimeError("unexpected poll answer %r" % (body,))
    n = polls // blocks
    t_big, t_small = alternate(blocks, lambda: per_call(lambda: request(url_big), n),
                               lambda: per_call(lambda: request(url_small), n))
    a, b = min(t_big), min(t_small)
    notes.append("poll: %d polls of each in %d alternating blocks; best per poll %s (50 MB) vs %s (1 KB); "
                 "the 50 MB job took %s to write" % (polls, blocks, fmt_time(a), fmt_time(b),
                                                      fmt_time(t_big_job)))
    del big_job
    configure(**dict(DEFAULTS, store="memory://"))  # drop the 50 MB
    return ("poll json at end, 50 MB vs 1 KB job", a, b, 1.5)


def bench_serve(scale, notes):
    requests = 2000 * scale
    blocks = 10
    configure(**dict(DEFAULTS, store="memory://"))
    job = finished_job(write_text, KB_TEXT)
    url_job = "/job?_t=%s&_format=text" % job.id
    got_job, got_plain = request(url_job).data, request("/plain").data
    if got_job != got_plain or got_job != KB_TEXT.encode():
        raise RuntimeError("job served %r..., plain %r..." % (got_job[:40], got_plain[:40]))
    n = requests // blocks
    t_job, t_plain = alternate(blocks, lambda: per_call(lambda: request(url_job), n),
                               lambda: per_call(lambda: request("/plain"), n))
    a, b = min(t_job), min(t_plain)
    notes.append("serve: %d requests of each in %d alternating blocks; best per request %s (job text) "
                 "vs %s (plain handler)" % (requests, blocks, fmt_time(a), fmt_time(b)))
    return ("serve 1 KB job text vs plain handler", a, b, 1.5)


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


def bench_memory(scale, notes):
    count = 10_000 * scale
    batch = 500
    ttl = 0.05
    max_jobs = DEFAULTS["max_jobs"]
    configure(**dict(DEFAULTS, store="memory://", ttl=ttl, workers=8, queue_limit=batch, max_jobs=max_jobs))
    store = web_background.jobs._runner().store
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
    notes.append("memory: %d jobs in batches of %d (%s with tracemalloc on); left in threaddb after "
                 "expiry: %d; the store peaked at %s records (max_jobs=%d, ttl=%ss); largest growth: %s; "
                 "RSS delta over a second such run without tracemalloc: %s" % (
                     count, batch, fmt_time(t_run), left, peak, max_jobs, ttl, top or "none",
                     "n/a" if rss_before is None else "%+.2f MB" % ((rss_after - rss_before) / 1e6)))
    return ("memory after %dk jobs expired" % (count // 1000), after / 1e6, before / 1e6, delta)


def bench_capture_sqlite(scale, notes):
    n = 1_000_000 * scale
    tmp = tempfile.mkdtemp(prefix="wb-bench-")
    try:
        a, b = capture_rounds("sqlite:///%s" % os.path.join(tmp, "jobs.db"), "SQLite", n,
                              3 if scale == 1 else 5, notes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ("capture %dM lines, SQLite store" % (n // 1_000_000), a, b, 3.0)


def http_get(port, target, timeout=10.0, method="GET", headers=None):
    """(status, headers, body, seconds) of a request (a GET unless told) on a new
    connection to 127.0.0.1:port."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, target, headers=dict(headers or {}, Connection="close"))
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    return response.status, response.headers, body, time.perf_counter() - t0


def tests_on_path():
    """tests/ (servers.py: real servers) and tests/reliability/ (test_load.py) importable."""
    for folder in (os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "reliability")):
        if folder not in sys.path:
            sys.path.insert(0, folder)


class Tail:
    """One client following a job's output on one server, as a page's script would."""

    def __init__(self, port, job_id):
        self.port, self.job_id = port, job_id
        self.offset = 0
        self.text = []  # every chunk received, in order
        self.seen = []  # (client time the poll came back, index of the last complete line so far)
        self.lines = 0
        self.status = None

    def poll(self):
        status, _, body, took = http_get(
            self.port, "/tick?_t=%s&_format=json&_offset=%d" % (self.job_id, self.offset))
        back = time.time()
        if status != 200:
            raise RuntimeError("poll on port %d -> %d %r" % (self.port, status, body[:200]))
        answer = json.loads(body)
        if answer["cut"] or (answer["output"] and answer["offset"] != self.offset + len(answer["output"])):
            raise RuntimeError("poll from %d gave a gap: %r" % (self.offset, answer))
        self.offset, self.status = answer["offset"], answer["status"]
        if answer["output"]:
            self.text.append(answer["output"])
            self.lines += answer["output"].count("\n")
            self.seen.append((back, self.lines))
        return took

    def printed(self):
        """[(index, printed at)] of every complete line received; checks they are consecutive."""
        got = []
        for k, line in enumerate("".join(self.text).split("\n")[:self.lines]):
            i, t = line.split()
            if int(i) != k:
                raise RuntimeError("line %d of the output is %r" % (k, line))
            got.append(float(t))
        return got


def bench_poll_processes(scale, notes):
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from servers import Server, free_port  # noqa: E402

    polls = 300 * scale
    blocks = 6 if scale == 1 else 10
    watch = 3.0 * scale  # seconds of B-only polling for the visibility latency
    pace = 0.005  # seconds between those polls
    tick = 0.01  # the job prints a line every tick seconds
    tmp = tempfile.mkdtemp(prefix="wb-bench-")
    store = "sqlite:///%s" % os.path.join(tmp, "jobs.db")
    me = os.path.abspath(__file__)
    servers = []
    try:
        for _ in range(2):
            port = free_port()
            servers.append(Server([sys.executable, me, "--serve", str(port), store], port).start())
        a, b = servers
        seconds = min(TICK_MAX_SECONDS, 30.0 * scale)  # far more than the polls below take
        status, headers, body, _ = http_get(a.port, "/tick?seconds=%s&delay=%s" % (seconds, tick))
        if status != 303:
            raise RuntimeError("starting the job on A -> %d %r" % (status, body[:200]))
        job_id = dict(p.split("=", 1) for p in urlsplit(headers["Location"]).query.split("&"))["_t"]
        tail_a, tail_b = Tail(a.port, job_id), Tail(b.port, job_id)
        t_started = time.monotonic()
        for _ in range(200):  # wait (at most ~2 s) until B sees output: both sides poll a live job
            tail_b.poll()
            if tail_b.lines:
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("B never saw the job's output")
        for _ in range(10):  # warm-up: each server's pool threads and their SQLite connections
            tail_a.poll()
            tail_b.poll()
        n = polls // blocks
        t_b, t_a = alternate(blocks, lambda: sum(tail_b.poll() for _ in range(n)) / n,
                             lambda: sum(tail_a.poll() for _ in range(n)) / n)

        # visibility: only B polls, so what it sees was written by A's flusher thread
        watch_start = time.time()
        mark = len(tail_b.seen)
        t_end = time.monotonic() + watch
        while time.monotonic() < t_end:
            tail_b.poll()
            time.sleep(pace)
        if tail_b.status != "running" or time.monotonic() - t_started > seconds - 1:
            raise RuntimeError("the job was no longer running (%s) while measured" % tail_b.status)
        status, _, body, _ = http_get(a.port, "/stop?id=%s" % job_id)
        if status != 200:
            raise RuntimeError("cancel -> %d %r" % (status, body[:200]))
        for _ in range(500):  # at most ~5 s for the cancel to land and be visible to B
            tail_b.poll()
            if tail_b.status != "running":
                break
            time.sleep(0.01)
        tail_a.poll()
        final_b, final_a = tail_b.status, tail_a.status

        printed_b, printed_a = tail_b.printed(), tail_a.printed()
        if printed_a[:len(printed_b)] != printed_b[:len(printed_a)]:
            raise RuntimeError("A and B served different output")
        latencies = []
        last = tail_b.seen[mark - 1][1] if mark else 0
        for back, upto in tail_b.seen[mark:]:
            for k in range(last, upto):
                if printed_b[k] >= watch_start + 0.2:  # not the backlog from before the watch
                    latencies.append(back - printed_b[k])
            last = upto
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if not latencies:
        raise RuntimeError("no line was printed during the visibility watch")
    a_best, b_best = min(t_a), min(t_b)
    lat_med, lat_max = statistics.median(latencies), max(latencies)
    notes.append("poll by another process, SQLite: %d tailing json polls each in %d alternating blocks, "
                 "new connection each; per poll by B (other process) best %s, median %s; by A (job's "
                 "process) best %s, median %s; B ended at offset %d, A at %d; job status after cancel: "
                 "B %s, A %s" % (
                     polls, blocks, fmt_time(b_best), fmt_time(statistics.median(t_b)), fmt_time(a_best),
                     fmt_time(statistics.median(t_a)), tail_b.offset, tail_a.offset, final_b, final_a))
    notes.append("visibility in another process (SQLite): %d lines printed by A every %s while only B "
                 "polled (every ~%s + the poll) for %s; printed -> first B poll back with it: median %s, "
                 "max %s (goal <= 250 ms: %s)" % (
                     len(latencies), fmt_time(tick), fmt_time(pace), fmt_time(watch), fmt_time(lat_med),
                     fmt_time(lat_max), "met" if lat_max <= 0.25 else "MISSED"))
    return ("poll by another process, SQLite (B/A)", b_best, a_best, 2.0), lat_max <= 0.25


# -- watchers: plain requests while 100 clients watch one job ---------------------------

WATCHERS = 100  # Server-Sent Events clients of one job
WATCH_MAX_SECONDS = 120.0  # a watcher process (--watch) exits by itself after this
WATCH_READY_SECONDS = 20.0  # at most this long for every watcher's first answer
WATCH_STAGGER = 0.01  # s between two watchers' first connects (100 clients arrive over 1 s, not at one instant)


def watch(port, target, count):
    """``bench.py --watch PORT TARGET COUNT`` (a process of its own, so that its
    threads do not share the measuring process's GIL): COUNT clients that watch
    ``target`` as the page's EventSource does: one http.client connection each,
    ``Accept: text/event-stream``, read until the stream ends, reconnect after
    the server's ``retry:`` pause with ``Last-Event-ID``, and stop at the
    ``end`` event.  The clients start WATCH_STAGGER s apart: 100 connects at
    one instant overflow the listen backlog of web.py's server (5) and wait for
    TCP SYN retries, 1 s, 3 s, 7 s, ...  Prints ``ready N`` once all have had an answer (N: how many
    had, after WATCH_READY_SECONDS at most); when stdin closes, closes every
    connection and prints one JSON line of counts."""
    timer = threading.Timer(WATCH_MAX_SECONDS, os._exit, (3,))  # never outlive a lost parent
    timer.daemon = True
    timer.start()
    import socket

    stop, ready, lock = threading.Event(), threading.Event(), threading.Lock()
    conns, answered = set(), set()
    counts = {"requests": 0, "held": 0, "events": 0, "errors": 0, "ended": 0, "statuses": {}}

    def client(i):
        last_id, retry = None, 3.0  # EventSource's own default until the server says
        stop.wait(i * WATCH_STAGGER)
        while not stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                conns.add(conn)
            event = None
            try:
                conn.request("GET", target, headers=dict(
                    {"Accept": "text/event-stream"}, **({} if last_id is None else {"Last-Event-ID": last_id})))
                response = conn.getresponse()
                with lock:
                    counts["requests"] += 1
                    counts["statuses"][response.status] = counts["statuses"].get(response.status, 0) + 1
                    answered.add(i)
                    if len(answered) == count:
                        ready.set()
                for raw in response:
                    field, _, value = raw.decode("utf-8").rstrip("\n").partition(": ")
                    if field == "retry":
                        retry = int(value) / 1000
                        if retry < 2:  # the server gives a held stream 1000 ms, the others 2000
                            with lock:
                                counts["held"] += 1
                    elif field == "id":
                        last_id = value
                    elif field == "event":
                        event = value
                        with lock:
                            counts["events"] += 1
            except (OSError, http.client.HTTPException, ValueError):
                if not stop.is_set():
                    with lock:
                        counts["errors"] += 1
            finally:
                with lock:
                    conns.discard(conn)
                conn.close()
            if event == "end":  # the job ended: the page closes its EventSource
                with lock:
                    counts["ended"] += 1
                return
            stop.wait(retry)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    ready.wait(WATCH_READY_SECONDS)
    print("ready %d" % len(answered), flush=True)
    sys.stdin.read()  # until the parent closes it
    stop.set()
    with lock:
        for conn in conns:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except (AttributeError, OSError):
                pass
    for t in threads:
        t.join(5)
    counts["left running"] = sum(t.is_alive() for t in threads)
    print(json.dumps(counts), flush=True)


class Watchers:
    """A ``--watch`` process of ``count`` clients of ``target``, started and
    ready (every client answered once) when the constructor returns."""

    def __init__(self, port, target, count):
        self.began = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--watch", str(port), target, str(count)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        t0 = time.perf_counter()
        line = self.proc.stdout.readline().split()  # within WATCH_READY_SECONDS, or the process died
        self.took = time.perf_counter() - t0
        self.answered = int(line[1]) if line[:1] == ["ready"] else 0

    def stop(self):
        """Close every watcher; their counts (a dict, with "seconds": how long they ran)."""
        try:
            out, _ = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, _ = self.proc.communicate()
        lines = out.strip().splitlines()
        counts = json.loads(lines[-1]) if lines else {"errors": "no counts: exit %s" % self.proc.returncode}
        counts["seconds"] = time.perf_counter() - self.began
        return counts


def plain_latencies(port, seconds, pause=0.01):
    """Seconds of each GET /plain (new connection each), one after another with
    ``pause`` between, for ``seconds``; and how many did not answer 200."""
    took, bad = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            status, _, _, t = http_get(port, "/plain")
            took.append(t)
            bad += status != 200
        except OSError:
            bad += 1
        time.sleep(pause)
    return took, bad


def bench_watchers(scale, notes):
    """Row 'watchers': GET /plain on tests/apps.py under web.py's own server
    while 100 SSE clients watch one running /ticker job vs while none do, in
    alternating blocks; a new job (cancelled after) for each round."""
    tests_on_path()
    from servers import apps_server, free_port  # noqa: E402

    rounds = 3 if scale == 1 else 6
    block = 2.5  # seconds of plain requests per block
    took = {"with": [], "without": []}
    bad = {"with": 0, "without": 0}
    counts, ready, running = [], [], 0
    with apps_server(free_port()) as server:  # default settings: max_streams 4, stream_seconds 15
        plain_latencies(server.port, 0.3)  # warm-up
        for r in range(rounds):
            status, headers, body, _ = http_get(server.port, "/ticker")
            if status != 303:
                raise RuntimeError("starting /ticker -> %d %r" % (status, body[:200]))
            location = urlsplit(headers["Location"])
            target = "%s?%s" % (location.path, location.query)
            for side in ("without", "with") if r % 2 == 0 else ("with", "without"):
                watchers = Watchers(server.port, target, WATCHERS) if side == "with" else None
                try:
                    if watchers is not None:
                        ready.append((watchers.answered, watchers.took))
                        if watchers.answered < WATCHERS:
                            raise RuntimeError("only %d of %d watchers had an answer within %ss" % (
                                watchers.answered, WATCHERS, WATCH_READY_SECONDS))
                    got, failed = plain_latencies(server.port, block)
                finally:
                    if watchers is not None:
                        counts.append(watchers.stop())
                took[side] += got
                bad[side] += failed
                time.sleep(0.3)  # the held streams notice their closed connections
            status, _, body, _ = http_get(server.port, target + "&_format=json")
            running += status == 200 and json.loads(body)["status"] == "running"
            http_get(server.port, target + "&_action=cancel", method="POST", headers={"Accept": "application/json"})
    with_med, without_med = statistics.median(took["with"]), statistics.median(took["without"])

    def summary(side):
        xs = sorted(took[side])
        return "%d requests, median %s, p90 %s, max %s, %d not 200" % (
            len(xs), fmt_time(statistics.median(xs)), fmt_time(xs[int(len(xs) * 0.9)]), fmt_time(xs[-1]), bad[side])

    total = {key: sum(c.get(key, 0) for c in counts if isinstance(c.get(key, 0), int))
             for key in ("requests", "held", "events", "errors", "ended", "left running")}
    statuses = {}
    for c in counts:
        for code, n in c.get("statuses", {}).items():
            statuses[code] = statuses.get(code, 0) + n
    notes.append("watchers: tests/apps.py under web.py's own server (cheroot, 10 threads; max_streams=%d); %d "
                 "rounds, each a new /ticker job and a %s block of sequential GET /plain (new connection each, "
                 "10 ms apart) without watchers and one with %d SSE watchers (their own process; each reads "
                 "until the stream ends and reconnects after the server's retry: pause with Last-Event-ID, like "
                 "an EventSource), in alternating order; with: %s; without: %s; all %d watchers answered before "
                 "each with-block in %s (answered: %s; the watchers start %s apart, and that start is not "
                 "measured: web.py's server listens with a backlog of 5, so a burst of connects waits for TCP SYN "
                 "retries); watcher requests %d "
                 "(%.0f/s while they ran; statuses %s), %d of them held streams, %d events, %d errors, %d saw "
                 "the job end, %d left running; job still running at the end of %d/%d rounds" % (
                     DEFAULTS["max_streams"], rounds, fmt_time(block), WATCHERS, summary("with"),
                     summary("without"), WATCHERS, ", ".join(fmt_time(t) for _, t in ready),
                     ", ".join(str(n) for n, _ in ready), fmt_time(WATCH_STAGGER), total["requests"],
                     total["requests"] / sum(c["seconds"] for c in counts), statuses, total["held"], total["events"],
                     total["errors"], total["ended"], total["left running"], running, rounds))
    return ("plain request latency, %d SSE watchers of one job vs none (medians)" % WATCHERS,
            with_med, without_med, 3.0)


# -- --long only: the reliability load, bigger ----------------------------------------------

LOAD_JOBS, LOAD_LINES, LOAD_CLIENTS = 1000, 40, 16
LOAD_SECONDS = 240.0  # the clients stop following jobs after this


def bench_load(notes):
    """tests/reliability/test_load.py's load, bigger (notes only): LOAD_JOBS jobs of
    LOAD_LINES numbered lines started at once over HTTP on the memory store under
    web.py's own server (that test's server and settings), followed to their end
    by LOAD_CLIENTS clients while another sends plain requests."""
    tests_on_path()
    import test_load  # noqa: E402

    with test_load.server_for("memory", "memory://") as server:
        r = test_load.run_load(server, LOAD_JOBS, LOAD_LINES, LOAD_CLIENTS, LOAD_SECONDS)
    notes.append("load (--long; tests/reliability/test_load.py's, bigger): %d jobs of %d lines, memory store, "
                 "web.py's own server, %d clients, %.1f s: %.0f jobs started/s, %.0f polls/s, %d requests "
                 "(statuses %s), %d 5xx, %d jobs not done or not exactly their lines (the reliability "
                 "test's bar, 0 5xx and nothing lost: %s)" % (
                     r["jobs"], r["lines_per_job"], r["clients"], r["seconds"], r["jobs_started_per_s"],
                     r["polls_per_s"], r["requests"], dict(sorted(r["statuses"].items())), r["server_errors"],
                     r["lost_or_wrong_jobs"],
                     "met" if r["server_errors"] == 0 and r["lost_or_wrong_jobs"] == 0 else "MISSED"))


# -- the Redis and RQ rows ---------------------------------------------------------------

RQ_PAUSE = 0.2  # s the first-line job stays running after its line (> FLUSH_INTERVAL: still live when seen)
POLL_PAUSE = 0.0002  # s between two polls of every first-line loop (the same loop for every kind)
FIRST_LINE_TIMEOUT = 30.0  # s any job of the first-line rows may take to show its line or to end
RQ_SETTINGS = "rqbench_settings"  # benchmarks/rqbench_settings.py: the preloaded worker's RQ settings module


def redis_requirements():
    """The rq command, after checking everything the Redis rows need; a clear
    SystemExit naming what is missing otherwise."""
    missing = []
    if shutil.which("redis-server") is None:
        missing.append("redis-server is not installed (Debian: apt-get install redis-server)")
    for module in ("redis", "rq"):
        try:
            __import__(module)
        except ImportError:
            missing.append("the Python package %s is not installed (pip install %s)" % (module, module))
    command = shutil.which("rq", path=os.path.dirname(sys.executable)) or shutil.which("rq")
    if command is None:
        missing.append("the rq command is not installed (pip install rq)")
    if missing:
        raise SystemExit("bench.py: the Redis rows cannot run: " + "; ".join(missing))
    return command


def start_redis(workdir):
    """A throw-away redis-server on 127.0.0.1 (free port, --save "" --appendonly no), started."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from servers import RedisServer, free_port  # noqa: E402

    return RedisServer(free_port(), workdir).start()


def redis_server_version():
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, timeout=10).stdout
        return "redis-server " + out.split(" v=", 1)[1].split()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "redis-server ?"


class RQWorker:
    """One stock ``rq worker`` (the default forking Worker class) on ``queue``,
    run in benchmarks/ with ``--path benchmarks``, in its own process group.
    With ``settings`` (a module name) it is started the way the README
    recommends, ``rq worker -c <settings>``: that module names the Redis URL and
    the queues, and preloads the jobs; without, ``rq worker --url URL queue``."""

    def __init__(self, command, redis_url, queue, settings=None):
        self.queue = queue
        self.log = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ, WEB_BACKGROUND_STORE=redis_url, PYTHONPATH=ROOT)
        how = ["-c", settings] if settings else ["--url", redis_url, queue]
        self.proc = subprocess.Popen(
            [command, "worker", "--path", BENCH_DIR, "--logging_level", "WARNING"] + how,
            cwd=BENCH_DIR, env=env, stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def wait_registered(self, conn, timeout=20.0):
        import rq

        deadline = time.monotonic() + timeout
        while not rq.Worker.all(connection=conn, queue=rq.Queue(self.queue, connection=conn)):
            if self.proc.poll() is not None:
                raise RuntimeError("rq worker exited with %s:\n%s" % (self.proc.returncode, self.output()))
            if time.monotonic() > deadline:
                raise RuntimeError("rq worker did not register within %ss:\n%s" % (timeout, self.output()))
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):  # warm shutdown, then kill
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    pass
        self.log.close()


def bench_capture_redis(redis_url, scale, notes):
    n = 100_000 * scale
    a, b = capture_rounds(redis_url, "Redis", n, 7 if scale == 1 else 15, notes)
    return ("capture %dk lines, Redis store" % (n // 1000), a, b)


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


def bench_first_line(redis_url, rq_command, scale, notes):
    """Rows 'first line visible': thread executor, RQ executor and plain RQ, the
    RQ jobs run by a worker started with its settings module (preloaded); the
    notes add a worker without it, and the thread executor on the memory store."""
    import redis
    import rq

    if BENCH_DIR not in sys.path:
        sys.path.insert(0, BENCH_DIR)
    import rqbench_jobs

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

        def rq_times(job_id):
            j = rq.job.Job.fetch(job_id, connection=conn)
            return (j.started_at.timestamp() if j.started_at else None,
                    j.ended_at.timestamp() if j.ended_at else None)

        def end_wb(job, worker=None):
            """Wait for a web_background job: its RQ start, body start and end (wall times)."""
            if not job.wait(FIRST_LINE_TIMEOUT):
                raise RuntimeError("job %s did not end within %ss" % (job.id, FIRST_LINE_TIMEOUT))
            record = web_background.jobs._runner().store.get(job.id)
            if record["status"] != "done":
                raise RuntimeError("job %s ended %s: %s%s" % (job.id, record["status"], record["error"],
                                                             "\nworker:\n" + worker.output() if worker else ""))
            return {"rq started": rq_times(job.id)[0] if worker else None, "body started": record["started"],
                    "finished": record["finished"]}

        def end_plain(job, worker):
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
            started, ended = rq_times(job.id)
            return {"rq started": started, "finished": ended, "preloaded": job.get_meta()["preloaded"]}

        # The polls: each kind's lightest public read of the job it started, one round trip or few:
        def job_output(job):  # the Job that @background returned: flush of this process's sink, get, read
            return job.output

        def store_read(job):  # what another process reads: the store's own read, no flush first
            got = web_background.jobs._runner().store.read(job.id, 0)
            return got[0] if got else ""

        def plain_meta(job):  # the rq Job that enqueue returned: one HGET of its meta
            return job.get_meta(refresh=True).get("line", "")

        kinds = {  # name: (start, poll, wait for the end)
            "thread": (lambda tag: line_thread(tag, RQ_PAUSE), job_output, end_wb),
            "thread, store read": (lambda tag: line_thread(tag, RQ_PAUSE), store_read, end_wb),
        }
        for which, queue_name in (("", rqbench_jobs.QUEUE), (", no preload", rqbench_jobs.QUEUE_COLD)):
            worker = workers["no preload" if which else "preloaded"]
            queue = rq.Queue(queue_name, connection=conn)
            line_rq = background(queue=queue_name)(rqbench_jobs.first_line)
            kinds["RQ executor" + which] = (
                lambda tag, line_rq=line_rq: line_rq(tag, RQ_PAUSE), job_output,
                lambda job, worker=worker: end_wb(job, worker))
            kinds["plain RQ" + which] = (
                lambda tag, queue=queue: queue.enqueue(rqbench_jobs.plain_first_line, tag, RQ_PAUSE), plain_meta,
                lambda job, worker=worker: end_plain(job, worker))
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
                 "and it imports rqbench_jobs and web_background, so web.py too, once, before the worker forks); "
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
                     gap("plain RQ", "printed", "visible"), web_background.jobs.TICK, RQ_PAUSE,
                     t(med("thread, store read", "visible")), t(a)))
    notes.append("first line, what 50x would take: plain RQ's median %s / 50 = %s, while the thread executor's "
                 "start call alone returns after %s and its job prints the line %s after the call (medians; with a "
                 "Redis store the call makes 3 round trips, each job.output poll 2 or 3); the same thread executor "
                 "on the default memory store: visible %s (%.0fx faster than plain RQ)" % (
                     t(c), t(c / 50), t(med("thread", "call")), t(med("thread", "printed")),
                     t(med("thread, memory store", "visible")), c / med("thread, memory store", "visible")))
    return [("first line visible, RQ executor vs plain RQ (medians)", b, c, "<=", 1.3),
            ("first line visible, plain RQ vs thread executor (medians; speed-up)", c, a, ">=", 50.0)]


# -- the report -----------------------------------------------------------------------


def ratio_row(name, ours, base, kind, target):
    """A table row of ours/base; ``kind`` "<=" or ">=" against ``target``, or
    "report" (no target).  Returns the row and whether the target was met (None: no target)."""
    ratio = ours / base
    if kind == "report":
        return "| %s | %s | %s | %.2fx | report |" % (name, fmt_time(ours), fmt_time(base), ratio), None
    ok = ratio <= target if kind == "<=" else ratio >= target
    return "| %s | %s | %s | %.2fx | %s %.1fx %s |" % (
        name, fmt_time(ours), fmt_time(base), ratio, kind, target, "met" if ok else "MISSED"), ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--long", action="store_true", help="about 3x the counts (slower, steadier)")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "STORE"), help=argparse.SUPPRESS)
    parser.add_argument("--watch", nargs=3, metavar=("PORT", "TARGET", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:  # a server of the cross-process row
        serve(int(args.serve[0]), args.serve[1])
        return 0
    if args.watch:  # the watchers of the watchers row
        watch(int(args.watch[0]), args.watch[1], int(args.watch[2]))
        return 0
    scale = 3 if args.long else 1
    rq_command = redis_requirements()  # before anything runs: a missing redis-server fails at once

    notes = []
    rows, met = [], []
    load_start = load_average()  # a shared machine: other work skews both sides of a ratio less than its times
    t_start = time.perf_counter()
    for bench in (bench_capture, bench_poll, bench_serve):
        name, ours, base, target = bench(scale, notes)
        row, ok = ratio_row(name, ours, base, "<=", target)
        rows.append(row)
        met.append((name.split()[0], ok))
    name, after, before, delta = bench_memory(scale, notes)
    ok = abs(delta) <= 1.0
    rows.append("| %s | %.2f MB | %.2f MB | %+.3f MB | within 1 MB %s |" % (
        name, after, before, delta, "met" if ok else "MISSED"))
    met.append(("memory", ok))
    for label, bench in (("capture-sqlite", bench_capture_sqlite), ("poll-other-process", bench_poll_processes),
                         ("watchers", bench_watchers)):
        got = bench(scale, notes)
        (name, ours, base, target), extra = got if isinstance(got[0], tuple) else (got, None)
        row, ok = ratio_row(name, ours, base, "<=", target)
        rows.append(row)
        met.append((label, ok))
        if extra is not None:
            met.append(("visibility", extra))
    if args.long:
        bench_load(notes)

    # The Redis rows: one throw-away redis-server for all of them, stopped whatever happens.
    tmp = tempfile.mkdtemp(prefix="wb-bench-redis-")
    redis_server = None
    try:
        redis_server = start_redis(tmp)
        first_line_rows = bench_first_line(redis_server.url, rq_command, scale, notes)
        name, ours, base = bench_capture_redis(redis_server.url, scale, notes)
    finally:
        configure(**dict(DEFAULTS, store="memory://"))
        time.sleep(2 * web_background.jobs.FLUSH_INTERVAL)  # old flusher threads see they are closed
        if redis_server is not None:
            redis_server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    for label, (row_name, row_ours, row_base, kind, target) in zip(("rq-vs-plain-rq", "thread-vs-plain-rq"),
                                                                   first_line_rows):
        row, ok = ratio_row(row_name, row_ours, row_base, kind, target)
        rows.append(row)
        met.append((label, ok))
    rows.append(ratio_row(name, ours, base, "report", None)[0])

    print("| benchmark | ours | baseline | ratio | target |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(row)
    print()
    for note in notes:
        print("- " + note)
    print("- python %s, web.py %s, rq %s, redis-py %s, %s, %d CPUs, load average %s at the start, %s at "
          "the end, total %.1f s" % (
              sys.version.split()[0], web.__version__, __import__("rq").__version__,
              __import__("redis").__version__, redis_server_version(), os.cpu_count() or 0, load_start,
              load_average(), time.perf_counter() - t_start))
    print()
    good = [n for n, ok in met if ok]
    bad = [n for n, ok in met if not ok]
    print("targets met: %d/%d (%s)%s" % (len(good), len(met), ", ".join(good) or "none",
                                        "; missed: " + ", ".join(bad) if bad else ""))
    return 0  # a report, not a gate: missed targets are in the last line

if __name__ == "__main__":
    sys.exit(main())
