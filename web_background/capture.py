"""Where output goes: each thread's writes to sys.stdout and sys.stderr (text
and bytes), to the job the thread runs, the job that started the thread, or
the job whose work it does for a pool; log records and tqdm bars plug in
(``logs``, ``progress_bars``).

``streams`` makes sys's streams per thread, whatever replaces them.  A thread
that runs a job gets its own ``write``, a ``functools.partial`` around the job
buffer's ``StringIO.write``, so print() in that thread goes straight to C code
(type check, append, length) with no Python frame per write.

Another thread can still change where a job's writes go, atomically, because
a partial's target is swapped in place (``__setstate__``) under the GIL:
draining swaps in a fresh buffer, cancelling swaps in a function that raises
``Cancelled``.  The normal path pays nothing for either.
"""

import codecs
import io
import subprocess
import sys
import threading
from functools import partial, wraps
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import streams

_lock = threading.Lock()
_here = threading.local()  # .log: the calling thread's log writer, .sink: its Sink, .job: its job


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

    __slots__ = ("_buf", "_writers", "_cancelled", "_closed", "_ended", "_written", "_lock", "on_first_write")

    def __init__(self) -> None:
        self._buf = io.StringIO()
        # every write function handed out: (it, cancellable, where it writes once the job has ended)
        self._writers: List[Tuple[partial, bool, Optional[Callable[..., Any]]]] = []
        self._cancelled = False
        self._closed = False
        self._ended = False
        self._written = False
        self._lock = threading.Lock()
        self.on_first_write: Optional[Callable[[], None]] = None

    def writer(self, cancellable: bool = True, after_end: Optional[Callable[..., Any]] = None) -> partial:
        """A write function for one thread: C-level, swappable from any thread.
        ``after_end``: where it writes once the job has ended (a thread the job
        started that outlives it), instead of nowhere."""
        with self._lock:
            w = partial(self._target(cancellable, after_end))
            self._writers.append((w, cancellable, after_end))
            return w

    def _target(self, cancellable: bool, after_end: Optional[Callable[..., Any]]) -> Callable[..., Any]:
        if cancellable and self._cancelled:
            return raise_cancelled
        if self._ended and after_end is not None:
            return after_end
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
        for w, cancellable, after_end in self._writers:
            w.__setstate__((self._target(cancellable, after_end), (), None, None))  # type: ignore[attr-defined]

    def has_output(self) -> bool:
        return bool(self._buf.tell())

    def size(self) -> int:
        """Characters written since the last drain."""
        return self._buf.tell()

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

    def end(self) -> None:
        """The job has ended: threads it started that outlive it write where
        they would have without it (the server's output) from now on."""
        with self._lock:
            self._ended = True
            self._retarget()


