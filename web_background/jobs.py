"""Jobs: the record view users hold, the runner that starts and runs them,
and the settings that bound them.  Nothing here knows about HTTP."""

import logging
import os
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from . import capture
from .capture import Cancelled, Sink, raise_cancelled
from .executors import RQExecutor, ThreadPool
from .stores import FINISHED, JobStatus, Store, StoreError, open_store

log = logging.getLogger("web_background")

DEFAULTS: Dict[str, Any] = {
    "store": "memory://",
    "workers": 8,  # jobs running at once per process
    "queue_limit": 100,  # jobs waiting for a worker before Busy
    "ttl": 3600.0,  # seconds a finished job stays readable
    "max_jobs": 1000,  # finished jobs retained at most (oldest dropped first)
    "max_output": 1_000_000,  # characters of output retained per job (newest kept)
    "executor": "threads",  # or "rq": jobs run by RQ workers (needs a Redis store)
    "queue": "default",  # the RQ queue of jobs whose @background names none
    "stream_seconds": 15.0,  # a live stream gives its server thread back after this; the client resumes
    "max_streams": 4,  # live streams holding a server thread at once, per process
}
EXECUTORS = ("threads", "rq")
FLUSH_INTERVAL = 0.1  # seconds between batched writes of a job's output to the store
TICK = 0.01  # how soon output after a quiet spell is written (the first line, mostly)
HEARTBEAT_INTERVAL = 1.0  # seconds between "still alive" marks on this process's jobs
HEARTBEAT_TIMEOUT = 5.0  # a queued or running job without a mark for this long is interrupted


def _from_environment(defaults: Dict[str, Any]) -> Dict[str, Any]:
    """Settings as the environment gives them: WEB_BACKGROUND_STORE,
    WEB_BACKGROUND_WORKERS, ... (one per setting), for operators and servers."""
    settings = dict(defaults)
    for key, default in defaults.items():
        raw = os.environ.get("WEB_BACKGROUND_" + key.upper())
        if raw:
            try:
                settings[key] = type(default)(raw)
            except ValueError:
                raise ValueError("WEB_BACKGROUND_%s=%r is not a valid %s" % (key.upper(), raw, key)) from None
    return settings



class Busy(Exception):
    """The job queue is full (``queue_limit``); try again later."""


class _Running:
    """What this process knows of a job it runs: its sink and its thread."""

    __slots__ = ("id", "sink", "done", "started", "cancelled", "progress", "flush_lock", "pending", "skipped",
                 "final", "flushed")

    def __init__(self, job_id: str, sink: Sink) -> None:
        self.id = job_id
        self.sink = sink  # the capture writes here; flushes move it to the store
        self.done = threading.Event()
        self.started = False  # a queued job reads its cancel flag when it starts instead
        self.cancelled = False
        self.progress: Optional[Dict[str, Any]] = None  # written at the next flush
        self.flush_lock = threading.Lock()
        self.pending = ""  # output the store could not take yet (it is retried)
        self.skipped = 0  # characters before ``pending`` already past max_output
        self.final: Optional[Dict[str, Any]] = None  # the end, until the store has it
        self.flushed = 0.0  # time.monotonic() of the last flush


_local = threading.local()


def _current() -> Optional[_Running]:
    return getattr(_local, "job", None)


def _enter(running: Optional[_Running]) -> None:
    _local.job = running


def _leave() -> None:
    _local.job = None


def _process_name() -> str:
    """Which process runs a job: ``pid@host`` (the CLI shows it; tests kill by it)."""
    return "%d@%s" % (os.getpid(), socket.gethostname())


