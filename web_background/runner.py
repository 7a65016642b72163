"""Running jobs: start one on its executor, run its body, stop it when asked
or at its deadline, batch its output into the store, and start the per-process
maintenance thread that keeps all that moving (``maintenance``); what a job is
now, as any process reads it, is ``records``.  Executors are reached only
through the seam in ``executors``; nothing here knows about HTTP."""

import logging
import os
import secrets
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple, Type

from . import capture, executors, output, shutdown
from .capture import Cancelled, Sink, TimedOut
from .executors import Executor
from .maintenance import TICK, maintain
from .records import Records
from .running import Running, outcome, process_name, timed_out_error
from .stores import FINISHED, JobStatus, Store, StoreError, open_store

log = logging.getLogger("web_background")


class Busy(Exception):
    """The job queue is full (``queue_limit``); try again later."""


def _no_context(ctx: Any, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


# How a job enters the request context it was started from; web_glue sets it
# (this module knows nothing of web.ctx).
run_in_context: Callable[..., Any] = _no_context


def new_job_id() -> str:
    """A fresh job id: 128 random bits, URL-safe, never starting with ``-`` (a
    command line, the CLI's included, would read it as an option)."""
    while True:
        job_id = secrets.token_urlsafe(16)
        if not job_id.startswith("-"):
            return job_id


class Runner(Records):
    """Starts jobs on their executor, runs their body, batches their output;
    reads jobs as ``Records`` does."""

    def __init__(self, settings: Dict[str, Any]) -> None:
        self.settings = settings
        self.store: Store = open_store(settings["store"], settings["max_output"], settings["ttl"])
        self._executors: Dict[str, Executor] = {}
        self._executors_lock = threading.Lock()
        self.local: Dict[str, Running] = {}  # jobs this process runs or watches over
        self._pid = 0
        self.closed = threading.Event()
        self.wake = threading.Event()  # a new job: the maintenance thread's pace changes
        self._prune_lock = threading.Lock()  # one pass over old jobs at a time in this process
        shutdown.watch(self)

    def executor(self, name: Optional[str] = None) -> Executor:
        """The executor called ``name`` (default: the ``executor`` setting), made on first use."""
        name = name or self.settings["executor"]
        found = self._executors.get(name)
        if found is None:
            with self._executors_lock:
                found = self._executors.get(name)
                if found is None:
                    found = self._executors[name] = executors.create(name, self)
        return found

    # -- starting and running -------------------------------------------

    def start(
        self,
        func: Callable[..., Any],
        args: Tuple[Any, ...] = (),
        kwargs: Optional[Dict[str, Any]] = None,
        sink: Optional[Sink] = None,
        ctx: Optional[Dict[str, Any]] = None,
        executor: Optional[str] = None,
        queue: Optional[str] = None,
        timeout: Optional[float] = None,
        retries: int = 0,
        retry_delay: float = 1.0,
        backoff: float = 2.0,
        key: Optional[str] = None,
        tty: Optional[bool] = None,
        **fields: Any,
    ) -> Tuple[str, bool]:
        """Start ``func(*args, **kwargs)`` as a new job on ``executor``: its id,
        and True; or, when a queued or running job holds ``key``, that job's id
        and False.  ``sink`` may already hold output that starts the job's (what
        the request handler printed); ``ctx`` is the request context it runs in;
        ``tty``: it writes to a terminal of the ``tty_size`` setting (default: the ``tty`` setting)."""
        ex = self.executor(executor)
        call = ex.prepare(func, args, kwargs or {}, ctx, queue)
        if timeout is None:
            timeout = self.settings["timeout"]
        timeout = timeout or None  # 0: no limit
        self._ensure_process()
        job_id = new_job_id()
        record = self._new_record(job_id, func, time.time(), dict(
            fields, executor=ex.name, timeout=timeout, attempt=1, attempts=retries + 1, retry_delay=retry_delay,
            backoff=backoff))
        if queue is not None:
            record["queue"] = queue
        if key is not None:
            record["key"] = key
        size = list(self.settings["tty_size"]) if (self.settings["tty"] if tty is None else tty) else None
        record["tty"] = size
        if not ex.local:
            record["heartbeat"] = None  # nobody here runs it while it waits on its queue
        running = Running(job_id, sink if sink is not None else Sink(), ex, timeout)
        running.call, running.attempts, running.retry_delay, running.backoff = call, retries + 1, retry_delay, backoff
        running.tty = size
        self.store.create(record)
        holder = self.store.claim(key, job_id) if key is not None else None
        if holder is not None:  # no double start: the job that holds the key is the answer
            self.store.delete(job_id)
            return holder, False
        started = False
        try:
            if ex.local:
                self.local[job_id] = self._adopt(running)
                self.wake.set()
            elif running.sink.has_output():
                self.store.append(job_id, running.sink.drain())
            started = ex.start(running, call)
        finally:
            if not started:
                self.local.pop(job_id, None)
                self.store.delete(job_id)
        if not started:
            raise Busy("%d jobs are already waiting" % self.settings["queue_limit"])
        return job_id, True

    def _new_record(self, job_id: str, func: Callable[..., Any], now: float, fields: Dict[str, Any]) -> Dict[str, Any]:
        record = {
            "id": job_id,
            "status": JobStatus.QUEUED.value,
            "name": getattr(func, "__qualname__", repr(func)),
            "created": now,
            "started": None,
            "finished": None,
            "progress": None,
            "result": None,
            "error": None,
            "cancel": False,
            "runner": process_name(),
            "heartbeat": now,
        }
        record.update(fields)
        return record

    def run_here(self, job_id: str, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any],
                 ctx: Optional[Dict[str, Any]], executor: Executor) -> Any:
        """Run a job whose record exists, in the calling thread (an RQ work-horse)."""
        self._ensure_process()
        record = self.store.get(job_id) or {}
        running = self.local[job_id] = self._adopt(Running(job_id, Sink(), executor, record.get("timeout")))
        running.attempts = record.get("attempts") or 1
        running.tty = record.get("tty")
        running.retry_delay, running.backoff = record.get("retry_delay") or 0.0, record.get("backoff") or 1.0
        executor.arm(running)
        self.wake.set()
        self.run(running, func, args, kwargs, ctx, record=record or None)
        while not running.done.wait(TICK):  # between attempts: the maintenance thread says when to go on
            if running.rerun.is_set():
                running.rerun.clear()
                self.run(running, func, args, kwargs, ctx)
        return running.final["result"] if running.final else None

    def begin(self, running: Running, record: Optional[Dict[str, Any]] = None) -> bool:
        """Mark a job running; False (and the job ended as cancelled) when it was
        cancelled or stopped before it could start."""
        if running.final is not None:
            return False
        if record is None:  # the caller may have just read it
            try:
                record = self.store.get(running.id)
            except StoreError as e:  # the store is away: the job runs, its cancel flag is read later
                output.trouble(running, e)
                record = {"cancel": False}
        if record is None or record["cancel"] or running.stopping is not None:
            self.finish(running, JobStatus.CANCELLED)
            return False
        running.started = True
        now = time.time()
        try:
            self.store.update(running.id, status=JobStatus.RUNNING.value, started=now, heartbeat=now,
                              runner=process_name())
        except StoreError as e:  # its end says how it went, once the store is back
            output.trouble(running, e)
        if running.timeout:
            running.deadline = time.monotonic() + running.timeout
        return True

    def run(self, running: Running, func: Callable[..., Any], args: Any, kwargs: Any,
            ctx: Optional[Dict[str, Any]] = None, record: Optional[Dict[str, Any]] = None) -> None:
        """Run a job's body in the calling thread, its output captured
        (``record``: the job's record, when the caller has just read it)."""
        if not self.begin(running, record):
            return
        # the job's own thread is stopped by its executor; its finally: blocks may still print
        capture.route(running.sink, on_flush=lambda: self.try_flush(running), cancellable=False, job=running,
                      tty=running.tty is not None)
        result = None
        try:
            try:
                with running.lock:  # from here a stop may be raised in this thread
                    running.ident, running.thread = threading.get_ident(), threading.current_thread()
                if running.stopping is not None:
                    raise running.stopping("job stopped")
                result = run_in_context(ctx, func, *args, **kwargs)
            finally:
                self._disarm(running)
            status, error = outcome(None, running.timeout)
        except BaseException as e:
            status, error = outcome(e, running.timeout)
        finally:
            capture.unroute()
        if error is not None:
            log.error("job %s (%s) failed:\n%s", running.id, getattr(func, "__qualname__", func), error)
        self.finish(running, status, result, error)

    def _disarm(self, running: Running) -> None:
        """The body has returned: no stop may reach this thread any more."""
        late: Optional[BaseException] = None
        while True:
            try:
                with running.lock:
                    ident, running.ident = running.ident, None
                if ident is not None:
                    running.executor.disarm(running, ident)
                break
            except Cancelled as e:  # a stop that landed while disarming
                late = e
        if late is not None:
            raise late

    def finish(self, running: Running, status: JobStatus, result: Any = None, error: Optional[str] = None) -> None:
        """Record a job's end (once: a job recorded as stopped ignores what its body says later).
        A job asked to stop ends stopped even when its body caught the stop and
        returned: ``cancelled`` (its result kept), or ``failed`` when it timed out."""
        with running.lock:
            if running.final is not None:
                return
            if status is JobStatus.DONE and running.stopping is not None:
                if running.stopping is TimedOut:
                    status, error = JobStatus.FAILED, timed_out_error(running.timeout)
                else:
                    status = JobStatus.CANCELLED
            retry = (status is JobStatus.FAILED and running.attempt < running.attempts
                     and running.stopping is not Cancelled)  # a cancel is never retried
            if not retry:
                running.final = dict(status=status.value, result=result, error=error, finished=time.time())
        if retry:
            self._retry(running, error)
            return
        if running.stopping is not None:  # threads it leaves behind (or one stuck in C) write no more
            running.sink.close()
        else:  # threads it started that outlive it write where they would have without it
            running.sink.end()
        try:
            self.write_end(running)
        except Exception as e:  # the maintenance thread retries until the store takes it
            output.trouble(running, e)

    def _retry(self, running: Running, error: Optional[str]) -> None:
        """An attempt failed and attempts are left: the job waits ``queued`` for the next."""
        delay = running.next_attempt()
        log.warning("job %s: attempt %d of %d failed; the next starts in %g s",
                    running.id, running.attempt - 1, running.attempts, delay)
        try:
            self.flush(running)
            self.store.append(running.id, "--- attempt %d of %d ---\n" % (running.attempt, running.attempts))
            self.store.update(running.id, status=JobStatus.QUEUED.value, attempt=running.attempt, error=error,
                              heartbeat=time.time())
        except Exception as e:  # the next attempt goes ahead; the store is told at its next write
            output.trouble(running, e)
        running.retry_at = time.monotonic() + delay
        self.wake.set()

    def write_end(self, running: Running) -> None:
        assert running.final is not None
        self.flush(running)
        self.store.update(running.id, **running.final)
        self.local.pop(running.id, None)
        running.done.set()

    # -- stopping ----------------------------------------------------------

    def finish_stopped(self, running: Running) -> None:
        """Record the end of a job stopped by force: cancelled, or failed when it timed out."""
        if running.stopping is TimedOut:
            self.finish(running, JobStatus.FAILED, error=timed_out_error(running.timeout))
        else:
            self.finish(running, JobStatus.CANCELLED)

    def stop(self, running: Running, reason: Type[Cancelled]) -> None:
        """Ask a job of this process to stop: at once if it has not started yet,
        else by raising ``reason`` in it; ``cancel_grace`` later by force."""
        with running.lock:
            if running.stopping is not None or running.final is not None:
                return
            running.stopping, running.stop_at = reason, time.monotonic()
        if not running.started:
            self.finish_stopped(running)
            return
        running.sink.cancel()  # threads the job started raise at their next write
        running.executor.stop(running, reason)
        self.wake.set()

    def cancel(self, job_id: str) -> bool:
        """Ask a job to stop, from any process; False when it has already ended (or is unknown)."""
        record = self.record(job_id)
        if record is None or record["status"] in FINISHED:
            return False
        self.store.update(job_id, cancel=True)
        running = self.local.get(job_id)
        if running is not None:
            self.stop(running, Cancelled)
        elif self._queued_elsewhere(record):
            if self.executor(record.get("executor")).cancel_queued(job_id):
                self.store.update(job_id, status=JobStatus.CANCELLED.value, finished=time.time())
        return True

    # -- output and progress ----------------------------------------------

    def _adopt(self, running: Running) -> Running:
        running.sink.on_first_write = lambda: self.try_flush(running)  # the first line at once
        return running

    def try_flush(self, running: Running) -> None:
        """Flush from the job's own thread (its first line, its ``flush()``): store
        trouble never reaches the job; its output waits in memory, retried."""
        try:
            self.flush(running)
        except Exception as e:
            output.trouble(running, e)
            self.wake.set()

    def flush(self, running: Running) -> None:
        """Move what the job wrote since the last flush into the store (see ``output``)."""
        output.flush(self.store, running)

    def flush_sink(self, job_id: str, sink: Sink) -> None:
        """Flush a sink whose job may have ended (a handler printing late)."""
        running = self.local.get(job_id)
        self.flush(running if running is not None else Running(job_id, sink, self.executor()))

    # -- the per-process maintenance thread --------------------------------

    def _ensure_process(self) -> None:
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self.local = {}
        shutdown.watch(self)  # again: a forking server may have replaced the handlers since
        threading.Thread(target=maintain, args=(self,), name="web_background-flusher", daemon=True).start()

    def process_stopping(self, reason: str) -> None:
        """This process is about to stop: what its jobs wrote goes to the store,
        and they are recorded ``interrupted`` with ``reason`` (see ``shutdown``)."""
        if self._pid != os.getpid() or not self.local:
            return
        for executor in list(self._executors.values()):
            executor.drain(1.0)
        now = time.time()
        for running in list(self.local.values()):
            with running.lock:
                if running.final is None:  # an end already decided is written as it is
                    running.final = dict(status=JobStatus.INTERRUPTED.value, result=None, error=reason, finished=now)
            try:
                self.write_end(running)
            except Exception as e:
                output.trouble(running, e)

    def close(self) -> None:
        self.closed.set()
        self.wake.set()
        for executor in list(self._executors.values()):
            executor.close()
