"""The deployment matrix: the same app (tests/deploy_app.py) under every server
web.py runs on, over real HTTP on 127.0.0.1, one test per cell.

Each cell starts its server (and proxy) on free ports with its own config in a
temporary folder (templates in tests/deploy/), never a system service, and:

- starts a thread job and follows it to its end by JSON polls with ``_offset``
  (every line exactly once), on every web process in turn when there are
  several (the others are paused with SIGSTOP while a request is sent, so
  that it lands where it is aimed; they share a SQLite store);
- follows another by the page's event stream (``_format=events``), resuming
  with ``Last-Event-ID``, and records how it arrived: ``live`` (as written),
  ``reconnect`` (the server answers what there is and the client comes back:
  one thread per process) or ``buffered`` (a proxy holds it to its end);
- runs a job in a process of its own (``executor="processes"``);
- cancels a sleeping job from another process (``POST ...&_action=cancel``);
- runs a job that uses its request's ``wsgi.errors`` (``web.debug``) after the
  request has been answered;
- asks ``web_background.deployment.check_server`` about the server: ``ok``.

What each cell saw goes to artifacts/deploy-matrix.json.  A missing server is
conftest's ``needs(...)``: a failure in CI, a skip elsewhere.  A step that
fails through a known fault of the package (``KNOWN_FAULTS``) makes its cell
xfail, naming the fault; once the package is fixed the cell fails until the
entry is dropped.
"""
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urljoin, urlsplit

import pytest

from conftest import needs, wait_for
from servers import ROOT, Server, free_port, next_event

pytestmark = pytest.mark.stores("memory")  # each server process has its own store (SQLite when several)

BIN = os.path.dirname(sys.executable)
APP = os.path.join(ROOT, "tests", "deploy_app.py")
TEMPLATES = os.path.join(ROOT, "tests", "deploy")
ARTIFACT = os.path.join(ROOT, "artifacts", "deploy-matrix.json")
HEARTBEAT_TIMEOUT = 5.0
UWSGI_WORKER = r"spawned uWSGI worker \d+ \(pid: (\d+)"  # pyuwsgi cannot rename its processes


# -- processes ------------------------------------------------------------------------------


def _stat(pid):
    """(state, ppid, session) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[3])


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def in_session(sid):
    """Live processes of a session (each server runs in a session of its own)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None and stat[2] == sid and stat[0] != "Z":
                found.append(int(name))
    return sorted(found)


def alive(pid):
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def tool(name, install):
    """A server's executable: next to this Python (the venv), on PATH, or in /usr/sbin."""
    found = shutil.which(name, path=BIN) or shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        needs(name, "not installed (%s)" % install)
    return found


class Proc(Server):
    """A server process with no terminal on stdin, in a session of its own; ready
    when it answers ``GET /plain`` (``http=True``) or accepts a connection."""

    def __init__(self, argv, port, env=None, http=True, cwd=ROOT, stop_signal=signal.SIGTERM):
        super().__init__(argv, port, env=env, cwd=cwd)
        self.http = http
        self.stop_signal = stop_signal

    def ready(self):
        if not self.http:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/plain")
            return conn.getresponse().status == 200
        finally:
            conn.close()

    def start(self, timeout=20.0):
        self.log = open(os.path.join(ROOT, ".server-%d.log" % self.port), "w+")
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                output = self.output()
                self.stop()
                raise RuntimeError("%s exited early:\n%s" % (self.argv[0], output))
            try:
                if self.ready():
                    return self
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        output = self.output()
        self.stop()
        raise RuntimeError("%s did not answer within %ss:\n%s" % (self.argv[0], timeout, output))

    def stop(self, sig=None):
        sid = self.proc.pid if self.proc is not None else None
        super().stop(sig or self.stop_signal)
        if sid is not None:
            for pid in in_session(sid):  # anything it left behind (nothing, normally)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def render(name, directory, **values):
    """tests/deploy/NAME with its {{KEY}}s filled in, written into ``directory``."""
    with open(os.path.join(TEMPLATES, name)) as f:
        text = f.read()
    for key, value in values.items():
        text = text.replace("{{%s}}" % key, str(value))
    assert "{{" not in text, text
    path = os.path.join(str(directory), name)
    with open(path, "w") as f:
        f.write(text)
    return path