class _Bytes:
    """``sys.stdout.buffer`` in a job: bytes decoded as UTF-8 (with replacement;
    a character split across two writes is decoded whole) into the job's output,
    in order with the text writes."""

    def __init__(self, write: Callable[[str], Any], flush: Callable[[], None]) -> None:
        self._write, self.flush = write, flush
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def write(self, data: Any) -> int:
        text = self._decoder.decode(bytes(data))
        if text:
            self._write(text)
        return len(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def writable(self) -> bool:
        return True

    closed = False


def install() -> None:
    """Put the capture in place: sys's streams per thread (``streams``), threads
    and pool work a job starts written to the job, and the first-job hooks."""
    streams.install()
    if threading.Thread.start is not _start_in_job:
        threading.Thread.start = _start_in_job  # type: ignore[method-assign]
        _follow_pool_work()
    if _first_job:
        with _lock:
            while _first_job:  # other job starts wait here until every hook has run
                _first_job[0]()
                _first_job.pop(0)


_first_job: List[Callable[[], None]] = []  # what else the first job start puts in place (log records, tqdm)


def on_first_job(hook: Callable[[], None]) -> Callable[[], None]:
    """Run ``hook`` once, at the first job start (a decorator)."""
    _first_job.append(hook)
    return hook


def stream(name: str) -> Any:
    """A ``sys.stdout``-like object (``name``: "stdout" or "stderr") that writes
    where the calling thread's writes go, whichever thread calls it: to keep
    in something a job will write through (``web.ctx.env["wsgi.errors"]``)."""
    return streams.router(name)


def route(sink: Sink, on_flush: Optional[Callable[[], None]] = None, cancellable: bool = True,
          inherited: bool = False, job: Any = None, tee: bool = False, tty: bool = False) -> None:
    """Send everything the calling thread writes into ``sink``, text and bytes;
    its flush() calls ``on_flush``.  ``cancellable``: ``sink.cancel()`` makes
    its writes raise.  ``inherited``: a thread the job started, which writes
    where it would have without the job once the job has ended.  ``job``: what
    ``current_job()`` answers in the thread (and the threads it starts).
    ``tee``: text also goes where it would without the route (a request
    handler's output, kept in case it starts a job); threads it starts are not routed.
    ``tty``: what the thread's ``isatty()`` answers (see ``_isatty``)."""
    install()
    shared = None if inherited or tee else sink.writer(cancellable)
    attributes: Dict[str, Dict[str, Any]] = {}
    for name in streams.NAMES:
        if tee:
            attributes[name] = {"write": partial(_tee, sink.writer(cancellable=False), name)}
            continue
        w = shared or sink.writer(cancellable, after_end=partial(streams.write_outside, name))
        buffer = _Bytes(w, on_flush or _no_flush)
        buffer.isatty = _isatty(tty)  # type: ignore[method-assign]
        attributes[name] = {"write": w, "buffer": buffer, "isatty": buffer.isatty}
        if on_flush is not None:
            attributes[name]["flush"] = on_flush
    streams.route(attributes, apart=not tee)
    _here.log = sink.writer(cancellable=False, after_end=len if inherited else None)  # never raises Cancelled
    _here.sink = sink
    _here.job = job
    _here.tty = tty


def _isatty(tty: bool) -> Callable[[], bool]:
    """A routed thread's ``sys.stdout.isatty()`` (and stderr's): its job's ``tty``,
    never the server's console (which a job's output does not go to)."""
    return _yes if tty else _no


def _yes() -> bool:
    return True


def _no() -> bool:
    return False


def _tee(keep: Callable[[str], Any], name: str, s: str) -> int:
    keep(s)
    return streams.write_outside(name, s)


def _no_flush() -> None:
    pass


def unroute() -> None:
    """Give the calling thread its ordinary stdout/stderr back."""
    streams.unroute()
    _here.__dict__.clear()


suspend, resume = streams.suspend, streams.resume  # the route set aside while the app's log handlers run


def current_job() -> Any:
    """The job the calling thread runs (or was started by), or None."""
    return getattr(_here, "job", None)


def log_writer() -> Optional[Callable[[str], Any]]:
    """Where the calling thread's log records go (its job's output), or None."""
    return getattr(_here, "log", None)


# -- threads and pool work a job starts write to the job ---------------------

_thread_start = threading.Thread.start
_pool_workers: Tuple[Any, ...] = ()  # thread targets that work for whoever submits (pool workers)


def _start_in_job(self: threading.Thread) -> None:
    """``threading.Thread.start`` once a job has run: a thread started from a
    job's thread (``threading.Thread`` and the threads those start) writes to
    the job and reports its progress.  A pool's worker is not the job's: the
    work the job submits is (see ``_follow_pool_work``)."""
    job = current_job()
    if job is not None and not getattr(self, "_wb_in_job", False) \
            and getattr(self, "_target", None) not in _pool_workers:
        self._wb_in_job = True  # type: ignore[attr-defined]
        sink, run, tty = _here.sink, self.run, getattr(_here, "tty", False)

        def run_in_job() -> None:
            route(sink, inherited=True, job=job, tty=tty)
            try:
                run()
            except Cancelled:  # the job was stopped: so is this thread, quietly
                pass
            finally:
                unroute()

        self.run = run_in_job  # type: ignore[method-assign]
    _thread_start(self)


def _follow_pool_work() -> None:
    """Work submitted to a ``ThreadPoolExecutor`` from a job runs as the job's
    (its output, progress, cancel); the pool's threads belong to no job, so a
    worker started inside a job and reused from outside writes where it would,
    and a cancelled job's work fails its own future only."""
    global _pool_workers
    from concurrent.futures import thread as pool

    _pool_workers = (pool._worker,)
    submit = pool.ThreadPoolExecutor.submit

    @wraps(submit)
    def submit_for_the_job(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        job = current_job()
        if job is not None:
            fn = partial(_work_for, _here.sink, job, fn)
        return submit(self, fn, *args, **kwargs)

    pool.ThreadPoolExecutor.submit = submit_for_the_job  # type: ignore[method-assign]


def _work_for(sink: Sink, job: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    route(sink, inherited=True, job=job)
    try:
        return fn(*args, **kwargs)
    finally:
        unroute()


Thread = threading.Thread  # every thread a job starts writes to the job; the old helper's name stays


# -- helpers for what the capture cannot see ---------------------------------


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
