"""What a job is now, as any process reads it: its record (judged abandoned,
ended on a queue elsewhere or past its ``ttl`` on the way), its output, waiting
for its end, and dropping old jobs.  The reading half of ``runner.Runner``."""

import threading
import time
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from . import output
from .stores import FINISHED, JobStatus, Store, StoreError

if TYPE_CHECKING:
    from .executors import Executor
    from .running import Running

HEARTBEAT_TIMEOUT = 5.0  # a queued or running job without a mark for this long is interrupted


class Records:
    """The reads of a runner (its base class): they need its store, settings,
    jobs in progress here, their flush and its executors."""

    settings: Dict[str, Any]
    store: Store
    local: Dict[str, "Running"]
    _prune_lock: threading.Lock

    def flush(self, running: "Running") -> None:
        raise NotImplementedError

    def executor(self, name: Optional[str] = None) -> "Executor":
        raise NotImplementedError

    def record(self, job_id: str) -> Optional[Dict[str, Any]]:
        """The job's record, with this process's unflushed output and progress
        flushed first; None when unknown or past its ``ttl``."""
        running = self.local.get(job_id)
        if running is not None:
            try:
                self.flush(running)
            except StoreError as e:  # a store that cannot write may still read: answer what it has
                output.trouble(running, e)
        record = self.store.get(job_id)
        if record is None or self._expired(record):
            return None
        if running is not None or record["status"] in FINISHED:
            return record
        ended: Optional[Tuple[str, Optional[str]]] = None
        if self._abandoned(record):
            ended = JobStatus.INTERRUPTED.value, "the process running this job (%s) stopped" % record.get("runner")
        elif self._queued_elsewhere(record):
            ended = self.executor(record.get("executor")).ended(record)
        if ended is not None:
            self.store.update(job_id, status=ended[0], error=ended[1], finished=time.time())
            record = self.store.get(job_id)
        return record

    def _queued_elsewhere(self, record: Dict[str, Any]) -> bool:
        """A job waiting on a queue that no process of ours runs (RQ's)."""
        return record["status"] == JobStatus.QUEUED.value and not self.executor(record.get("executor")).local

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
        running = self.local.get(job_id)
        if running is not None:
            return running.done.wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.01
        while True:
            record = self.record(job_id)
            if record is None or record["status"] in FINISHED:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 2, 0.2)

    def prune(self) -> int:
        """Drop one bounded slice of jobs past ``ttl`` or ``max_jobs`` (the
        maintenance thread's); 0 when another pass is under way."""
        if not self._prune_lock.acquire(blocking=False):
            return 0
        try:
            return self.store.prune(self.settings["ttl"], self.settings["max_jobs"], time.time())
        finally:
            self._prune_lock.release()

    def expire(self) -> int:
        """Drop every job past ``ttl`` or ``max_jobs`` now, slice after slice."""
        with self._prune_lock:
            return self.store.expire(self.settings["ttl"], self.settings["max_jobs"], time.time())