# -- a deployment under test -------------------------------------------------------------


class Deployment:
    """The processes of one cell, the address a client talks to and the app's processes."""

    def __init__(self, tmp_path, multi):
        self.dir = tmp_path
        self.multi = multi
        self.store = "sqlite:///%s" % (tmp_path / "jobs.db") if multi else "memory://"
        self.procs = []
        self.port = None
        self.workers = []  # the app's processes (pids)
        self.app_proc = None  # the Proc whose session holds them
        self.served = []
        self.facts = {}
        self.aim = "pause"

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def env(self, **more):
        return dict(dict(WEB_BACKGROUND_STORE=self.store, PYTHONPATH=ROOT), **more)

    def run(self, argv, port, env=None, app=True, timeout=20.0, http=True):
        # uWSGI's master may wait for its workers on SIGTERM; SIGINT ends it at once
        stop_signal = signal.SIGINT if os.path.basename(argv[0]) == "uwsgi" else signal.SIGTERM
        proc = Proc(argv, port, env=env if env is not None else self.env(), http=http, stop_signal=stop_signal)
        proc.start(timeout)
        self.procs.append(proc)
        if app:
            self.app_proc = proc
        self.port = port
        return proc

    def find_workers(self, count, match=None, logged=None):
        """The app's processes: ``count`` processes of its session whose command line ``match``
        says is an app process, or whose pids its log names (``logged``: a regular
        expression), or (by default) those that answer /plain."""
        if logged is not None:
            found = []

            def listed():
                found[:] = [int(pid) for pid in re.findall(logged, self.app_proc.output())]
                return len(found) >= count

            wait_for(listed, timeout=15, interval=0.05)
            self.workers = found[-count:]
            return
        if match is None:
            pids = set()
            deadline = time.monotonic() + 10
            while len(pids) < count:
                assert time.monotonic() < deadline, "only %s of %d app processes answered" % (pids, count)
                pids.add(int(self.request("GET", "/plain")[1]["X-Served-By"]))
            self.workers = sorted(pids)
            return
        sid = self.app_proc.proc.pid
        found = []

        def enough():
            found[:] = [pid for pid in in_session(sid) if match(_cmdline(pid))]
            return len(found) == count

        wait_for(enough, timeout=15, interval=0.05)
        self.workers = list(found)

    def stop(self):
        for proc in reversed(self.procs):
            proc.stop()

    # -- requests aimed at one app process -------------------------------------------------

    @contextlib.contextmanager
    def on(self, pid):
        """Requests made inside land on app process ``pid`` (the others are paused)."""
        others = [w for w in self.workers if w != pid] if pid is not None else []
        for w in others:
            os.kill(w, signal.SIGSTOP)
        try:
            yield
        finally:
            for w in others:
                os.kill(w, signal.SIGCONT)

    def other(self, pid):
        return next((w for w in self.workers if w != pid), pid)

    def alternate(self, first):
        while True:
            yield first
            yield self.other(first)

    def open(self, method, path, pid=None, headers=None, timeout=15):
        """(connection, response) of a request that landed on app process ``pid`` (any
        when None): sent while the others are paused, or (``aim = "retry"``, for servers
        whose processes take turns on a lock a paused one may hold) sent again until it does."""
        aimed = pid is not None and len(self.workers) > 1
        tries = 60 if aimed and self.aim == "retry" and method == "GET" else 1
        for _ in range(tries):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                with self.on(pid if aimed and self.aim == "pause" else None):
                    conn.request(method, path, headers=headers or {})
                    response = conn.getresponse()
            except BaseException:
                conn.close()
                raise
            served = response.getheader("X-Served-By")
            self.served.append(int(served) if served else None)
            if not aimed or (self.aim == "retry" and method != "GET") or (served and int(served) == pid):
                return conn, response
            conn.close()
        raise AssertionError("%s %s never landed on %s (last: %s)" % (method, path, pid, served))

    def request(self, method, path, pid=None, headers=None, timeout=15):
        """(status, headers, body) of one request answered by app process ``pid`` (any when None)."""
        conn, response = self.open(method, path, pid=pid, headers=headers, timeout=timeout)
        try:
            body = response.read()
        finally:
            conn.close()
        return response.status, response.headers, body

    def start(self, path, pid=None):
        """Start a job: (the job's path and query, the app process that started it)."""
        status, headers, body = self.request("GET", path, pid=pid)
        assert status == 303, (status, body[:500])
        location = urlsplit(urljoin(path, headers["Location"]))
        assert location.path == urlsplit(path).path and "_t=" in location.query, headers["Location"]
        # where the browser would go: behind a proxy whose Host header drops the port, elsewhere
        # (a relative Location is resolved against the URL the client asked: it always does)
        self.facts.setdefault("redirect_keeps_port", location.netloc in ("", "127.0.0.1:%d" % self.port))
        return "%s?%s" % (location.path, location.query), int(headers["X-Served-By"])

    def poll(self, job, offset=0, pid=None):
        status, headers, body = self.request("GET", job + "&_format=json&_offset=%d" % offset, pid=pid)
        assert status == 200, (status, body[:500])
        assert headers["Content-Type"] == "application/json"
        return json.loads(body)


