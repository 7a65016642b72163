"""Jobs in processes of their own: isolated from the web server.

Each job is a child of a fork server (``_forkserver``): a clean,
single-threaded process started once, with the app's job modules imported, so
the multi-threaded server is never forked and a start costs one fork.  The job
runs at a lower CPU priority (``nice``), in its child's main thread, where a
stop is a signal (``Cancelled``/``TimedOut`` raised at once, even in a sleep);
past ``cancel_grace`` its process group is killed.  One thread here collects
every job's output pipe and control socket: output goes into the job's sink
(so every store works, the memory store too), progress and the end into the
runner; a crash ends the job ``failed`` with what killed it, output kept.
"""

import codecs
import collections
import importlib.machinery
import json
import logging
import os
import pickle
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Tuple, Type

from ..capture import Cancelled
from ..stores import JobStatus
from . import STOP_SIGNALS, Executor, _job_modules, check_pickles, function_ref
from . import _forkserver
from ._child import FRAME, frame

if TYPE_CHECKING:
    from ..runner import _Running

log = logging.getLogger("web_background")
DRAIN = 0.5  # seconds to wait for the last output after a job's process has exited
IMPORTING_APP = (
    "a process job was started while web_background's fork server was importing the app's module: code at the "
    "top level of the app's script (or of a module defining jobs) starts jobs when it is imported. Start them "
    "only when the script is run, under 'if __name__ == \"__main__\":', or from a request handler.")


def _python() -> str:
    """The Python to start the fork server with: this interpreter, in its virtual
    environment.  Servers that embed Python have a ``sys.executable`` that is not a
    Python (mod_wsgi: apache2) or is the base interpreter, without the venv's
    packages (pyuwsgi in a venv): then the one in ``sys.prefix/bin``."""
    exe = sys.executable or ""
    if os.path.basename(exe).startswith("python") and \
            os.path.dirname(os.path.abspath(exe)) == os.path.join(sys.prefix, "bin"):
        return exe
    for prefix in (sys.prefix, sys.exec_prefix):
        for name in ("python%d.%d" % sys.version_info[:2], "python3", "python"):
            candidate = os.path.join(prefix, "bin", name)
            if os.access(candidate, os.X_OK):
                return candidate
    return exe or "python3"


def _loaded_from_file(name: str) -> Optional[str]:
    """The file of a job module that no import by its name finds (uWSGI's --wsgi-file
    loads app.py as 'uwsgi_file_...', mod_wsgi as '_mod_wsgi_...'), else None."""
    path = getattr(sys.modules.get(name), "__file__", None)
    if not path or "." in name:
        return None
    try:
        found = importlib.machinery.PathFinder.find_spec(name, sys.path)
    except (ImportError, ValueError):
        found = None
    return None if found is not None else os.path.abspath(path)


def _spec() -> Dict[str, Any]:
    """What the fork server imports: this process's sys.path, its ``__main__``
    when that defines jobs, and every module that defines @background functions."""
    spec: Dict[str, Any] = {"path": list(sys.path), "argv": list(getattr(sys, "argv", [])),
                            "modules": sorted(_job_modules - {"__main__"})}
    files = {name: _loaded_from_file(name) for name in spec["modules"]}
    spec["module_files"] = {name: path for name, path in files.items() if path}
    main = sys.modules.get("__main__")
    if "__main__" in _job_modules and main is not None:
        name = getattr(getattr(main, "__spec__", None), "name", None)
        if name:
            spec["main_module"] = name
        elif getattr(main, "__file__", None):
            spec["main_file"] = os.path.abspath(str(main.__file__))
    return spec


class _ForkServer:
    """The fork server process, and the socket that asks it for children."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        code = "import sys; sys.path[:0] = %r; from web_background.executors._forkserver import main; main()" % (
            [os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))])
        with theirs:
            self.process = subprocess.Popen([_python(), "-c", code, json.dumps(_spec()), str(theirs.fileno())],
                                            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                            # a signal to the server's group is for the server: the fork
                                            # server ends when the server does, and takes the jobs with it
                                            start_new_session=True)
        self.socket = ours
        self.pid = os.getpid()

    def fork(self, job_id: str, nice: int, fds: List[int]) -> None:
        socket.send_fds(self.socket, [pickle.dumps((job_id, nice))], fds)

    def alive(self) -> bool:
        return self.pid == os.getpid() and self.process.poll() is None

    def close(self) -> None:
        self.socket.close()  # the server sees the end and exits
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_server: Dict[str, _ForkServer] = {}
_server_lock = threading.Lock()


def _fork_server() -> _ForkServer:
    """This process's fork server, started on first use (and again if it died)."""
    with _server_lock:
        server = _server.get("server")
        if server is None or not server.alive():
            server = _server["server"] = _ForkServer()
        return server


