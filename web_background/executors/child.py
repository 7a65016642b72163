"""A process job's own process (forked by ``forkserver``): capture at the
file-descriptor level, run the job in the main thread, report to the web process.

fds 1 and 2 are one pipe that the web process reads, so everything the job and
its children write lands, in the order written: ``print``, ``logging``,
``os.write(1, ...)``, C extensions, ``os.system``.  Python's ``sys.stdout`` and
``sys.stderr`` are one stream (so they keep their order), line-buffered while
the job is young and then flushed by a thread every ``FLUSH`` seconds (and
before anything writes below Python), so a job printing a million lines pays
for a few thousand system calls, not a million.  Progress and the end
travel as pickled frames on the control socket.
"""

import codecs
import faulthandler
import io
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Optional

from .. import runner, running
from . import pty_io, raise_on_stop_signals, resolve

FRAME = 4  # bytes of the big-endian length before each pickled message on a control socket


def frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(FRAME, "big") + data


FLUSH = 0.01  # seconds Python-level output may wait in the job's buffer
LINE_BUFFERED = 0.05  # seconds from the start during which every line goes out at once (the first line, mostly)


def _replace_unencodable(error: UnicodeError) -> Any:
    assert isinstance(error, UnicodeEncodeError)
    return "\ufffd" * (error.end - error.start), error.end  # a lone surrogate is one U+FFFD, as elsewhere


codecs.register_error("web_background.replace", _replace_unencodable)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = sock.recv(n - len(data))
        if not more:
            raise EOFError("the web process closed the job's control socket")
        data += more
    return data


class _Report:
    """What the job tells the web process: progress (the latest, sent by the
    flushing thread) and its end; also keeps Python's output flowing (every
    line at once while the job is young, then in batches every ``FLUSH``)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.ctl: Optional[socket.socket] = None
        self.armed = False  # the job's body runs: a stop signal raises in it
        self.ending = False  # the job's end is on its way: the web process may close the channel now
        self.began = 0.0
        self.lock = threading.Lock()
        self.progress: Optional[Any] = None
        self.sent: Optional[Any] = None
        self.started = threading.Event()
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._flushing, name="web_background-output", daemon=True)
        self.thread.start()

    def begin(self, ctl: socket.socket) -> None:
        self.ctl, self.began = ctl, time.monotonic()
        self.started.set()

    def send(self, message: Any) -> None:
        assert self.ctl is not None
        with self.lock:
            self.ctl.sendall(frame(message))

    def send_end(self, status: str, result: bytes, error: Optional[str]) -> None:
        """The job's end, then its result's pickle as a frame of its own: sent as it
        is (no second pickling, no copy), read by the web process straight into its buffer."""
        assert self.ctl is not None
        with self.lock:
            self.ctl.sendall(frame(("end", status, error)))
            self.ctl.sendall(len(result).to_bytes(FRAME, "big"))
            self.ctl.sendall(result)

    def set_progress(self, done: float, total: Optional[float], message: Optional[str]) -> None:
        self.progress = {"done": done, "total": total, "message": message}

    def _flushing(self) -> None:
        self.started.wait()
        line_buffered = True
        while not self.closed.wait(FLUSH):
            if line_buffered and time.monotonic() - self.began >= LINE_BUFFERED:
                line_buffered = False  # output that flows goes out in batches from now on
                try:
                    self.stream.reconfigure(line_buffering=False)
                except (AttributeError, ValueError):  # the job closed it
                    pass
            self._flush()

    def _flush(self) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError):  # the web process is gone, or the job closed its stdout
            pass
        progress = self.progress
        if progress is not self.sent:
            self.sent = progress
            try:
                self.send(("progress", progress))
            except OSError:
                pass

    def close(self) -> None:
        self.closed.set()
        self.thread.join()
        self._flush()


def _flushing_first(flush: Callable[[], None], func: Callable[..., Any], fds_only: bool = False) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        if not fds_only or (args and args[0] in (1, 2)):
            flush()
        return func(*args, **kwargs)

    return call


def prepare() -> "_Report":
    """Everything a job process can do before it knows its job (a spare child of
    the fork server does it ahead of time): Python's streams over fds 1 and 2,
    the app's logging handlers pointed at them, writes below Python made to
    flush Python's first, signals that stop the job, the reporting thread."""
    buffer = io.BufferedWriter(io.FileIO(1, "w", closefd=False), 1 << 16)
    # one stream for both: what the job writes to stdout and stderr stays in the order written
    out = io.TextIOWrapper(buffer, encoding="utf-8", errors="web_background.replace", line_buffering=True)
    replace = {id(stream): out for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)}
    # the old streams must stay referenced: collecting one would flush it out of order
    prepare.old = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)  # type: ignore[attr-defined]
    sys.stdout = sys.stderr = sys.__stdout__ = sys.__stderr__ = out  # type: ignore[misc]
    handlers = list(logging.getLogger().handlers)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        handlers.extend(getattr(logger, "handlers", ()))
    for handler in handlers:  # handlers made before the fork write to the job's streams too, in order
        if isinstance(handler, logging.StreamHandler) and id(handler.stream) in replace:
            handler.setStream(replace[id(handler.stream)])
    # what writes below Python must come after what Python has buffered
    flush = out.flush
    os.write = _flushing_first(flush, os.write, fds_only=True)  # type: ignore[assignment]
    os.system = _flushing_first(flush, os.system)  # type: ignore[assignment]
    os._exit = _flushing_first(flush, os._exit)  # type: ignore[assignment]
    subprocess.Popen._execute_child = _flushing_first(flush, subprocess.Popen._execute_child)  # type: ignore
    os.register_at_fork(before=flush)
    faulthandler.enable(file=sys.stderr)  # a crash in C leaves its Python traceback in the output
    report = _Report(out)
    running.process_job["report"] = report.set_progress
    raise_on_stop_signals(lambda: report.armed)
    return report


