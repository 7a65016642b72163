"""A job in progress, as the process that runs or watches over it sees it
(``Running``), which job the calling thread or process runs, and how a
job's body ended (``outcome``)."""

import os
import socket
import threading
import traceback
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Type

from . import capture
from .capture import Cancelled, Sink, TimedOut, raise_cancelled
from .stores import JobStatus

if TYPE_CHECKING:
    from .executors import Executor


def timed_out_error(seconds: Optional[float]) -> str:
    """The ``error`` of a job stopped by its ``timeout``."""
    return "the job timed out after %g seconds" % (seconds or 0)


def outcome(exc: Optional[BaseException], timeout: Optional[float]) -> Tuple[JobStatus, Optional[str]]:
    """``(status, error)`` of a job body that returned (``exc`` None) or raised ``exc``
    (called in the ``except`` clause, for its traceback)."""
    if exc is None:
        return JobStatus.DONE, None
    if isinstance(exc, TimedOut):
        return JobStatus.FAILED, "%s\n%s" % (timed_out_error(timeout), traceback.format_exc())
    if isinstance(exc, Cancelled):
        return JobStatus.CANCELLED, None
    return JobStatus.FAILED, traceback.format_exc()  # SystemExit too: nothing a job does stops the server


class Running:
    """What this process knows of a job it runs or watches over."""

    __slots__ = ("id", "sink", "executor", "timeout", "done", "started", "progress", "flush_lock", "pending",
                 "skipped", "final", "flushed", "lock", "ident", "thread", "stopping", "stop_at", "killed",
                 "deadline", "call", "attempt", "attempts", "retry_delay", "backoff", "retry_at", "rerun",
                 "store_failing", "cuts", "tty")

    def __init__(self, job_id: str, sink: Sink, executor: "Executor", timeout: Optional[float] = None) -> None:
        self.id = job_id
        self.sink = sink  # the capture writes here; flushes move it to the store
        self.executor = executor
        self.timeout = timeout
        self.done = threading.Event()
        self.started = False  # a queued job reads its cancel flag when it starts instead
        self.progress: Optional[Dict[str, Any]] = None  # written at the next flush
        self.flush_lock = threading.Lock()
        self.pending = ""  # output the store could not take yet (it is retried)
        self.skipped = 0  # characters before ``pending`` already past max_output
        self.final: Optional[Dict[str, Any]] = None  # the end, until the store has it
        self.flushed = 0.0  # time.monotonic() of the last flush
        self.lock = threading.Lock()  # guards ident, stopping, final
        self.ident: Optional[int] = None  # the thread running the body, while it runs it
        self.thread: Optional[threading.Thread] = None
        self.stopping: Optional[Type[Cancelled]] = None  # Cancelled or TimedOut, once asked to stop
        self.stop_at = 0.0
        self.killed = False
        self.deadline: Optional[float] = None  # time.monotonic() at which the job times out
        self.call: Any = None  # what its executor needs to run it (again)
        self.attempt, self.attempts = 1, 1
        self.retry_delay, self.backoff = 1.0, 2.0
        self.retry_at: Optional[float] = None  # time.monotonic() of the next attempt, while it waits for it
        self.rerun = threading.Event()  # an RQ work-horse waits on it between attempts
        self.store_failing = False  # the store refused its last write (logged once until it takes one)
        self.cuts: List[int] = []  # characters its only writer cut from the sink's head (see processes._cut)
        self.tty: Optional[List[int]] = None  # [columns, rows] of the terminal the job writes to, if it has one

    def next_attempt(self) -> float:
        """Make ready for the next attempt; the seconds to wait before it."""
        delay = self.retry_delay * self.backoff ** (self.attempt - 1)
        self.attempt += 1
        self.started, self.killed = False, False
        self.stopping, self.stop_at, self.deadline, self.ident, self.thread = None, 0.0, None, None, None
        return delay

    def set_progress(self, done: float, total: Optional[float], message: Optional[str]) -> None:
        if self.stopping is not None:
            raise_cancelled()
        self.progress = {"done": done, "total": total, "message": message}


# In a job's own process (see executors/child.py): where progress() reports to.
process_job: Dict[str, Callable[[float, Optional[float], Optional[str]], None]] = {}


def _current() -> Optional[Running]:
    """The job the calling thread runs, or a thread it started runs (see ``capture.route``)."""
    return capture.current_job()


def in_job() -> bool:
    """Whether the calling thread (or process) runs a job."""
    return _current() is not None or "report" in process_job


def report_progress(done: float, total: Optional[float], message: Optional[str]) -> None:
    """progress() of the job the calling thread (or process) runs."""
    running = _current()
    if running is not None:
        running.set_progress(done, total, message)
    elif "report" in process_job:
        process_job["report"](done, total, message)
    else:
        raise RuntimeError("progress() is only meaningful inside a @background job")


def process_name() -> str:
    """Which process runs a job: ``pid@host`` (the CLI shows it; tests kill by it)."""
    return "%d@%s" % (os.getpid(), socket.gethostname())
