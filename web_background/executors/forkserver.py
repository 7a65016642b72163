"""The fork server: a clean, single-threaded Python process, started once per
web process, that imports the app's job modules and then forks one child per
process job.  Never forking the (multi-threaded) web server itself is what
makes starting a process job safe, and cheap: the child starts with
everything already imported.

The web process's side (``ForkServer``, ``fork_server()``) starts it as
``python -c "...; main()" SPEC FD``; FD is a
SOCK_SEQPACKET socket on which each message asks for one job (its id and nice
level) and carries two file descriptors: the pipe that becomes the job's
stdout and stderr, and the job's control socket; it hands them to a spare
child forked and prepared ahead of time, and forks the next spare.  When a child ends, the
server writes its exit code on the job's control socket; when the web process
goes away, the server kills its children and exits.  A child keeps no fd but
its own (no other job's channel), so the web process sees each job end when
it ends, whatever became of the server.
"""

import importlib.machinery
import importlib.util
import json
import os
import pickle
import select
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import types
from typing import Any, Dict, List, Optional, Set, Tuple

from . import job_modules, import_main
from .child import frame


# -- in the web process ------------------------------------------------------

SEND_TIMEOUT = 1.0  # seconds a start may wait on the fork server's socket (a stopped server fills it)
READY = b"ready"  # what the server sends, once, when it has imported the app's modules


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
                            "modules": sorted(job_modules - {"__main__"})}
    files = {name: _loaded_from_file(name) for name in spec["modules"]}
    spec["module_files"] = {name: path for name, path in files.items() if path}
    main = sys.modules.get("__main__")
    if "__main__" in job_modules and main is not None:
        name = getattr(getattr(main, "__spec__", None), "name", None)
        if name:
            spec["main_module"] = name
        elif getattr(main, "__file__", None):
            spec["main_file"] = os.path.abspath(str(main.__file__))
    return spec


class ForkServer:
    """The fork server process, and the socket that asks it for children."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        code = "import sys; sys.path[:0] = %r; from web_background.executors.forkserver import main; main()" % (
            [os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))])
        with theirs:
            self.process = subprocess.Popen([_python(), "-c", code, json.dumps(_spec()), str(theirs.fileno())],
                                            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                            # a signal to the server's group is for the server: the fork
                                            # server ends when the server does, and takes the jobs with it
                                            start_new_session=True)
        ours.settimeout(SEND_TIMEOUT)  # a stopped server fills the socket: a start must not hang on it
        self.socket = ours
        self.ready_at: Optional[float] = None  # time.monotonic() when it said it had imported the app
        self.pid = os.getpid()

    def fork(self, job_id: str, nice: int, fds: List[int]) -> None:
        socket.send_fds(self.socket, [pickle.dumps((job_id, nice))], fds)

    def kill(self) -> None:
        """End a fork server that is stuck (stopped, hung): it and its spare child;
        jobs it started live on, each in a process group of its own."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        self.socket.close()
        self.process.wait()

    def ready_since(self) -> Optional[float]:
        """When the server said it is ready (its imports done), or None: not yet."""
        if self.ready_at is None:
            try:  # asked without waiting (a gevent-patched socket would wait on MSG_DONTWAIT)
                if select.select([self.socket], [], [], 0)[0] and self.socket.recv(16) == READY:
                    self.ready_at = time.monotonic()
            except (OSError, ValueError):  # closed
                pass
        return self.ready_at

    def alive(self) -> bool:
        return self.pid == os.getpid() and self.process.poll() is None

    def close(self) -> None:
        self.socket.close()  # the server sees the end and exits
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_server: Dict[str, ForkServer] = {}  # this process's fork server, under "server"
_server_lock = threading.Lock()


def fork_server() -> ForkServer:
    """This process's fork server, started on first use (and again if it died)."""
    with _server_lock:
        server = _server.get("server")
        if server is None or not server.alive():
            server = _server["server"] = ForkServer()
        return server


def replace_fork_server(server: ForkServer) -> None:
    """Kill ``server`` (stuck, or it refused a start); the next start makes a fresh one."""
    with _server_lock:
        if _server.get("server") is server:
            _server.pop("server")
    if server.pid == os.getpid():
        server.kill()


def stop_fork_server() -> None:
    """Stop this process's fork server, if it has one (it kills the jobs it runs);
    the next process job starts a fresh one."""
    with _server_lock:
        server = _server.pop("server", None)
    if server is not None and server.pid == os.getpid():
        server.close()


# -- in the fork server --------------------------------------------------------

importing_app = False  # True while the fork server imports the app: no process job may start (see processes.py)


class _NotImported(AttributeError, RuntimeError):
    """A name looked up in a module the fork server could not import."""