def follow(d, job, runner, timeout=15.0):
    """JSON polls with ``_offset`` until the job ends, alternating app processes: (output, replies)."""
    text, offset, replies = "", 0, []
    aim = d.alternate(runner)
    deadline = time.monotonic() + timeout
    while True:
        reply = d.poll(job, offset, pid=next(aim) if d.multi else None)
        assert reply["offset"] == offset + len(reply["output"]) and reply["cut"] == 0, reply
        text += reply["output"]
        offset = reply["offset"]
        replies.append(reply)
        if reply["status"] not in ("queued", "running"):
            return text, replies
        assert time.monotonic() < deadline, "the job did not end within %ss: %r" % (timeout, reply)
        time.sleep(0.05)


def watch(d, job, runner, timeout=20.0):
    """Follow the job's event stream to its ``end`` event, resuming with Last-Event-ID
    whenever the stream ends (and on the other app process every few events when
    there are several): (output, end event data, how it arrived)."""
    text, last_id, end, states = "", None, None, []
    first_output = None  # time.time() when the first output event arrived
    connections = server_ended = 0
    aim = d.alternate(runner)
    deadline = time.monotonic() + timeout
    while end is None:
        assert time.monotonic() < deadline, "no end event within %ss" % timeout
        pid = next(aim) if d.multi else None
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        conn, response = d.open("GET", job + "&_format=events", pid=pid, headers=headers, timeout=timeout)
        try:
            assert response.status == 200, response.read()[:500]
            assert response.getheader("Content-Type").startswith("text/event-stream")
            connections += 1
            event = None
            for _ in range(4 if d.multi else 10 ** 6):
                event = next_event(response)
                if event is None:
                    server_ended += 1
                    break
                event_id, kind, data = event[0], event[1], json.loads(event[2])
                last_id = event_id
                if kind == "output":
                    assert data["offset"] == len(text) + len(data["text"]) == int(event_id), (data, len(text))
                    text += data["text"]
                    if first_output is None:
                        first_output = time.time()
                elif kind == "state":
                    states.append(data["status"])
                elif kind == "end":
                    end = data
                    break
        finally:
            conn.close()
        if end is None and event is None:
            time.sleep(0.1)  # the server ended the stream: come back, as EventSource does
    early = end["finished"] - first_output if first_output is not None else 0.0
    if early < 0.3:
        mode = "buffered"  # nothing arrived while the job ran
    elif server_ended > 2:
        mode = "reconnect"
    else:
        mode = "live"
    return text, end, {"mode": mode, "connections": connections, "first_output_before_end": round(early, 2)}


