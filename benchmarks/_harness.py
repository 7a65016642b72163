"""What the benchmarks share (benchmarks/bench.py runs them, one module each).

- ``Row`` (what a benchmark's ``run(ctx)`` returns a list of) and ``Context``
  (what it is given);
- the in-process web.py application (``APP``, ``request``) and the server of
  the cross-process row (``SERVE_APP``, ``serve``: ``bench.py --serve``);
- measuring: ``alternate``, ``per_call``, ``fmt_time``, ``percentile``,
  ``ratio_row``, ``absolute_row``, ``load_average``, ``rss_bytes``;
- real servers and clients: ``http_get``, ``plain_latencies``,
  ``tests_on_path`` (tests/servers.py), ``start_redis``, ``redis_requirements``,
  ``RQWorker``;
- process jobs: ``stop_fork_server``.
"""

import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import namedtuple

import _paths
import web

from web_background import DEFAULTS, background, backgrounder, configure, threaddb

# Production settings: no debugger pages and no module reloader on every request
# (the reloader would add the same constant cost to both sides of each ratio).
web.config.debug = False

ROOT, BENCH_DIR = _paths.ROOT, _paths.BENCH_DIR
BENCH_PY = os.path.join(BENCH_DIR, "bench.py")  # the entry point; also what --serve and --watch processes run
WAIT = 300.0  # seconds any single job may take before the benchmark gives up

# -- what a benchmark gets and returns ------------------------------------------------

Row = namedtuple("Row", "label text ok")
Row.__doc__ = """One result of a benchmark: ``text``, its line of the table (None: none);
``label``, its name in the last line, "targets met" (None: no target); ``ok``,
whether the target was met."""


class Context:
    """What every benchmark's ``run(ctx)`` is given: ``scale`` (1, or 3 with
    --long), ``long``, ``notes`` (a list; each note it appends is printed under
    the table) and, for the modules with ``REDIS = True``, ``redis_url`` (the
    runner's throw-away redis-server) and ``rq_command``."""

    def __init__(self, scale, long, notes, redis_url=None, rq_command=None):
        self.scale, self.long, self.notes = scale, long, notes
        self.redis_url, self.rq_command = redis_url, rq_command


# -- the in-process web.py application ----------------------------------------------


@background
def write_text(text):
    sys.stdout.write(text)


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


# -- what the servers of the cross-process row serve (``bench.py --serve PORT STORE``) --

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


def plain_latencies(port, seconds, pause=0.01, target="/plain"):
    """Seconds of each GET ``target`` (new connection each), one after another with
    ``pause`` between, for ``seconds``; and how many did not answer 200."""
    took, bad = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            status, _, _, t = http_get(port, target)
            took.append(t)
            bad += status != 200
        except OSError:
            bad += 1
        time.sleep(pause)
    return took, bad


def tests_on_path():
    """tests/ (servers.py: real servers) and tests/reliability/ (test_load.py) importable."""
    for folder in (os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "reliability")):
        if folder not in sys.path:
            sys.path.insert(0, folder)


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


def percentile(values, q):
    """The ``q`` quantile (0..1) of ``values``, nearest rank: p90 of 100 values is the 90th smallest."""
    xs = sorted(values)
    return xs[min(len(xs) - 1, max(0, int(round(q * len(xs))) - 1))]


def ratio_row(name, ours, base, kind, target):
    """A table row of ours/base; ``kind`` "<=" or ">=" against ``target``, or
    "report" (no target).  Returns the row and whether the target was met (None: no target)."""
    ratio = ours / base
    if kind == "report":
        return "| %s | %s | %s | %.2fx | report |" % (name, fmt_time(ours), fmt_time(base), ratio), None
    ok = ratio <= target if kind == "<=" else ratio >= target
    return "| %s | %s | %s | %.2fx | %s %s %s |" % (
        name, fmt_time(ours), fmt_time(base), ratio, kind, fmt_target(target), "met" if ok else "MISSED"), ok


def fmt_target(ratio):
    """1.5 -> 1.5x, 50 -> 50.0x, 0.33 -> 0.33x."""
    return ("%.1fx" if round(ratio, 1) == ratio else "%.2fx") % ratio


def absolute_row(name, seconds, target):
    """A table row of a time with an absolute target (at most ``target`` seconds):
    the time in the ours column, no baseline and no ratio.  Returns the row and
    whether the target was met."""
    ok = seconds <= target
    return "| %s | %s | - | - | <= %g s %s |" % (name, fmt_time(seconds), target, "met" if ok else "MISSED"), ok


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


# -- Redis and RQ --------------------------------------------------------------------


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
    tests_on_path()
    from servers import RedisServer, free_port

    return RedisServer(free_port(), workdir).start()


def redis_server_version():
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, timeout=10,
                             check=False).stdout
        return "redis-server " + out.split(" v=", 1)[1].split()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "redis-server ?"


def module_version(name):
    """``name.__version__``, or "n/a" when the module is not installed."""
    try:
        return __import__(name).__version__
    except ImportError:
        return "n/a"


class RQWorker:
    """One stock ``rq worker`` (the default forking Worker class) on ``queue``,
    run in benchmarks/ with ``--path benchmarks``, in its own process group.
    With ``settings`` (a module name) it is started the way the README
    recommends, ``rq worker -c <settings>``: that module names the Redis URL and
    the queues, and preloads the jobs; without, ``rq worker --url URL queue``."""

    def __init__(self, command, redis_url, queue, settings=None):
        self.queue = queue
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (kept open until stop())
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


# -- process jobs --------------------------------------------------------------------


def stop_fork_server():
    """Stop this process's fork server, if it has one (by its pid; its job
    processes go with it).  web_background starts it on the first process job
    and keeps it until this process exits; a benchmark that ran process jobs
    stops it when done, so that nothing it started outlives it and the next
    one starts a fresh server preloading every job module imported by then."""
    from web_background.executors.forkserver import stop_fork_server as stop

    stop()  # the server sees its socket close, kills its children and exits; killed after 5 s
