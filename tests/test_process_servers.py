"""Process jobs (executor="processes") under real servers, over real HTTP on 127.0.0.1:
web.py's own server with the memory store, and gunicorn's sync and gthread
workers (2 each) sharing a SQLite store.

Under gunicorn every job is read from both workers: before each request the
other worker is paused (SIGSTOP, then SIGCONT), so the request lands on the
worker chosen, alternately the one running the job and the other; the app's
``X-Served-By`` header says which answered.
"""
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import sys
import time
from urllib.parse import urlsplit

import pytest

from conftest import needs, wait_for
from servers import ROOT, Server, free_port, get, next_event

pytestmark = pytest.mark.stores("memory")  # the servers have their own stores

GUNICORN = shutil.which("gunicorn", path=os.path.dirname(sys.executable))
APP = os.path.join(ROOT, "tests", "procapp.py")


def _stat(pid):
    """(state, ppid, session) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[3])


def _pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children(ppid):
    found = []
    for pid in _pids():
        stat = _stat(pid)
        if stat is not None and stat[1] == ppid and stat[0] != "Z":
            found.append(pid)
    return sorted(found)


def in_session(sid):
    """Live processes of a session (a Server runs in a session of its own;
    job processes keep it when they make their own process group)."""
    found = []
    for pid in _pids():
        stat = _stat(pid)
        if pid != sid and stat is not None and stat[2] == sid and stat[0] != "Z":
            found.append(pid)
    return found


def alive(pid):
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


class ProcServer:
    """A running procapp server: the web processes, and requests aimed at one of them."""

    def __init__(self, kind, server, workers, store_path=None):
        self.kind, self.server, self.url = kind, server, server.url
        self.workers = workers  # pids of the web processes
        self.store_path = store_path
        self.served = []  # X-Served-By of each aimed request

    @contextlib.contextmanager
    def on(self, pid):
        """Requests made inside land on web process ``pid`` (the others are paused)."""
        others = [w for w in self.workers if w != pid]
        for w in others:
            os.kill(w, signal.SIGSTOP)
        try:
            yield
        finally:
            for w in others:
                os.kill(w, signal.SIGCONT)

    def get(self, url, pid=None, **kw):
        """A GET answered by web process ``pid`` (any when None)."""
        with self.on(pid) if pid is not None else contextlib.nullcontext():
            status, headers, body = get(url, **kw)
        served = int(headers["X-Served-By"]) if headers.get("X-Served-By") else None
        assert pid is None or served == pid, (served, pid)
        self.served.append(served)
        return status, headers, body

    def other(self, pid):
        """Another web process than ``pid`` (``pid`` itself when there is only one)."""
        return next((w for w in self.workers if w != pid), pid)

    def runner(self, job_id):
        """The job's ``runner`` field, read straight from the SQLite store."""
        from web_background.stores.sqlite import SQLiteStore

        return SQLiteStore(self.store_path, create=False).get(job_id)["runner"]


def gunicorn_argv(port, *worker_class):
    if GUNICORN is None:
        needs("gunicorn", "not installed next to %s" % sys.executable)
    return [GUNICORN, "--workers", "2", *worker_class, "--bind", "127.0.0.1:%d" % port, "--max-requests", "1000",
            "--graceful-timeout", "2", "--chdir", os.path.join(ROOT, "tests"), "procapp:application"]


SERVERS = {
    "webpy-memory": lambda port: [sys.executable, APP, "127.0.0.1:%d" % port],
    "gunicorn-sync-sqlite": lambda port: gunicorn_argv(port, "--worker-class", "sync"),
    "gunicorn-gthread-sqlite": lambda port: gunicorn_argv(port, "--worker-class", "gthread", "--threads", "4"),
}


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request, tmp_path_factory):
    kind, port = request.param, free_port()
    argv = SERVERS[kind](port)
    store_path = None
    if kind.endswith("sqlite"):
        store_path = str(tmp_path_factory.mktemp(kind) / "jobs.db")
    store = "sqlite:///%s" % store_path if store_path else "memory://"
    started = Server(argv, port, env=dict(WEB_BACKGROUND_STORE=store)).start()
    try:
        if kind.startswith("gunicorn"):
            wait_for(lambda: len(children(started.proc.pid)) == 2)
            workers = children(started.proc.pid)
        else:
            workers = [started.proc.pid]
        yield ProcServer(kind, started, workers, store_path)
    finally:
        sid = started.proc.pid
        started.stop()
        for pid in in_session(sid):  # a job process left running (none, when the tests pass)
            os.kill(pid, signal.SIGKILL)