def _unimportable(name: str, failure: str) -> types.ModuleType:
    """What stands in ``sys.modules`` for a module the fork server could not
    import: a job looking its function up there fails with why (and the
    children never import it again, which could start jobs of their own)."""
    module = types.ModuleType(name)

    def __getattr__(attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise _NotImported("web_background's fork server could not import %s, which defines %s:\n%s"
                          % (name, attribute, failure))

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


def _preload(spec: Dict[str, Any]) -> None:
    """Import what the web process had: its ``__main__`` (when it defines jobs;
    run as ``__mp_main__``, so its ``if __name__ == "__main__":`` block does
    not run) and the modules that define @background functions."""
    global importing_app
    sys.path[:] = spec["path"]
    sys.argv[:] = spec["argv"]  # as the app saw it (some read it at import)
    importing_app = True
    try:
        _import_app(spec)
    finally:
        importing_app = False


def _import_app(spec: Dict[str, Any]) -> None:
    try:
        if spec.get("main_module") or spec.get("main_file"):
            import_main(spec.get("main_file"), spec.get("main_module"))
    except BaseException:
        failure = traceback.format_exc()
        sys.stderr.write("web_background fork server: could not import the app's main module:\n" + failure)
        sys.modules["__main__"] = _unimportable("__main__", failure)
    files = spec.get("module_files", {})
    for name in spec.get("modules", ()):
        try:
            if name in files:  # loaded from a file under a name no import finds: load it so, by that name
                module_spec = importlib.util.spec_from_file_location(name, files[name])
                if module_spec is None or module_spec.loader is None:
                    raise ImportError("cannot load %s from %s" % (name, files[name]))
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[name] = module
                module_spec.loader.exec_module(module)
            else:
                __import__(name)
        except BaseException:
            failure = traceback.format_exc()
            sys.stderr.write("web_background fork server: could not import %s:\n%s" % (name, failure))
            sys.modules[name] = _unimportable(name, failure)


def _spare() -> Tuple[int, socket.socket]:
    """Fork a spare child that prepares itself to run a job, then waits for one:
    a start then costs a message, not a fork.  It keeps no fd but its own:
    another job's channel held here would hide that job's end."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid != 0:
        theirs.close()
        return pid, ours
    code = 70
    errors = -1
    try:
        ours.close()
        errors = os.dup(2)  # the server's stderr: where this package's own errors go, never into a job's output
        _close_all_but({0, 1, 2, errors, theirs.fileno()})  # other jobs' channels, the server's own
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        from . import child

        report = child.prepare()
        message, fds, _flags, _addr = socket.recv_fds(theirs, 4096, 2)
        if not message:  # the server is gone, or has no job for this spare
            code = 0
        else:
            theirs.close()
            job_id, nice = pickle.loads(message)
            code = child.run(report, job_id, nice, fds[0], fds[1])
    except BaseException:
        try:
            os.write(errors, ("web_background: a job's process failed:\n" + traceback.format_exc()).encode())
        except BaseException:
            pass
    finally:
        os._exit(code)


def _close_all_but(keep: Set[int]) -> None:
    """Close every file descriptor of this process but ``keep``."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: the usual range
        fds = list(range(3, 1024))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:  # the listing's own fd, already closed
                pass


def _adopt_orphans() -> None:
    """Become the parent of what jobs leave behind (Linux: a child subreaper), so
    that it is reaped here rather than left a zombie where nothing reaps (a
    container whose first process is not an init)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def serve(server: socket.socket) -> None:
    """Fork a child per request until the web process closes its end (or the
    server is told to stop); the children still running are then killed."""
    wake = os.pipe()
    for fd in wake:
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake[1])
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector through the wakeup fd
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C in the server's terminal is for the server
    signal.signal(signal.SIGTERM, _stop)
    _adopt_orphans()
    children: Dict[int, int] = {}  # pid -> the job's control socket (for its exit code)
    spare: Optional[Tuple[int, socket.socket]] = _spare()
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ, "request")
    selector.register(wake[0], selectors.EVENT_READ, "child")
    try:
        while True:
            for key, _ in selector.select():
                if key.data == "child":
                    try:
                        while os.read(wake[0], 512):
                            pass
                    except BlockingIOError:
                        pass
                    _reap(children)
                    continue
                try:
                    message, fds, _flags, _addr = socket.recv_fds(server, 4096, 2)
                except InterruptedError:
                    continue
                except OSError:
                    message, fds = b"", []
                if not message:  # the web process is gone: so are its jobs
                    return
                out_fd, ctl_fd = fds
                for _ in range(3):  # a spare that died meanwhile is replaced
                    if spare is None:
                        spare = _spare()
                    try:
                        socket.send_fds(spare[1], [message], [out_fd, ctl_fd])
                        break
                    except OSError:
                        spare[1].close()
                        spare = None
                os.close(out_fd)
                if spare is None:
                    os.close(ctl_fd)
                    continue
                children[spare[0]] = ctl_fd
                spare[1].close()
                spare = _spare()  # ready for the next job
            _reap(children)
    finally:
        if spare is not None:
            spare[1].close()  # the spare sees the end and exits
        for pid in children:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass


def _reap(children: Dict[int, int]) -> None:
    """Tell each ended child's job its exit code (negative: the signal that killed it)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        ctl_fd = children.pop(pid, None)
        if ctl_fd is None:
            continue
        try:
            os.write(ctl_fd, frame(("exit", os.waitstatus_to_exitcode(status))))
        except OSError:
            pass
        os.close(ctl_fd)


def main() -> None:
    spec = json.loads(sys.argv[1])
    server = socket.socket(fileno=int(sys.argv[2]))
    _preload(spec)
    from . import child  # noqa: F401  (imported once here rather than in every child)

    server.send(READY)  # the web process's launch deadlines count from here, not from a slow import
    serve(server)


if __name__ == "__main__":
    main()
