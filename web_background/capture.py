"""Where output goes: per-thread routing of sys.stdout, sys.stderr and log records.

One permanent proxy per stream is installed once.  A write looks up the
current thread in a route table and either hands the text to that thread's
route (a job's ``list.append``, or a function raising ``Cancelled``) or falls
through to the stream that was there before.  Threads that are not routed
see no difference.
"""

import logging
import subprocess
import sys
import threading
import traceback
from threading import get_ident
from typing import Any, Callable, Dict, List, Optional

# thread ident -> callable taking one str.  Set and cleared by the job runner;
# an ident is reused once its thread ends, so a route never outlives its use.
_routes: Dict[int, Callable[[str], Any]] = {}
# thread ident -> the job's raw sink (a list); log records go here directly so
# they neither recurse through print nor raise Cancelled inside logging.
_sinks: Dict[int, List[str]] = {}
# thread ident -> what flush() on a routed thread does (write the job's output out)
_flushes: Dict[int, Callable[[], None]] = {}

_strlen = str.__len__
_lock = threading.Lock()
_proxies: Dict[str, "_StreamProxy"] = {}


class _StreamProxy:
    """A text stream that routes each write by the writing thread."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, s: str) -> int:
        try:
            route = _routes[get_ident()]
        except KeyError:
            return self._stream.write(s)
        try:
            n = _strlen(s)
        except TypeError:
            raise TypeError("write() argument must be str, not %s" % type(s).__name__) from None
        route(s)
        return n

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        ident = get_ident()
        if ident not in _routes:
            self._stream.flush()
        elif ident in _flushes:
            _flushes[ident]()

    def __getattr__(self, name: str) -> Any:
        # fileno, isatty, encoding, errors, buffer, ... are the real stream's.
        return getattr(self._stream, name)

    def __repr__(self) -> str:
        return "<web_background capture of %r>" % (self._stream,)


def install() -> None:
    """Put the proxies in place, wrapping whatever sys.stdout/err is now.

    Called at every job start: if something replaced ``sys.stdout`` since
    (pytest, a server's log redirection), the new stream is wrapped and
    becomes where unrouted output goes.
    """
    for name in ("stdout", "stderr"):
        current = getattr(sys, name)
        proxy = _proxies.get(name)
        if current is proxy:
            continue
        with _lock:
            if getattr(sys, name) is proxy:
                continue
            if isinstance(current, _StreamProxy):  # someone else's copy of ours
                current = current._stream
            _proxies[name] = proxy = _StreamProxy(current)
            setattr(sys, name, proxy)
    _install_log_capture()


def real_stderr() -> Any:
    """The stream unrouted stderr output goes to (the server's log)."""
    proxy = _proxies.get("stderr")
    return proxy._stream if proxy is not None else sys.stderr


def route(ident: int, sink: List[str], on_flush: Optional[Callable[[], None]] = None) -> None:
    """Send everything thread ``ident`` writes into ``sink``; its flush() calls ``on_flush``."""
    _sinks[ident] = sink
    if on_flush is not None:
        _flushes[ident] = on_flush
    _routes[ident] = sink.append


def reroute(ident: int, fn: Callable[[str], Any]) -> None:
    """Replace the route of a routed thread (e.g. with one raising Cancelled)."""
    if ident in _routes:
        _routes[ident] = fn


def unroute(ident: int) -> None:
    _routes.pop(ident, None)
    _sinks.pop(ident, None)
    _flushes.pop(ident, None)


def current_sink() -> Optional[List[str]]:
    """The sink of the calling thread, or None when it is not captured."""
    return _sinks.get(get_ident())


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
            sink = _sinks.get(get_ident())
            if sink is not None:
                try:
                    sink.append(_log_format.format(record) + "\n")
                except Exception:  # a bad format string must not break the job
                    sink.append("(unformattable log record %r)\n" % (record.msg,))
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
        from . import jobs  # the job context travels with the thread

        self._wb_sink = current_sink()
        self._wb_job = jobs._current()

    def run(self) -> None:
        if self._wb_sink is None:
            return super().run()
        from . import jobs

        ident = get_ident()
        route(ident, self._wb_sink)
        jobs._enter(self._wb_job)
        try:
            super().run()
        except BaseException:
            self._wb_sink.append(traceback.format_exc())
            raise
        finally:
            jobs._leave()
            unroute(ident)


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
    done = subprocess.CompletedProcess(args, returncode)
    if check:
        done.check_returncode()
    return done