class _Proc:
    """One job's process, as the collecting thread sees it."""

    def __init__(self, running: "_Running", out: int, ctl: socket.socket) -> None:
        self.running, self.out, self.ctl = running, out, ctl
        self.write = running.sink.writer(cancellable=False)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.pid: Optional[int] = None
        self.signal: Optional[int] = None  # a signal asked for before the pid was known
        self.ctl_buffer = b""
        self.end: Optional[Tuple[str, Any, Optional[str]]] = None
        self.exit: Optional[int] = None
        self.exited_at: Optional[float] = None
        self.out_open = self.ctl_open = True


def _crash(code: Optional[int]) -> str:
    if code is None:
        return "the job's process ended without saying how (its fork server stopped)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "signal %d" % -code
        return "the job's process was killed by %s" % name
    return "the job's process exited with code %d" % code


class ProcessExecutor(Executor):
    """At most ``workers`` job processes at once, the rest queued (``queue_limit``)."""

    name = "processes"
    plain_context = True

    def __init__(self, runner: Any) -> None:
        super().__init__(runner)
        settings = runner.settings
        self.workers, self.queue_limit, self.nice = settings["workers"], settings["queue_limit"], settings["nice"]
        self._lock = threading.Lock()
        self._waiting: Deque[Tuple["_Running", bytes]] = collections.deque()
        self._procs: Dict[str, _Proc] = {}
        self._launching = 0  # taken off the queue, not yet in _procs: they hold a slot too
        self._pid = 0
        self._closed = False
        self._selector: Optional[selectors.BaseSelector] = None
        self._wake: Tuple[int, int] = (-1, -1)

    def prepare(self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any],
                ctx: Optional[Dict[str, Any]], queue: Optional[str]) -> Any:
        if _forkserver.importing_app:  # else each fork server would start another, without end
            raise RuntimeError(IMPORTING_APP)
        return check_pickles((function_ref(func, allow_main=True), args, kwargs, ctx), "in a process")

    def start(self, running: "_Running", call: Any) -> bool:
        with self._lock:
            if self._closed:
                raise RuntimeError("this executor was closed")
            self._ensure_thread()
            if len(self._waiting) - (self.workers - self._busy()) >= self.queue_limit:
                return False
            self._waiting.append((running, call))
        self._poke()
        return True

    def _busy(self) -> int:
        """Slots taken (under ``_lock``): job processes, and jobs on their way to being one."""
        return len(self._procs) + self._launching

    def stop(self, running: "_Running", reason: Type[Cancelled]) -> None:
        self._signal(running, STOP_SIGNALS[reason], group=False)

    def kill(self, running: "_Running", record_end: Callable[[], None]) -> None:
        self._signal(running, signal.SIGKILL, group=True)  # the collector then records the stopped end

    def _signal(self, running: "_Running", signum: int, group: bool) -> None:
        with self._lock:
            proc = self._procs.get(running.id)
            if proc is None:
                return
            if proc.pid is None or proc.exit is not None:
                proc.signal = signum if proc.signal != signal.SIGKILL else proc.signal
                return
            try:
                (os.killpg if group else os.kill)(proc.pid, signum)
            except OSError:  # it has just ended
                pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._poke()

    # -- the collecting thread -------------------------------------------

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()  # first use, or a forked child: nothing of the parent's carries over
        self._procs, self._waiting, self._launching = {}, collections.deque(), 0
        self._selector = selectors.DefaultSelector()
        self._wake = os.pipe()
        os.set_blocking(self._wake[0], False)
        self._selector.register(self._wake[0], selectors.EVENT_READ, None)
        threading.Thread(target=self._collect, name="web_background-processes", daemon=True).start()

    def _poke(self) -> None:
        try:
            os.write(self._wake[1], b"x")
        except (OSError, ValueError):
            pass

    def _collect(self) -> None:
        selector = self._selector
        assert selector is not None
        while True:
            self._launch_waiting()
            with self._lock:
                if self._closed and not self._procs and not self._waiting:
                    break
            timeout = DRAIN / 5 if any(p.exit is not None for p in self._procs.values()) else None
            for key, _ in selector.select(timeout):
                if key.data is None:
                    try:
                        while os.read(self._wake[0], 4096):
                            pass
                    except BlockingIOError:
                        pass
                else:
                    key.data()
            for proc in list(self._procs.values()):
                self._end_if_over(proc)
        selector.close()
        for fd in self._wake:
            os.close(fd)

    def _launch_waiting(self) -> None:
        while True:
            with self._lock:
                if not self._waiting or self._busy() >= self.workers:
                    return
                running, call = self._waiting.popleft()
                self._launching += 1
            try:
                if self.runner.begin(running):
                    self._launch(running, call)
            except Exception as e:
                log.exception("job %s could not be started in a process", running.id)
                self.runner.finish(running, JobStatus.FAILED, None, "the job's process could not be started: %s" % e)
            finally:
                with self._lock:
                    self._launching -= 1

    def _launch(self, running: "_Running", call: bytes) -> None:
        out_r, out_w = os.pipe()
        ctl, ctl_child = socket.socketpair()
        try:
            try:
                _fork_server().fork(running.id, self.nice, [out_w, ctl_child.fileno()])
            except OSError:  # the fork server died since: start another, once
                with _server_lock:
                    _server.pop("server", None)
                _fork_server().fork(running.id, self.nice, [out_w, ctl_child.fileno()])
        except BaseException:
            os.close(out_r)
            ctl.close()
            raise
        finally:
            os.close(out_w)
            ctl_child.close()
        proc = _Proc(running, out_r, ctl)
        with self._lock:
            self._procs[running.id] = proc
        ctl.sendall(frame((call, running.timeout)))
        assert self._selector is not None
        self._selector.register(out_r, selectors.EVENT_READ, lambda: self._read_output(proc))
        self._selector.register(ctl, selectors.EVENT_READ, lambda: self._read_control(proc))

    def _read_output(self, proc: _Proc) -> None:
        data = os.read(proc.out, 1 << 16)
        if data:
            text = proc.decoder.decode(data)
            if text:
                proc.write(text)
            return
        self._close_output(proc)

    def _close_output(self, proc: _Proc) -> None:
        if not proc.out_open:
            return
        proc.out_open = False
        assert self._selector is not None
        self._selector.unregister(proc.out)
        os.close(proc.out)
        tail = proc.decoder.decode(b"", final=True)
        if tail:
            proc.write(tail)

    def _read_control(self, proc: _Proc) -> None:
        try:
            data = proc.ctl.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            proc.ctl_open = False
            assert self._selector is not None
            self._selector.unregister(proc.ctl)
            proc.ctl.close()
            if proc.exit is None and proc.exited_at is None:  # no exit code will come
                proc.exited_at = time.monotonic()
            return
        proc.ctl_buffer += data
        while len(proc.ctl_buffer) >= FRAME:
            size = int.from_bytes(proc.ctl_buffer[:FRAME], "big")
            if len(proc.ctl_buffer) < FRAME + size:
                break
            message = pickle.loads(proc.ctl_buffer[FRAME:FRAME + size])
            proc.ctl_buffer = proc.ctl_buffer[FRAME + size:]
            self._on_message(proc, message)

    def _on_message(self, proc: _Proc, message: Tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "pid":
            with self._lock:
                proc.pid = message[1]
                pending, proc.signal = proc.signal, None
            if pending is not None:
                self._signal(proc.running, pending, group=pending == signal.SIGKILL)
        elif kind == "progress":
            proc.running.progress = message[1]
        elif kind == "end":
            proc.end = message[1:]
        elif kind == "exit":
            proc.exit, proc.exited_at = message[1], time.monotonic()

    def _end_if_over(self, proc: _Proc) -> None:
        """Record the end of a job whose process has exited, once its output is
        read (or ``DRAIN`` seconds later: a child it left behind may hold the pipe)."""
        if proc.exited_at is None or (proc.out_open and time.monotonic() - proc.exited_at < DRAIN):
            return
        if proc.ctl_open and proc.exit is None and time.monotonic() - proc.exited_at < DRAIN:
            return
        self._close_output(proc)
        if proc.ctl_open:
            assert self._selector is not None
            self._selector.unregister(proc.ctl)
            proc.ctl.close()
            proc.ctl_open = False
        running = proc.running
        with self._lock:
            self._procs.pop(running.id, None)
        if running.stopping is not None and proc.pid is not None:
            try:  # what the stopped job started goes with it
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        if proc.end is not None and not (running.killed and proc.end[0] == JobStatus.DONE.value):
            status, result, error = proc.end
            self.runner.finish(running, JobStatus(status), result, error)
        elif running.stopping is not None:
            self.runner.finish_stopped(running)
        else:
            self.runner.finish(running, JobStatus.FAILED, None, _crash(proc.exit))


EXECUTOR = ProcessExecutor