def cancel(d, job, pid):
    """POST the page's Cancel, aimed at ``pid``: the JSON reply."""
    status, headers, body = d.request("POST", job + "&_action=cancel", pid=pid,
                                      headers={"Accept": "application/json", "Content-Length": "0", "Origin": d.url})
    assert status == 200, (status, body[:500])
    return json.loads(body)


def assert_keeps_port(d):
    assert d.facts["redirect_keeps_port"], (
        "the 303's Location names another host or port than the one the client asked (the proxy's Host header "
        "lacks the port): the browser goes elsewhere")


def _assert_equal(got, expected):
    assert got == expected, got


def numbered(lines):
    return "".join("line %04d\n" % n for n in range(lines))


def record(name, facts):
    """Add a cell's facts to artifacts/deploy-matrix.json."""
    os.makedirs(os.path.dirname(ARTIFACT), exist_ok=True)
    try:
        with open(ARTIFACT) as f:
            table = json.load(f)
    except (OSError, ValueError):
        table = {}
    table[name] = facts
    with open(ARTIFACT, "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)


# -- the cells -------------------------------------------------------------------------------


def _python_app(d, debug):
    port = free_port()
    d.run([sys.executable, APP, "127.0.0.1:%d" % port], port, env=d.env(DEPLOY_DEBUG=debug))
    d.find_workers(1)


def _gunicorn_workers(d, count):
    master = d.app_proc.proc.pid
    found = []

    def enough():
        found[:] = [pid for pid in in_session(master) if (_stat(pid) or ("", 0))[1] == master]
        return len(found) == count

    wait_for(enough, timeout=15, interval=0.05)
    d.workers = list(found)


def gunicorn(d, workers, *args):
    gunicorn_bin = tool("gunicorn", "pip install gunicorn")
    port = free_port()
    argv = [gunicorn_bin, "--workers", str(workers), "--bind", "127.0.0.1:%d" % port, "--graceful-timeout", "2",
            "--chdir", os.path.join(ROOT, "tests"), *args, "deploy_app:application"]
    d.run(argv, port)
    _gunicorn_workers(d, workers)
    return port


def uwsgi(d, *listen, lazy=True):
    binary = tool("uwsgi", "pip install pyuwsgi")
    port = free_port()
    argv = [binary, *(a.replace("PORT", str(port)) for a in listen), "--wsgi-file", APP, "--master",
            "--processes", "2", "--die-on-term", "--need-app", "--disable-logging"]
    if lazy:
        argv.append("--lazy-apps")
    d.run(argv, port)
    d.find_workers(2, logged=UWSGI_WORKER)
    return port


def nginx(d, template, **values):
    binary = tool("nginx", "Debian: apt-get install nginx-light")
    port = free_port()
    conf = render(template, d.dir, PORT=port, DIR=d.dir, PARAMS_DIR="/etc/nginx",
                  USER="user root root;" if os.getuid() == 0 else "", **values)
    d.run([binary, "-p", str(d.dir), "-c", conf, "-e", str(d.dir / "error.log")], port, app=False)


def cell_webpy_debug(d):
    _python_app(d, "1")


def cell_webpy(d):
    _python_app(d, "0")


def cell_gunicorn_sync(d):
    gunicorn(d, 2, "--worker-class", "sync", "--max-requests", "1000")


def cell_gunicorn_gthread(d):
    gunicorn(d, 2, "--worker-class", "gthread", "--threads", "4")


def cell_gunicorn_gevent(d):
    try:
        import gevent  # noqa: F401
    except ImportError as e:
        needs("gevent", e)
    gunicorn(d, 2, "--worker-class", "gevent")


def cell_uwsgi(d):
    uwsgi(d, "--http", "127.0.0.1:PORT")


def cell_waitress(d):
    binary = tool("waitress-serve", "pip install waitress")
    port = free_port()
    d.run([binary, "--listen=127.0.0.1:%d" % port, "--threads=4", "deploy_app:application"],
          port, env=d.env(PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "tests"), ROOT])))
    d.find_workers(1)


