"""The embedded default: jobs in this process's memory."""

import threading
import time
from bisect import bisect_right
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

from . import FINISHED, Store


class _Entry:
    __slots__ = ("record", "chunks", "starts", "end", "cut")

    def __init__(self, record: Dict[str, Any]) -> None:
        self.record = record
        self.chunks: List[str] = []  # retained output, in order
        self.starts: List[int] = []  # absolute offset of each chunk
        self.end = 0  # absolute offset after the last character written
        self.cut = 0  # characters dropped from the front by max_output


class MemoryStore(Store):
    """Jobs in a dict; output as a list of chunks with their absolute offsets.

    A read from offset N costs a bisect plus the size of what it returns, so
    polling at the end of a huge output is as cheap as for a small one.
    """

    def __init__(self, max_output: int = 1_000_000) -> None:
        self.max_output = max_output
        self._jobs: Dict[str, _Entry] = {}
        self._finished: "OrderedDict[str, float]" = OrderedDict()  # in finishing order
        self._keys: Dict[str, str] = {}  # key -> the job that holds it (see claim)
        self._lock = threading.Lock()

    def _create(self, record: Dict[str, Any]) -> None:
        with self._lock:
            self._jobs[record["id"]] = _Entry(dict(record))
            if record["status"] in FINISHED:
                self._finished[record["id"]] = record.get("finished") or time.time()

    def get(self, job_id: str) -> Optional[Dict[str, Any]]:
        entry = self._jobs.get(job_id)
        if entry is None:
            return None
        record = dict(entry.record)
        record["end"], record["cut"] = entry.end, entry.cut
        return record

    def _update(self, job_id: str, **fields: Any) -> None:
        entry = self._jobs.get(job_id)
        if entry is not None:
            entry.record.update(fields)
            if fields.get("status") in FINISHED:
                with self._lock:
                    self._finished[job_id] = entry.record.get("finished") or time.time()

    def _append(self, job_id: str, text: str, skipped: int = 0) -> None:
        entry = self._jobs.get(job_id)
        if entry is None or not (text or skipped):
            return
        with self._lock:
            if skipped:
                entry.chunks, entry.starts = [], []
                entry.end += skipped
                entry.cut = entry.end
            entry.chunks.append(text)
            entry.starts.append(entry.end)
            entry.end += len(text)
            self._trim(entry)

    def _trim(self, entry: _Entry) -> None:
        excess = entry.end - entry.cut - self.max_output
        if excess <= 0:
            return
        while excess >= len(entry.chunks[0]):
            excess -= len(entry.chunks.pop(0))
            entry.starts.pop(0)
        if excess:
            entry.chunks[0] = entry.chunks[0][excess:]
            entry.starts[0] += excess
        entry.cut = entry.starts[0]

    def read(self, job_id: str, offset: int = 0) -> Optional[Tuple[str, int, int]]:
        entry = self._jobs.get(job_id)
        if entry is None:
            return None
        with self._lock:
            start = max(offset, entry.cut)
            if start >= entry.end:
                return "", entry.end, entry.cut
            i = bisect_right(entry.starts, start) - 1
            head = entry.chunks[i][start - entry.starts[i]:]
            text = "".join([head] + entry.chunks[i + 1:])
            return text, entry.end, entry.cut

    def claim(self, key: str, job_id: str) -> Optional[str]:
        with self._lock:
            holder = self._jobs.get(self._keys.get(key, ""))
            if holder is not None and holder.record["status"] not in FINISHED and holder.record["id"] != job_id:
                return holder.record["id"]
            self._keys[key] = job_id
            return None

    def _forget(self, job_id: str) -> None:
        entry = self._jobs.pop(job_id, None)
        key = entry.record.get("key") if entry is not None else None
        if key is not None and self._keys.get(key) == job_id:
            del self._keys[key]

    def ids(self) -> List[str]:
        return list(self._jobs)

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._forget(job_id)
            self._finished.pop(job_id, None)

    def expire(self, ttl: float, max_jobs: int, now: Optional[float] = None) -> int:
        now = time.time() if now is None else now
        dropped = 0
        with self._lock:
            while self._finished:
                job_id, finished = next(iter(self._finished.items()))
                if finished + ttl > now and len(self._jobs) <= max_jobs:
                    break
                del self._finished[job_id]
                dropped += job_id in self._jobs
                self._forget(job_id)
        return dropped
