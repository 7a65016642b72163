"""The fork server: a clean, single-threaded Python process, started once per
web process, that imports the app's job modules and then forks one child per
process job.  Never forking the (multi-threaded) web server itself is what
makes starting a process job safe, and cheap: the child starts with
everything already imported.

Run as ``python -c "...; main()" SPEC FD`` by ``processes.py``; FD is a
SOCK_SEQPACKET socket on which each message asks for one job (its id and nice
level) and carries two file descriptors: the pipe that becomes the job's
stdout and stderr, and the job's control socket; it hands them to a spare
child forked and prepared ahead of time, and forks the next spare.  When a child ends, the
server writes its exit code on the job's control socket; when the web process
goes away, the server kills its children and exits.
"""

import importlib.util
import json
import os
import pickle
import selectors
import signal
import socket
import sys
import traceback
import types
from typing import Any, Dict, List, Optional, Tuple

from . import import_main
from ._child import frame


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


def _spare(closing: List[int]) -> Tuple[int, socket.socket]:
    """Fork a spare child that prepares itself to run a job, then waits for one:
    a start then costs a message, not a fork.  ``closing``: the server's own fds."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid != 0:
        theirs.close()
        return pid, ours
    code = 70
    try:
        ours.close()
        for fd in closing:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        from . import _child as child

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
            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:
            pass
    finally:
        os._exit(code)


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
    spare: Optional[Tuple[int, socket.socket]] = _spare([server.fileno(), *wake])
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
                        spare = _spare([server.fileno(), *wake])
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
                spare = _spare([server.fileno(), *wake])  # ready for the next job
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
    from . import _child  # noqa: F401  (imported once here rather than in every child)

    serve(server)


if __name__ == "__main__":
    main()