def cell_mod_wsgi(d):
    binary = tool("mod_wsgi-express", "pip install mod_wsgi (needs Debian's apache2-dev)")
    port = free_port()
    argv = [binary, "start-server", APP, "--host", "127.0.0.1", "--port", str(port), "--server-root",
            str(d.dir / "apache"), "--processes", "2", "--threads", "5", "--log-to-terminal", "--locale", "C.UTF-8",
            "--setenv", "WEB_BACKGROUND_STORE", d.store]
    if os.getuid() == 0:
        # Apache will not serve as root, and its own users cannot read a Python under /root:
        # run it as an unprivileged user of a user namespace that maps it to this user
        argv = [tool("unshare", "util-linux"), "--user", "--map-user=65534", "--map-group=65534"] + argv
    d.run(argv, port, timeout=30)
    d.find_workers(2, lambda cmd: cmd.startswith("(wsgi:"))
    d.aim = "retry"  # a paused daemon process can hold mod_wsgi's accept lock


def cell_nginx_fastcgi(d):
    try:
        import flup  # noqa: F401
    except ImportError as e:
        needs("flup", e)
    upstream = free_port()
    d.run([sys.executable, APP, "fastcgi", "127.0.0.1:%d" % upstream], upstream, http=False)
    nginx(d, "nginx-fastcgi.conf", UPSTREAM="127.0.0.1:%d" % upstream)
    d.find_workers(1)


def cell_lighttpd_fastcgi(d):
    try:
        import flup  # noqa: F401
    except ImportError as e:
        needs("flup", e)
    binary = tool("lighttpd", "Debian: apt-get install lighttpd")
    port = free_port()
    env = ", ".join('"%s" => "%s"' % kv for kv in sorted(dict(d.env(), REAL_SCRIPT_NAME="").items()))
    conf = render("lighttpd-fastcgi.conf", d.dir, PORT=port, DIR=d.dir, PYTHON=sys.executable, APP=APP, ENV=env,
                  STREAM_RESPONSE_BODY=0)
    d.run([binary, "-D", "-f", conf], port)
    d.find_workers(1)


def cell_nginx_proxy_gunicorn(d):
    upstream = gunicorn(d, 2, "--worker-class", "gthread", "--threads", "4")
    nginx(d, "nginx-proxy.conf", UPSTREAM="127.0.0.1:%d" % upstream)


def cell_nginx_uwsgi(d):
    upstream = free_port()
    binary = tool("uwsgi", "pip install pyuwsgi")
    argv = [binary, "--socket", "127.0.0.1:%d" % upstream, "--wsgi-file", APP, "--master", "--processes", "2",
            "--die-on-term", "--need-app", "--disable-logging"]
    d.run(argv, upstream, http=False)  # a uwsgi-protocol socket answers no HTTP
    d.find_workers(2, logged=UWSGI_WORKER)
    nginx(d, "nginx-uwsgi.conf", UPSTREAM="127.0.0.1:%d" % upstream)


# name: (set up, several processes, how the event stream arrives)
CELLS = {
    "webpy-debug": (cell_webpy_debug, False, "live"),
    "webpy": (cell_webpy, False, "live"),
    "gunicorn-sync": (cell_gunicorn_sync, True, "reconnect"),
    "gunicorn-gthread": (cell_gunicorn_gthread, True, "live"),
    "gunicorn-gevent": (cell_gunicorn_gevent, True, "live"),
    "uwsgi": (cell_uwsgi, True, "reconnect"),
    "waitress": (cell_waitress, False, "live"),
    "mod_wsgi": (cell_mod_wsgi, True, "live"),
    "nginx-fastcgi-flup": (cell_nginx_fastcgi, False, "live"),
    "lighttpd-fastcgi-flup": (cell_lighttpd_fastcgi, False, "buffered"),
    "nginx-proxy-gunicorn": (cell_nginx_proxy_gunicorn, True, "live"),
    "nginx-uwsgi": (cell_nginx_uwsgi, True, "reconnect"),
}