def start(server, path, pid=None):
    """Start a job over HTTP: (its page's URL, the web process that started it)."""
    status, headers, body = server.get(server.url + path, pid=pid)
    assert status == 303, (status, body)
    location = headers["Location"]
    assert "_t=" in location
    return location, int(headers["X-Served-By"])


def poll(server, location, offset=0, pid=None):
    status, headers, body = server.get(location + "&_format=json&_offset=%d" % offset, pid=pid)
    assert status == 200, (status, body)
    assert headers["Content-Type"] == "application/json"
    return json.loads(body)


def alternate(server, runner):
    """Web processes to aim requests at: the job's runner and the other one, in turn."""
    while True:
        yield runner
        yield server.other(runner)


def follow(server, location, runner, timeout=15.0):
    """JSON polls with ``_offset`` until the job ends: (all its output, the replies)."""
    text, offset, replies = "", 0, []
    aim = alternate(server, runner)
    deadline = time.monotonic() + timeout
    while True:
        reply = poll(server, location, offset, pid=next(aim))
        assert reply["offset"] == offset + len(reply["output"]) and reply["cut"] == 0
        text += reply["output"]
        offset = reply["offset"]
        replies.append(reply)
        if reply["status"] not in ("queued", "running"):
            return text, replies
        assert time.monotonic() < deadline, "the job did not end within %ss: %r" % (timeout, reply)
        time.sleep(0.02)


def numbered(runner, lines):
    return "counting in web process %d\n" % runner + "".join("line %04d\n" % n for n in range(lines))


def job_pid(output):
    return int(output.split(" pid ", 1)[1].split()[0])


def assert_read_from_every_web_process(server, runner, job_id, before):
    assert set(server.served[before:]) == set(server.workers)
    if server.store_path:
        assert server.runner(job_id) == "%d@%s" % (runner, socket.gethostname())


# -- the tests -----------------------------------------------------------------------------


def test_json_polls_with_offset_follow_a_job_to_done_with_every_line_once(server):
    lines = 40
    before = len(server.served)
    location, runner = start(server, "/count?lines=%d&delay=0.02" % lines)
    text, replies = follow(server, location, runner)
    assert replies[-1]["status"] == "done"
    assert "running" in [r["status"] for r in replies]  # followed live, not only read at the end
    assert text == numbered(runner, lines)
    assert replies[-1]["progress"] == {"done": lines, "total": lines, "message": "line %d of %d" % (lines, lines)}
    assert_read_from_every_web_process(server, runner, location.rsplit("_t=", 1)[1], before)
    status, headers, body = server.get(location, pid=server.other(runner))  # the page the 303 sent to
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8" and b"line 0039" in body


