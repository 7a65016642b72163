"""Where output goes: per-thread routing of sys.stdout, sys.stderr and log records.

One permanent proxy per stream is installed once.  It is a ``threading.local``:
a thread that runs a job gives the proxy its own ``write`` attribute, a
``functools.partial`` around the job buffer's ``StringIO.write``, so print()
in that thread goes straight to C code (type check, append, length) with no
Python frame per write.  Threads without one use the class's ``write``, which
falls through to the stream that was there before.

Another thread can still change where a job's writes go, atomically, because
a partial's target is swapped in place (``__setstate__``) under the GIL:
draining swaps in a fresh buffer, cancelling swaps in a function that raises
``Cancelled``.  The normal path pays nothing for either.
"""

import io
import logging
import subprocess
import sys
import threading
import traceback
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Tuple

_lock = threading.Lock()
_proxies: Dict[str, "_StreamProxy"] = {}
_here = threading.local()  # .log: the calling thread's log writer, .sink: its Sink


class Cancelled(BaseException):
    """Raised inside a job at its next write or ``progress()`` after ``cancel()``.

    A BaseException, so ``except Exception`` in the job does not swallow it.
    """


class TimedOut(Cancelled):
    """Raised inside a job that ran past its ``timeout``; the job ends ``failed``."""


def raise_cancelled(*_args: Any) -> None:
    raise Cancelled("job cancelled")


class Sink:
    """One job's output since the last drain, written by one or more threads.

    The very first write goes through Python once (to call ``on_first_write``,
    so that a job's first line is written out at once, not at the next tick);
    it then swaps every writer to the C-level ``StringIO.write``.
    """

    __slots__ = ("_buf", "_writers", "_cancelled", "_closed", "_written", "_lock", "on_first_write")

    def __init__(self) -> None:
        self._buf = io.StringIO()
        self._writers: List[Tuple[partial, bool]] = []  # every write function handed out
        self._cancelled = False
        self._closed = False
        self._written = False
        self._lock = threading.Lock()
        self.on_first_write: Optional[Callable[[], None]] = None

    def writer(self, cancellable: bool = True) -> partial:
        """A write function for one thread: C-level, swappable from any thread."""
        with self._lock:
            w = partial(self._target(cancellable))
            self._writers.append((w, cancellable))
            return w

    def _target(self, cancellable: bool) -> Callable[..., Any]:
        if cancellable and self._cancelled:
            return raise_cancelled
        if self._closed:
            return len  # dropped: the job has ended
        return self._buf.write if self._written else self._first_write

    def _first_write(self, s: str) -> int:
        with self._lock:
            n = self._buf.write(s)
            if not self._written:
                self._written = True
                self._retarget()
        if self.on_first_write is not None:
            self.on_first_write()
        return n

    def _retarget(self) -> None:
        for w, cancellable in self._writers:
            w.__setstate__((self._target(cancellable), (), None, None))  # type: ignore[attr-defined]

    def has_output(self) -> bool:
        return bool(self._buf.tell())

    def drain(self) -> str:
        """Everything written since the last drain; later writes go to a new buffer."""
        with self._lock:
            if not self._buf.tell():
                return ""
            old, self._buf = self._buf, io.StringIO()
            self._retarget()
        # no write can reach ``old`` now: a partial reads its target and calls
        # it inside one C call, which the swaps above cannot interleave with
        return old.getvalue()

    def cancel(self) -> None:
        """Make every cancellable writer raise Cancelled from its next write on."""
        with self._lock:
            self._cancelled = True
            self._retarget()

    def close(self) -> None:
        """The job was stopped and has ended: what its threads write from now on
        is dropped (cancellable writers raise Cancelled, so helper threads stop)."""
        with self._lock:
            self._cancelled = self._closed = True
            self._retarget()