# Faults of the package that the matrix shows, until the package is fixed: cell -> step -> what.
# A listed step must still fail (the cell then xfails); once fixed, the cell fails until it is dropped here.
KNOWN_FAULTS: dict = {}  # none left: the faults the matrix found are fixed (its history names them)


@contextlib.contextmanager
def deployed(name, tmp_path):
    setup, multi, _ = CELLS[name]
    os.chmod(str(tmp_path), 0o755)
    d = Deployment(tmp_path, multi)
    try:
        setup(d)
        yield d
    except BaseException:
        for proc in d.procs:
            if proc.log is not None:
                sys.stderr.write("--- %s ---\n%s\n" % (proc.argv[0], proc.output()[-4000:]))
        raise
    finally:
        d.stop()


@pytest.mark.parametrize("name", list(CELLS))
def test_cell(name, tmp_path):
    began = time.monotonic()
    expected_stream = CELLS[name][2]
    faults = []

    def step(what, run):
        """Run a step; a package fault listed in KNOWN_FAULTS must still happen (then the cell xfails)."""
        known = KNOWN_FAULTS.get(name, {}).get(what)
        try:
            run()
        except AssertionError as e:
            if known is None:
                raise
            faults.append("%s: %s (%s)" % (what, known, str(e).splitlines()[0][:200]))
            return
        assert known is None, "fixed? %s no longer fails here: drop it from KNOWN_FAULTS" % what

    with deployed(name, tmp_path) as d:
        facts = d.facts
        facts["processes"] = len(d.workers)
        started = time.monotonic()
        assert d.request("GET", "/check")[2] == b"ok\n"

        # a thread job followed by JSON polls, on every app process in turn
        lines = 20
        before = len(d.served)
        job, runner = d.start("/count?lines=%d&delay=0.03" % lines)
        step("redirect", lambda: assert_keeps_port(d))
        text, replies = follow(d, job, runner)
        assert replies[-1]["status"] == "done", replies[-1]
        assert "running" in [r["status"] for r in replies]  # followed live, not only read at the end
        assert text == "counting in web process %d\n" % runner + numbered(lines)
        assert replies[-1]["progress"] == {"done": lines, "total": lines, "message": "line 20 of 20"}
        if d.multi:
            assert set(d.served[before:]) == set(d.workers)

        # the page's event stream
        job, runner = d.start("/count?lines=%d&delay=0.05" % lines)
        text, end, how = watch(d, job, runner)
        assert end["status"] == "done" and text == "counting in web process %d\n" % runner + numbered(lines)
        facts["stream"] = how
        assert how["mode"] == expected_stream, how

        # a job in a process of its own
        def process_job():
            job, runner = d.start("/pcount?lines=5&delay=0")
            text, replies = follow(d, job, runner)
            assert replies[-1]["status"] == "done" and text == numbered(5), (replies[-1], text)

        step("process job", process_job)

        # cancel from another process
        def cancel_step():
            job, runner = d.start("/sleep")
            wait_for(lambda: "sleeping in pid" in d.poll(job, pid=runner)["output"], timeout=10)
            asked = time.monotonic()
            assert cancel(d, job, d.other(runner)) == {"id": job.rsplit("_t=", 1)[1], "cancelled": True}
            wait_for(lambda: d.poll(job)["status"] not in ("queued", "running"), timeout=15, interval=0.05)
            facts["cancel_seconds"] = round(time.monotonic() - asked, 2)
            reply = d.poll(job, pid=d.other(runner))
            assert reply["status"] == "cancelled", reply
            facts["cancel_finally_ran"] = reply["output"].endswith("finally ran\n")
            assert facts["cancel_seconds"] < 3 and facts["cancel_finally_ran"], (
                "cancelled after %.1f s without its finally: block: abandoned after cancel_grace, not stopped"
                % facts["cancel_seconds"])

        step("cancel", cancel_step)

        # a job using its request's wsgi.errors after the request was answered
        job, runner = d.start("/errors?x=1")
        text, replies = follow(d, job, runner)
        assert replies[-1]["status"] == "done" and text.startswith("input: {'x': '1'}\n"), replies[-1]
        facts["web_debug_in_job"] = text.splitlines()[-1]
        step("wsgi.errors after the request", lambda: _assert_equal(facts["web_debug_in_job"], "web.debug returned"))
        facts["cell_seconds"] = round(time.monotonic() - started, 2)
    facts["seconds_with_start_and_stop"] = round(time.monotonic() - began, 2)
    facts["package_faults"] = faults
    record(name, facts)
    if faults:
        pytest.xfail("; ".join(faults))


