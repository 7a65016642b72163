"""The embedded default: jobs in this process's memory."""

import threading
import time
from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from . import FINISHED, PRUNE_SLICE, JobStatus, Page, Store, count_statuses, names_matching, owner_key, sort_key

_Key = Tuple[float, str]


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
    polling at the end of a huge output is as cheap as for a small one.  The
    job list is kept in creation order per status and per owner (sorted
    lists of ``sort_key``), so a page costs a bisect and its own rows.
    """

    def __init__(self, max_output: int = 1_000_000) -> None:
        self.max_output = max_output
        self._jobs: Dict[str, _Entry] = {}
        self._finished: "OrderedDict[str, float]" = OrderedDict()  # in finishing order
        self._keys: Dict[str, str] = {}  # key -> the job that holds it (see claim)
        # sort keys in creation order: all jobs (None), per status, per owner, per (owner, status)
        self._order: Dict[Any, List[_Key]] = {}
        self._lock = threading.Lock()

    def _scopes(self, record: Dict[str, Any]) -> Tuple[Any, ...]:
        owner = owner_key(record.get("owner"))
        status = record["status"]
        if owner is None:
            return (None, ("s", status))
        return (None, ("s", status), ("o", owner), ("os", owner, status))

    def _index(self, record: Dict[str, Any], add: bool) -> None:
        key = sort_key(record)
        for scope in self._scopes(record):
            keys = self._order.setdefault(scope, [])
            if add:
                insort(keys, key)
            else:
                i = bisect_left(keys, key)
                if i < len(keys) and keys[i] == key:
                    del keys[i]
                if not keys:
                    del self._order[scope]

    def _create(self, record: Dict[str, Any]) -> None:
        with self._lock:
            self._jobs[record["id"]] = _Entry(dict(record))
            self._index(record, add=True)
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
        if entry is None:
            return
        old = entry.record
        same_owner = old.get("owner") == fields.get("owner", old.get("owner"))
        if old["status"] == fields.get("status", old["status"]) and same_owner:
            old.update(fields)  # not a field the list is kept by
            return
        with self._lock:
            self._index(old, add=False)
            old.update(fields)
            self._index(old, add=True)
            if old["status"] in FINISHED:
                self._finished.setdefault(job_id, old.get("finished") or time.time())
            else:  # a retry: queued again
                self._finished.pop(job_id, None)

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
        if entry is None:
            return
        self._index(entry.record, add=False)
        key = entry.record.get("key")
        if key is not None and self._keys.get(key) == job_id:
            del self._keys[key]

    def ids(self) -> List[str]:
        return list(self._jobs)

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._forget(job_id)
            self._finished.pop(job_id, None)

    def page(self, status: Optional[str] = None, name: Optional[str] = None, owner: Optional[str] = None,
             limit: int = 50, offset: int = 0, before: Optional[Tuple[float, str]] = None,
             count: bool = True, fields: Optional[Sequence[str]] = None) -> Page:
        with self._lock:
            if owner is None:
                scope: Any = None if status is None else ("s", status)
            else:
                scope = ("o", owner) if status is None else ("os", owner, status)
            keys = self._order.get(scope, [])
            stop = len(keys) if before is None else bisect_left(keys, tuple(before))
            if name is None:
                chosen = keys[max(0, stop - offset - limit):max(0, stop - offset)][::-1]
                matching = stop
            else:
                chosen, matching = [], 0
                for i in range(stop - 1, -1, -1):
                    if names_matching([str(self._jobs[keys[i][1]].record.get("name") or "")], name):
                        if offset <= matching < offset + limit:
                            chosen.append(keys[i])
                        matching += 1
                        if not count and matching >= offset + limit:
                            break
            counts: Dict[str, int] = {}
            if count:
                prefix: Tuple[Any, ...] = ("s",) if owner is None else ("os", owner)
                counts = count_statuses(())
                for s in JobStatus:
                    counts[s.value] = len(self._order.get(prefix + (s.value,), ()))
        jobs = [r for r in (self.get(job_id) for _, job_id in chosen) if r is not None]
        return Page(jobs, counts, matching if count else None)

    def prune(self, ttl: float, max_jobs: int, now: Optional[float] = None, limit: int = PRUNE_SLICE) -> int:
        now = time.time() if now is None else now
        dropped = 0
        with self._lock:
            while self._finished and dropped < limit:
                job_id, finished = next(iter(self._finished.items()))
                if finished + ttl > now and len(self._finished) <= max_jobs:
                    break
                del self._finished[job_id]
                dropped += job_id in self._jobs
                self._forget(job_id)
        return dropped

    def beat(self, job_ids: Iterable[str], now: float) -> None:
        for job_id in job_ids:
            entry = self._jobs.get(job_id)
            if entry is not None:
                entry.record["heartbeat"] = now

    def cancel_requested(self, job_ids: Iterable[str]) -> Set[str]:
        jobs = self._jobs
        return {i for i in job_ids if i in jobs and jobs[i].record.get("cancel")}