def _no_context(ctx: Any, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


# How a job enters the request context it was started from; web_glue sets it
# (this module knows nothing of web.ctx).
run_in_context: Callable[..., Any] = _no_context


class Job:
    """A handle on one job, by id; every attribute reads the current state."""

    __slots__ = ("id", "_runner")

    def __init__(self, job_id: str, runner: "_Runner") -> None:
        self.id = job_id
        self._runner = runner

    def _get(self, field: str) -> Any:
        record = self._runner.record(self.id)
        if record is None:
            raise LookupError("job %s is no longer retained" % self.id)
        return record.get(field)

    @property
    def status(self) -> JobStatus:
        return JobStatus(self._get("status"))

    @property
    def output(self) -> str:
        """Everything retained that the job wrote (a cut is marked at the start)."""
        got = self._runner.read(self.id, 0)
        if got is None:
            raise LookupError("job %s is no longer retained" % self.id)
        return cut_marker(got[2]) + got[0]

    @property
    def result(self) -> Any:
        """The function's return value (from SQLite or Redis: as JSON, else its repr)."""
        return self._get("result")

    @property
    def error(self) -> Optional[str]:
        """The traceback of a failed job, else None."""
        return self._get("error")

    @property
    def progress(self) -> Optional[Dict[str, Any]]:
        """None, or ``{"done", "total", "message"}`` as the job last reported."""
        return self._get("progress")

    @property
    def created(self) -> float:
        return self._get("created")

    @property
    def started(self) -> Optional[float]:
        return self._get("started")

    @property
    def finished(self) -> Optional[float]:
        return self._get("finished")

    def cancel(self) -> bool:
        """Ask the job to stop; False when it has already ended (or is unknown)."""
        return self._runner.cancel(self.id)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the job has ended; False if ``timeout`` passed first."""
        return self._runner.wait(self.id, timeout)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        record = self._runner.record(self.id)
        return "<Job %s %s>" % (self.id, record["status"] if record else "expired")


def cut_marker(cut: int) -> str:
    """The line that stands for ``cut`` characters dropped by ``max_output``."""
    return "[... %d earlier characters cut ...]\n" % cut if cut else ""


class _Runner:
    """Starts jobs on the executor, runs their body, batches their output."""

    def __init__(self, settings: Dict[str, Any]) -> None:
        self.settings = settings
        self.store: Store = open_store(settings["store"], settings["max_output"], settings["ttl"])
        self.executor = ThreadPool(settings["workers"], settings["queue_limit"])
        self._rq: Optional[RQExecutor] = None
        self._local: Dict[str, _Running] = {}  # jobs this process is running
        self._pid = 0
        self._closed = threading.Event()
        self._wake = threading.Event()  # a new job: the maintenance thread's pace changes
        self._last_expire = 0.0

    # -- starting and running -------------------------------------------

    def start(
        self,
        func: Callable[..., Any],
        args: Tuple[Any, ...] = (),
        kwargs: Optional[Dict[str, Any]] = None,
        sink: Optional[Sink] = None,
        ctx: Optional[Dict[str, Any]] = None,
        queue: Optional[str] = None,
        **fields: Any,
    ) -> Job:
        """Queue ``func(*args, **kwargs)`` as a new job; ``sink`` may already
        hold output that starts the job's (what the request handler printed);
        ``ctx`` is the request context it runs in; ``queue`` sends it to RQ."""
        if self.uses_rq(queue):
            return self._start_rq(func, args, kwargs or {}, ctx, queue, sink, fields)
        self._ensure_process()
        self.expire(throttle=0.2)
        job_id = secrets.token_urlsafe(16)
        now = time.time()
        record = self._new_record(job_id, func, now, fields)
        running = self._adopt(_Running(job_id, sink if sink is not None else Sink()))
        self.store.create(record)
        self._local[job_id] = running
        self._wake.set()
        if not self.executor.submit(lambda: self._run(running, func, args, kwargs or {}, ctx)):
            del self._local[job_id]
            self.store.delete(job_id)
            raise Busy("%d jobs are already waiting" % self.executor.queue_limit)
        return Job(job_id, self)

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
            "runner": _process_name(),
            "heartbeat": now,
        }
        record.update(fields)
        return record

    def uses_rq(self, queue: Optional[str]) -> bool:
        return queue is not None or self.settings["executor"] == "rq"

    def rq(self) -> RQExecutor:
        if self._rq is None:
            client = getattr(self.store, "client", None)
            if client is None:
                raise ValueError("running jobs on RQ needs a Redis store: configure(store='redis://host:port/db')")
            self._rq = RQExecutor(client, self.settings["queue"], self.settings["ttl"])
        return self._rq

    def _start_rq(self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any],
                  ctx: Optional[Dict[str, Any]], queue: Optional[str], sink: Optional[Sink],
                  fields: Dict[str, Any]) -> Job:
        executor = self.rq()
        job_id = secrets.token_urlsafe(16)
        # no heartbeat while it waits on the queue: nobody here is running it
        record = self._new_record(job_id, func, time.time(), dict(
            fields, executor="rq", queue=queue or self.settings["queue"], heartbeat=None))
        self.store.create(record)
        if sink is not None:
            self.store.append(job_id, sink.drain())
        try:
            executor.enqueue(job_id, func, args, kwargs, ctx, queue)
        except BaseException as e:
            self.store.delete(job_id)
            if type(e).__module__.startswith("redis"):
                raise StoreError("cannot enqueue on RQ: %s" % e) from None
            raise
        return Job(job_id, self)

    def run_here(self, job_id: str, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any],
                 ctx: Optional[Dict[str, Any]]) -> Any:
        """Run a job whose record exists, in the calling thread (an RQ work-horse)."""
        self._ensure_process()
        running = self._local[job_id] = self._adopt(_Running(job_id, Sink()))
        self._wake.set()
        self._run(running, func, args, kwargs, ctx)
        return running.final["result"] if running.final else None

    def _run(self, running: _Running, func: Callable[..., Any], args: Any, kwargs: Any,
             ctx: Optional[Dict[str, Any]] = None) -> None:
        record = self.store.get(running.id)
        status, result, error = JobStatus.CANCELLED, None, None
        if record is None or record["cancel"] or running.cancelled:
            self._finish(running, status, result, error)
            return
        capture.route(running.sink, on_flush=lambda: self.flush(running))
        _enter(running)
        running.started = True
        now = time.time()
        self.store.update(running.id, status=JobStatus.RUNNING.value, started=now, heartbeat=now,
                          runner=_process_name())
        try:
            result = run_in_context(ctx, func, *args, **kwargs)
            status = JobStatus.DONE
        except Cancelled:
            status = JobStatus.CANCELLED
        except BaseException:  # SystemExit too: nothing a job does stops the server
            status, error = JobStatus.FAILED, traceback.format_exc()
        finally:
            _leave()
            capture.unroute()
        if error is not None:
            log.error("job %s (%s) failed:\n%s", running.id, getattr(func, "__qualname__", func), error)
        self._finish(running, status, result, error)

    def _finish(self, running: _Running, status: JobStatus, result: Any, error: Optional[str]) -> None:
        running.final = dict(status=status.value, result=result, error=error, finished=time.time())
        try:
            self._write_end(running)
        except Exception as e:  # the maintenance thread retries until the store takes it
            log.error("job %s: could not record its end yet: %s", running.id, e)

    def _write_end(self, running: _Running) -> None:
        assert running.final is not None
        self.flush(running)
        self.store.update(running.id, **running.final)
        self._local.pop(running.id, None)
        running.done.set()

    # -- output, progress and cancel -------------------------------------

    def _adopt(self, running: _Running) -> _Running:
        running.sink.on_first_write = lambda: self._first_flush(running)
        return running

    def _first_flush(self, running: _Running) -> None:
        """A job's first line goes to the store at once, from the writing thread."""
        try:
            self.flush(running)
        except Exception as e:  # the maintenance thread tries again
            log.error("job %s: could not write its output yet: %s", running.id, e)
            self._wake.set()

    def flush(self, running: _Running) -> None:
        """Move what the job wrote since the last flush into the store."""
        with running.flush_lock:
            running.flushed = time.monotonic()
            text = running.pending + running.sink.drain()
            over = max(0, len(text) - self.store.max_output)  # only the newest part can be kept
            if text or running.skipped:
                running.pending, running.skipped = text[over:], running.skipped + over
                self.store.append(running.id, running.pending, running.skipped)
                running.pending, running.skipped = "", 0
            progress = running.progress
            if progress is not None:
                self.store.update(running.id, progress=progress)
                if running.progress is progress:
                    running.progress = None

    def flush_sink(self, job_id: str, sink: Sink) -> None:
        """Flush a sink whose job may have ended (a handler printing late)."""
        running = self._local.get(job_id)
        self.flush(running if running is not None else _Running(job_id, sink))

    def set_progress(self, done: float, total: Optional[float], message: Optional[str]) -> None:
        running = _current()
        if running is None:
            raise RuntimeError("progress() is only meaningful inside a @background job")
        if running.cancelled:
            raise_cancelled()
        running.progress = {"done": done, "total": total, "message": message}

    def cancel(self, job_id: str) -> bool:
        record = self.record(job_id)
        if record is None or record["status"] in FINISHED:
            return False
        self.store.update(job_id, cancel=True)
        running = self._local.get(job_id)
        if running is not None:
            self._cancel_local(running)
        elif record.get("executor") == "rq" and record["status"] == JobStatus.QUEUED.value:
            self.rq().cancel_queued(job_id)  # a worker taking it meanwhile sees the flag
            self.store.update(job_id, status=JobStatus.CANCELLED.value, finished=time.time())
        return True

    def _cancel_local(self, running: _Running) -> None:
        running.cancelled = True
        running.sink.cancel()

    # -- reading ----------------------------------------------------------

    def record(self, job_id: str) -> Optional[Dict[str, Any]]:
        """The job's record, with this process's unflushed output and progress
        flushed first; None when unknown or past its ``ttl``."""
        running = self._local.get(job_id)
        if running is not None:
            self.flush(running)
        record = self.store.get(job_id)
        if record is None or self._expired(record):
            return None
        if running is not None or record["status"] in FINISHED:
            return record
        ended: Optional[Tuple[str, Optional[str]]] = None
        if self._abandoned(record):
            ended = JobStatus.INTERRUPTED.value, "the process running this job (%s) stopped" % record.get("runner")
        elif record.get("executor") == "rq" and record["status"] == JobStatus.QUEUED.value:
            ended = self.rq().ended(job_id, started=False)
        if ended is not None:
            self.store.update(job_id, status=ended[0], error=ended[1], finished=time.time())
            record = self.store.get(job_id)
        return record

    def _abandoned(self, record: Dict[str, Any]) -> bool:
        beat = record.get("heartbeat")
        return (
            record["status"] not in FINISHED
            and beat is not None
            and beat + HEARTBEAT_TIMEOUT < time.time()
        )

    def _expired(self, record: Dict[str, Any]) -> bool:
        finished = record.get("finished")
        return (
            record["status"] in FINISHED
            and finished is not None
            and finished + self.settings["ttl"] <= time.time()
        )

    def read(self, job_id: str, offset: int = 0) -> Optional[Tuple[str, int, int]]:
        if self.record(job_id) is None:
            return None
        return self.store.read(job_id, offset)

    def wait(self, job_id: str, timeout: Optional[float]) -> bool:
        running = self._local.get(job_id)
        if running is not None:
            return running.done.wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.01
        while True:
            record = self.store.get(job_id)
            if record is None or record["status"] in FINISHED:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 2, 0.2)

    def expire(self, throttle: float = 0.0) -> None:
        now = time.time()
        if now - self._last_expire >= throttle:
            self._last_expire = now
            self.store.expire(self.settings["ttl"], self.settings["max_jobs"], now)

    # -- the per-process maintenance thread --------------------------------

    def _ensure_process(self) -> None:
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._local = {}
        threading.Thread(target=self._maintain, name="web_background-flusher", daemon=True).start()

    def _maintain(self) -> None:
        """Write output out (new output within a TICK when nothing was written
        for FLUSH_INTERVAL, else batched every FLUSH_INTERVAL), pick up cancels
        made elsewhere, mark this process's jobs alive, expire old jobs."""
        last_beat = last_check = time.monotonic()
        while not self._closed.is_set():
            self._wake.wait(TICK if self._local else 0.25)
            self._wake.clear()
            now = time.monotonic()
            beat, check = now - last_beat >= HEARTBEAT_INTERVAL, now - last_check >= FLUSH_INTERVAL
            last_beat, last_check = (now if beat else last_beat), (now if check else last_check)
            for running in list(self._local.values()):
                try:
                    if running.final is not None:
                        self._write_end(running)
                        continue
                    if now - running.flushed >= FLUSH_INTERVAL and (check or running.sink.has_output()):
                        self.flush(running)
                    if beat:
                        self.store.update(running.id, heartbeat=time.time())
                    if check and running.started and not running.cancelled:
                        record = self.store.get(running.id)
                        if record is not None and record["cancel"]:
                            self._cancel_local(running)
                except Exception as e:
                    log.error("job %s: could not write its output yet: %s", running.id, e)
            try:
                self.expire(throttle=1.0)
            except Exception:
                log.exception("could not expire old jobs")

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        self.executor.shutdown()