# -- what servers do to running jobs, and check_server on the servers it is about -----------


def test_webpy_debug_reloader_keeps_a_running_job_when_the_app_module_changes(tmp_path):
    """web.py's debug reloader re-imports a changed module at the next request: the app's
    module-level configure() runs again while a job runs."""
    app = tmp_path / "deploy_app.py"
    shutil.copy(APP, str(app))
    port = free_port()
    server = Proc([sys.executable, str(app), "127.0.0.1:%d" % port], port,
                  env=dict(DEPLOY_DEBUG="1", DEPLOY_ROOT=ROOT, WEB_BACKGROUND_STORE="memory://"))
    d = Deployment(tmp_path, multi=False)
    d.procs.append(server.start())
    d.port, d.app_proc = port, server
    try:
        d.find_workers(1)
        job, runner = d.start("/count?lines=30&delay=0.05")
        assert d.poll(job)["status"] == "running"
        later = time.time() + 5
        os.utime(str(app), (later, later))  # "edited": the next request reloads it
        assert d.request("GET", "/plain")[0] == 200
        status, _, body = d.request("GET", job + "&_format=json")
        assert status == 200, "the running job is gone after the reload: %s %r" % (status, body[:200])
        text, replies = follow(d, job, runner)
        assert replies[-1]["status"] == "done" and text.endswith(numbered(30))
    finally:
        d.stop()


def test_gunicorn_max_requests_recycling_the_worker_leaves_its_job_interrupted_not_running(tmp_path):
    """--max-requests (and --timeout, a kill) end a worker with the thread jobs it runs:
    on SQLite the job becomes ``interrupted`` within HEARTBEAT_TIMEOUT, never ``running`` forever."""
    os.chmod(str(tmp_path), 0o755)
    d = Deployment(tmp_path, multi=True)
    try:
        gunicorn(d, 1, "--worker-class", "sync", "--max-requests", "6")
        first = d.workers[0]
        job, runner = d.start("/sleep")
        assert runner == first
        wait_for(lambda: "sleeping in pid" in d.poll(job)["output"], timeout=10)
        for _ in range(10):  # the 6th request recycles the worker
            d.request("GET", "/plain")
        _gunicorn_workers(d, 1)
        wait_for(lambda: d.workers[0] != first and not alive(first), timeout=10)
        asked = time.monotonic()
        wait_for(lambda: d.poll(job)["status"] != "running", timeout=HEARTBEAT_TIMEOUT + 5, interval=0.2)
        reply = d.poll(job)
        assert reply["status"] == "interrupted", reply
        assert reply["output"].startswith("sleeping in pid %d\n" % first)
        record("gunicorn-sync --max-requests", {"interrupted_after_seconds": round(time.monotonic() - asked, 2)})
    finally:
        d.stop()