def test_the_event_stream_resumed_on_either_process_carries_every_line_once_and_ends_done(server):
    lines = 40
    before = len(server.served)
    location, runner = start(server, "/count?lines=%d&delay=0.02" % lines)
    url = urlsplit(location)
    aim = alternate(server, runner)
    text, last_id, end, states = "", None, None, []
    deadline = time.monotonic() + 15
    while end is None:
        assert time.monotonic() < deadline, "no end event within 15 s"
        pid = next(aim)
        conn = http.client.HTTPConnection("127.0.0.1", server.server.port, timeout=20)
        try:
            headers = {"Accept": "text/event-stream"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            with server.on(pid):  # the connection lands on pid; the stream then runs on
                conn.request("GET", "%s?%s" % (url.path, url.query), headers=headers)
                response = conn.getresponse()
            assert response.status == 200
            assert response.getheader("Content-Type").startswith("text/event-stream")
            assert int(response.getheader("X-Served-By")) == pid
            server.served.append(pid)
            for _ in range(5):  # a few events, then drop the connection and resume
                event = next_event(response)
                if event is None:
                    break
                event_id, kind, data = event[0], event[1], json.loads(event[2])
                last_id = event_id
                if kind == "output":
                    assert data["offset"] == len(text) + len(data["text"]) == int(event_id)
                    text += data["text"]
                elif kind == "state":
                    states.append(data["status"])
                elif kind == "end":
                    end = data
                    break
        finally:
            conn.close()
        if end is None and event is None:
            time.sleep(0.02)  # the server ended the stream (a sync worker does at once): come back
    assert end["status"] == "done"
    assert end["progress"] == {"done": lines, "total": lines, "message": "line %d of %d" % (lines, lines)}
    assert text == numbered(runner, lines)
    assert "running" in states
    assert_read_from_every_web_process(server, runner, location.rsplit("_t=", 1)[1], before)


def test_cancel_post_ends_a_sleeping_job_cancelled_at_once_and_its_finally_block_runs(server):
    location, runner = start(server, "/sleep")
    wait_for(lambda: "sleeping in pid" in poll(server, location)["output"], timeout=10)
    pid = job_pid(poll(server, location)["output"])
    assert alive(pid)
    canceller = server.other(runner)  # under gunicorn: the worker that does not run the job
    asked = time.monotonic()
    with server.on(canceller):
        conn = http.client.HTTPConnection("127.0.0.1", server.server.port, timeout=10)
        try:
            conn.request("POST", location[len(server.url):] + "&_action=cancel",
                         headers={"Accept": "application/json", "Origin": server.url})
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if canceller != runner:  # the job's own worker is paused: the cancel is asked for, not yet done
            requested = json.loads(get(location + "&_format=json")[2])
            assert requested["status"] == "running" and requested["cancel_requested"] is True
    assert response.status == 200, body
    assert int(response.getheader("X-Served-By")) == canceller
    assert json.loads(body) == {"id": location.rsplit("_t=", 1)[1], "cancelled": True}
    wait_for(lambda: poll(server, location)["status"] not in ("queued", "running"), timeout=10)
    ended = time.monotonic() - asked
    reply = poll(server, location, pid=runner)
    assert reply["status"] == "cancelled" and reply["cancel_requested"] is False
    assert ended < 3.0, "cancelled after %.1f s: stopped by the kill after cancel_grace, not at once" % ended
    assert reply["output"] == "sleeping in pid %d\nfinally ran\n" % pid
    assert poll(server, location, pid=canceller) == reply
    wait_for(lambda: not alive(pid), timeout=5)


def test_a_job_process_exiting_with_code_3_fails_with_that_error_and_its_output_and_the_server_serves_on(server):
    location, runner = start(server, "/crash")
    wait_for(lambda: poll(server, location)["status"] not in ("queued", "running"), timeout=10)
    reply = poll(server, location, pid=runner)
    assert reply["status"] == "failed"
    assert reply["error"] == "the job's process exited with code 3"
    pid = job_pid(reply["output"])
    assert reply["output"] == "about to crash in pid %d\n" % pid  # printed unflushed: os._exit kept it
    assert poll(server, location, pid=server.other(runner)) == reply
    wait_for(lambda: not alive(pid), timeout=5)
    # the web process that ran it serves on, and runs new jobs
    status, _, body = server.get(server.url + "/plain", pid=runner)
    assert status == 200 and body == b"plain answer from %d\n" % runner
    again, again_runner = start(server, "/count?lines=3&delay=0", pid=runner)
    assert again_runner == runner
    text, replies = follow(server, again, runner)
    assert replies[-1]["status"] == "done" and text == numbered(runner, 3)


def test_a_job_past_its_timeout_fails_with_a_timed_out_error_and_its_finally_block_runs(server):
    location, runner = start(server, "/timeout")
    text, replies = follow(server, location, runner)
    reply = replies[-1]
    assert reply["status"] == "failed"
    assert reply["error"].startswith("the job timed out after 0.5 seconds\n")
    assert "TimedOut" in reply["error"]
    assert text == "started\nfinally ran\n"
    assert reply["finished"] - reply["started"] < 3.0  # stopped by its signal, not the kill after cancel_grace


def test_a_job_process_killed_by_sigkill_fails_naming_the_signal_and_keeps_its_output(server):
    location, runner = start(server, "/sleep")
    wait_for(lambda: "sleeping in pid" in poll(server, location)["output"], timeout=10)
    pid = job_pid(poll(server, location)["output"])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: poll(server, location)["status"] not in ("queued", "running"), timeout=10)
    reply = poll(server, location, pid=server.other(runner))
    assert reply["status"] == "failed"
    assert reply["error"] == "the job's process was killed by SIGKILL"
    assert reply["output"] == "sleeping in pid %d\n" % pid  # no finally: nothing runs after a SIGKILL
    assert poll(server, location, pid=runner) == reply
    status, _, body = server.get(server.url + "/plain", pid=runner)
    assert status == 200 and body == b"plain answer from %d\n" % runner


def test_stopping_the_server_by_its_process_group_ends_the_job_processes_it_runs():
    port = free_port()
    server = Server([sys.executable, APP, "127.0.0.1:%d" % port], port, env=dict(WEB_BACKGROUND_STORE="memory://"))
    server.start()
    pid = None
    try:
        location = get(server.url + "/sleep")[1]["Location"]
        wait_for(lambda: "sleeping in pid" in json.loads(get(location + "&_format=json")[2])["output"], timeout=10)
        pid = job_pid(json.loads(get(location + "&_format=json")[2])["output"])
        server.stop()  # SIGTERM to the whole process group of the server
        wait_for(lambda: not alive(pid), timeout=3)
    finally:
        server.stop()
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)