def run(report: "_Report", job_id: str, nice: int, out_fd: int, ctl_fd: int) -> int:
    """Run the job whose call arrives on ``ctl_fd``, its output into ``out_fd``;
    the exit code of the process."""
    os.setpgid(0, 0)  # the job and its children: one group, stopped as one
    if nice:
        os.nice(nice)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(out_fd)
    os.set_inheritable(ctl_fd, False)  # what the job runs (os.system) holds no channel of its
    pty_io.child_environment()  # a job with tty=True writes to a terminal: say so, as a terminal does
    ctl = socket.socket(fileno=ctl_fd)
    ctl.setblocking(True)  # a gevent-patched web process hands over non-blocking sockets
    report.begin(ctl)
    ctl.sendall(frame(("pid", os.getpid())))
    size = int.from_bytes(_recv_exactly(ctl, FRAME), "big")
    call, timeout = pickle.loads(_recv_exactly(ctl, size))
    threading.Thread(target=_watch_channel, args=(ctl, report), name="web_background-channel", daemon=True).start()
    result = None
    try:
        try:
            ref, args, kwargs, ctx = pickle.loads(call)
            func = resolve(ref)
            report.armed = True
            result = runner.run_in_context(ctx, func, *args, **kwargs)
        finally:
            report.armed = False
        status, error = running.outcome(None, timeout)
    except BaseException as e:
        status, error = running.outcome(e, timeout)
    report.ending = True
    report.close()
    report.send_end(status.value, pickled_result(result), error)
    return 0


def pickled_result(result: Any) -> bytes:
    """``result`` pickled; else its ``repr`` pickled; else a placeholder naming its type."""
    try:
        return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        pass
    try:
        text = repr(result)
    except Exception:
        text = "<a result of type %s that neither pickles nor has a working repr>" % _type_name(result)
    return pickle.dumps(text, protocol=pickle.HIGHEST_PROTOCOL)


def _type_name(value: Any) -> str:
    kind = type(value)
    return "%s.%s" % (getattr(kind, "__module__", "?"), getattr(kind, "__qualname__", "?"))


def _watch_channel(ctl: socket.socket, report: "_Report") -> None:
    """The web process sends nothing after the call: the channel's end means it
    is gone (killed, even by -9), and so must the job be, with all it started."""
    try:
        while ctl.recv(1):
            pass
    except OSError:
        pass
    if not report.ending:
        os.killpg(0, signal.SIGKILL)