class _StreamProxy(threading.local):
    """A text stream whose ``write`` is per thread (see the module docstring)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, s: str) -> int:  # threads not running a job
        return self._stream.write(s)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        # fileno, isatty, encoding, errors, buffer, ... are the real stream's.
        return getattr(self._stream, name)

    def __repr__(self) -> str:
        return "<web_background capture of %r>" % (self._stream,)


def install() -> None:
    """Put the proxies in place, wrapping whatever sys.stdout/err is now.

    Called at every job start: if something replaced ``sys.stdout`` since
    (pytest, a server's log redirection), the new stream is wrapped and
    becomes where output outside jobs goes.
    """
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is _proxies.get(name):
            continue
        with _lock:
            current = getattr(sys, name)
            if current is _proxies.get(name):
                continue
            if isinstance(current, _StreamProxy):  # someone else's copy of ours
                current = current._stream
            _proxies[name] = _StreamProxy(current)
            setattr(sys, name, _proxies[name])
    _install_log_capture()


def real_stderr() -> Any:
    """The stream stderr output outside jobs goes to (the server's log)."""
    proxy = _proxies.get("stderr")
    return proxy._stream if proxy is not None else sys.stderr


def route(sink: Sink, on_flush: Optional[Callable[[], None]] = None, cancellable: bool = True) -> None:
    """Send everything the calling thread writes into ``sink``; its flush()
    calls ``on_flush``.  ``cancellable``: ``sink.cancel()`` makes its writes raise."""
    install()
    w = sink.writer(cancellable)
    for proxy in _proxies.values():
        # the calling thread's own attribute (the proxy is a threading.local)
        proxy.write = w  # type: ignore[method-assign]
        if on_flush is not None:
            proxy.flush = on_flush  # type: ignore[method-assign]
    _here.log = sink.writer(cancellable=False)  # logging itself never raises Cancelled
    _here.sink = sink


def unroute() -> None:
    """Give the calling thread its ordinary stdout/stderr back."""
    for proxy in _proxies.values():
        proxy.__dict__.pop("write", None)
        proxy.__dict__.pop("flush", None)
    _here.__dict__.clear()


def current_sink() -> Optional[Sink]:
    """The sink of the calling thread, or None when it is not captured."""
    return getattr(_here, "sink", None)


# -- logging ---------------------------------------------------------------
# A record factory, not a root handler: it sees every record made in a job
# thread whatever handlers the app installs, before or after us, and it does
# not stop a later logging.basicConfig() from configuring the root logger.

_log_format = logging.Formatter("%(levelname)s:%(name)s:%(message)s")
_factory_installed = False


def _install_log_capture() -> None:
    global _factory_installed
    if _factory_installed:
        return
    with _lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            write = getattr(_here, "log", None)
            if write is not None:
                try:
                    write(_log_format.format(record) + "\n")
                except Exception:  # a bad format string must not break the job
                    write("(unformattable log record %r)\n" % (record.msg,))
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


# -- helpers for what the proxies cannot see ---------------------------------


class Thread(threading.Thread):
    """A ``threading.Thread`` whose output goes to the job that started it.

    Threads a job starts with plain ``threading.Thread`` write to the server's
    stdout; start them with this class instead to keep their output (and
    ``progress()``) in the job.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from . import running  # the job context travels with the thread

        self._wb_sink = current_sink()
        self._wb_job = running._current()

    def run(self) -> None:
        if self._wb_sink is None:
            return super().run()
        from . import running

        route(self._wb_sink)
        running._enter(self._wb_job)
        try:
            super().run()
        except Cancelled:
            pass
        except BaseException:
            _here.log(traceback.format_exc())
            raise
        finally:
            running._leave()
            unroute()


def run_process(args: Any, **kwargs: Any) -> "subprocess.CompletedProcess[str]":
    """Run a child process with its stdout and stderr copied into the job.

    Like ``subprocess.run(args, **kwargs)``; a child writes to file
    descriptors the capture cannot see, so its output is piped and printed
    line by line (which also lets a cancelled job stop waiting on it).
    """
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.STDOUT)
    kwargs.setdefault("text", True)
    check = kwargs.pop("check", False)
    with subprocess.Popen(args, **kwargs) as proc:
        try:
            for line in proc.stdout or ():
                sys.stdout.write(line)
        except BaseException:
            proc.kill()
            raise
        returncode = proc.wait()
    done: "subprocess.CompletedProcess[str]" = subprocess.CompletedProcess(args, returncode)
    if check:
        done.check_returncode()
    return done