def test_uwsgi_harakiri_below_stream_seconds_kills_a_worker_holding_a_live_page(tmp_path):
    """A threaded uWSGI worker holds a live page's request for stream_seconds (15 s);
    harakiri 3 kills it with its jobs, which end ``interrupted``; check_server says so first."""
    os.chmod(str(tmp_path), 0o755)
    d = Deployment(tmp_path, multi=True)
    try:
        binary = tool("uwsgi", "pip install pyuwsgi")
        port = free_port()
        d.run([binary, "--http", "127.0.0.1:%d" % port, "--wsgi-file", APP, "--master", "--processes", "1",
               "--threads", "4", "--harakiri", "3", "--die-on-term", "--need-app", "--disable-logging"], port)
        d.find_workers(1, logged=UWSGI_WORKER)
        check = d.request("GET", "/check")[2].decode()
        assert check.startswith("RuntimeError: uWSGI's harakiri (3 s) is not above stream_seconds"), check
        status, _, body = d.request("GET", "/sleep")
        if status == 500:  # check_server is called at every job start: the start itself is refused
            record("uwsgi --threads 4 --harakiri 3", {"check_server": check.strip(), "job_start": "500"})
            return
        job, runner = d.start("/sleep")
        # uWSGI 2.0 arms harakiri per worker, not per thread: a request ending on another thread
        # disarms it. Let the start's thread finish its request before the stream begins.
        time.sleep(0.5)
        conn, response = d.open("GET", job + "&_format=events", headers={"Accept": "text/event-stream"},
                                timeout=20)
        try:
            held = time.monotonic()
            while next_event(response) is not None:  # the stream ends when harakiri kills the worker
                assert time.monotonic() - held < 15
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        cut_after = time.monotonic() - held
        assert cut_after < 10, "the stream was not cut by harakiri"
        wait_for(lambda: not alive(runner), timeout=10)
        wait_for(lambda: d.poll(job)["status"] != "running", timeout=HEARTBEAT_TIMEOUT + 5, interval=0.2)
        assert d.poll(job)["status"] == "interrupted"
        record("uwsgi --threads 4 --harakiri 3", {"stream_cut_after_seconds": round(cut_after, 2),
                                                  "check_server": check.strip()})
    finally:
        d.stop()


def test_check_server_fires_under_gunicorn_gevent_with_preload(tmp_path):
    """gevent patches threading in the worker after --preload imported web.py in the master."""
    try:
        import gevent  # noqa: F401
    except ImportError as e:
        needs("gevent", e)
    d = Deployment(tmp_path, multi=False)
    try:
        gunicorn(d, 1, "--worker-class", "gevent", "--preload")
        check = d.request("GET", "/check")[2].decode()
        assert check.startswith("RuntimeError: gevent monkey-patched threading after web.py was imported"), check
        record("gunicorn -k gevent --preload", {"check_server": check.strip()})
    finally:
        d.stop()


def _check_in_a_fresh_python(code):
    """check_server's verdict in a new interpreter after ``code``: 'ok' or the error's text."""
    script = code + (
        "\nfrom web_background.deployment import check_server\n"
        "try:\n    check_server(None)\n    print('ok')\n"
        "except RuntimeError as e:\n    print('RuntimeError: %s' % e)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_check_server_on_monkey_patching_order():
    try:
        import gevent  # noqa: F401
    except ImportError as e:
        needs("gevent", e)
    late = _check_in_a_fresh_python("import web\nfrom gevent import monkey\nmonkey.patch_all()")
    assert late.startswith("RuntimeError: gevent monkey-patched threading after web.py was imported"), late
    assert _check_in_a_fresh_python("from gevent import monkey\nmonkey.patch_all()\nimport web") == "ok"
    assert _check_in_a_fresh_python("import web") == "ok"


class _FakeUwsgi:
    def __init__(self, version, **opt):
        self.version = version
        self.opt = {k.replace("_", "-"): v for k, v in opt.items()}


@pytest.mark.parametrize("version, opt, fires", [
    (b"2.0.26", {}, True),
    (b"2.0.21-debian", {"master": True}, True),
    (b"2.0.26", {"enable_threads": True}, False),
    (b"2.0.26", {"threads": b"4"}, False),
    (b"2.0.27", {}, False),
    (b"2.0.30", {}, False),
])
def test_check_server_on_uwsgi_threads(monkeypatch, version, opt, fires):
    """uWSGI before 2.0.27 runs app threads only during requests unless --enable-threads or --threads."""
    from web_background.deployment import check_server

    monkeypatch.setitem(sys.modules, "uwsgi", _FakeUwsgi(version, **opt))
    if fires:
        with pytest.raises(RuntimeError, match="--enable-threads"):
            check_server({})
    else:
        check_server({})