class _ThreadDB(Mapping):
    """A read-only view of retained jobs: job id -> Job."""

    def __getitem__(self, job_id: str) -> Job:
        runner = _runner()
        if not isinstance(job_id, str) or runner.record(job_id) is None:
            raise KeyError(job_id)
        return Job(job_id, runner)

    def __iter__(self) -> Iterator[str]:
        runner = _runner()
        runner.expire()
        return iter([i for i in runner.store.ids() if runner.record(i) is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return "<threaddb %r>" % {k: str(v.status) for k, v in self.items()}


threaddb = _ThreadDB()

_state: Dict[str, Any] = {"settings": _from_environment(DEFAULTS), "runner": None}
_state_lock = threading.Lock()


def _runner() -> _Runner:
    runner = _state["runner"]
    if runner is None:
        with _state_lock:
            runner = _state["runner"]
            if runner is None:
                runner = _state["runner"] = _Runner(_state["settings"])
    return runner


def configure(
    *,
    store: Any = None,
    workers: Optional[int] = None,
    queue_limit: Optional[int] = None,
    ttl: Optional[float] = None,
    max_jobs: Optional[int] = None,
    max_output: Optional[int] = None,
    executor: Optional[str] = None,
    queue: Optional[str] = None,
    stream_seconds: Optional[float] = None,
    max_streams: Optional[int] = None,
) -> None:
    """Set where jobs are stored, where they run and how they are bounded;
    unnamed settings keep their value.  Call it once at start-up, in the module
    that defines the jobs (RQ workers import it too): jobs running under the
    previous settings finish under them."""
    given = dict(store=store, workers=workers, queue_limit=queue_limit, ttl=ttl,
                 max_jobs=max_jobs, max_output=max_output, executor=executor, queue=queue,
                 stream_seconds=stream_seconds, max_streams=max_streams)
    new = dict(_state["settings"], **{k: v for k, v in given.items() if v is not None})
    for key in ("workers", "max_jobs", "max_output"):
        if not isinstance(new[key], int) or new[key] < 1:
            raise ValueError("%s must be a positive int, not %r" % (key, new[key]))
    for key in ("queue_limit", "max_streams"):
        if not isinstance(new[key], int) or new[key] < 0:
            raise ValueError("%s must be an int >= 0, not %r" % (key, new[key]))
    if new["executor"] not in EXECUTORS:
        raise ValueError("executor must be one of %s, not %r" % (", ".join(EXECUTORS), new["executor"]))
    if not isinstance(new["queue"], str) or not new["queue"]:
        raise ValueError("queue must be a queue name, not %r" % (new["queue"],))
    for key in ("ttl", "stream_seconds"):
        if isinstance(new[key], bool) or not isinstance(new[key], (int, float)) or new[key] < 0:
            raise ValueError("%s must be a number of seconds >= 0, not %r" % (key, new[key]))
    runner = _Runner(new)  # opens the store: a bad URL fails here, nothing changed
    with _state_lock:
        old, _state["runner"], _state["settings"] = _state["runner"], runner, new
    if old is not None:
        old.close()


def progress(done: float, total: Optional[float] = None, message: Optional[str] = None) -> None:
    """Report how far the current job has got (shown as a progress bar).

    Raises ``Cancelled`` when the job has been cancelled.
    """
    if isinstance(done, bool) or not isinstance(done, (int, float)) or done < 0:
        raise ValueError("progress done must be a number >= 0, not %r" % (done,))
    if total is not None and (isinstance(total, bool) or not isinstance(total, (int, float)) or total <= 0):
        raise ValueError("progress total must be None or a number > 0, not %r" % (total,))
    if message is not None and not isinstance(message, str):
        raise TypeError("progress message must be a str, not %r" % (message,))
    _runner().set_progress(done, total, message)
