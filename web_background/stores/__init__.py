"""Where jobs live: the store seam.

A job record is a plain dict: ``id``, ``status``, ``created``, ``started``,
``finished``, ``progress``, ``result``, ``error``, ``cancel`` (bool),
``name`` (the function), and whatever else the caller adds (``owner``,
``runner``).  Output is kept apart, as text addressed by absolute character
offsets that stay valid after ``max_output`` cuts old output (the store keeps
``cut``, how many characters were dropped from the front).
"""

import enum
import json
import re
from dataclasses import dataclass, field
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple


class JobStatus(str, enum.Enum):
    """The life of a job; values are the plain strings shown to users."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value


FINISHED = frozenset(s.value for s in JobStatus) - {"queued", "running"}


class StoreError(Exception):
    """The store cannot be reached or used (a clear message says why, with any
    password or token of a URL in it redacted: see ``redact``)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(redact(str(a)) for a in args))


# scheme://user:password@host, scheme://token@host; ?password=..., &token=...
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s]*)@")
_SECRET_PARAM = re.compile(r"(?i)([?&;](?:password|passwd|pass|pwd|token|secret|auth|api_?key|access_?key)=)"
                           r"[^&#\s]*?(?=[:,;.)]?(?:[\s&#]|\Z))")  # the value, without a ':' that follows it


def redact(text: str) -> str:
    """``text`` with the password (or token) of every URL in it, and query
    parameters that carry secrets, replaced by ``***``; for logs and messages."""
    def userinfo(m: "re.Match[str]") -> str:
        user, colon, _ = m.group(2).partition(":")
        return m.group(1) + (user + ":***" if colon else "***") + "@"

    return _SECRET_PARAM.sub(r"\1***", _URL_USERINFO.sub(userinfo, text))


PRUNE_SLICE = 200  # jobs one prune slice drops at most: one bounded transaction or pipeline


@dataclass
class Page:
    """One page of the job list, as ``Store.page`` answers it.

    ``jobs``: records (with ``end`` and ``cut``), newest first; ``counts``:
    retained jobs per status among the owner's (or all), whatever the status
    and name filters; ``matching``: how many jobs match every filter (None
    when not asked for)."""

    jobs: List[Dict[str, Any]]
    counts: Dict[str, int] = field(default_factory=dict)
    matching: Optional[int] = None


def sort_key(record: Dict[str, Any]) -> Tuple[float, str]:
    """Where a job stands in the list: newest first is this, descending."""
    return (record.get("created") or 0.0, record["id"])


def owner_key(value: Any) -> Optional[str]:
    """The owner as the page query compares it: its ``str``, or None."""
    return None if value is None else str(value)


def names_matching(names: Iterable[str], needle: str) -> List[str]:
    """The job names that contain ``needle``, case-insensitively (every store alike)."""
    folded = needle.casefold()
    return [n for n in names if folded in n.casefold()]


class Store:
    """The interface every store implements (memory, SQLite, Redis).

    Narrow on purpose: the job runner and the web glue need nothing else.
    ``max_output`` is the number of characters of output retained per job.
    """

    max_output: int = 1_000_000
    ttl: float = 3600.0  # stores with their own expiry (Redis) use it

    def create(self, record: Dict[str, Any]) -> None:
        """Add a new job record."""
        self._create({k: _clean_value(v) for k, v in record.items()})

    def get(self, job_id: str) -> Optional[Dict[str, Any]]:
        """The record, plus ``end`` and ``cut`` of its output; None if unknown."""
        raise NotImplementedError

    def update(self, job_id: str, **fields: Any) -> None:
        """Set fields of a record (status, progress, result, error, cancel, ...)."""
        self._update(job_id, **{k: _clean_value(v) for k, v in fields.items()})

    def append(self, job_id: str, text: str, skipped: int = 0) -> None:
        """Add output to the end, then cut the front past ``max_output``.

        ``skipped``: characters written just before ``text`` that are already
        past the cap (the writer kept only the newest ``max_output``).
        """
        self._append(job_id, clean(text), skipped)

    # Each store implements these; the public methods above hand them text
    # that every encoder takes (see ``clean``).
    def _create(self, record: Dict[str, Any]) -> None:
        raise NotImplementedError

    def _update(self, job_id: str, **fields: Any) -> None:
        raise NotImplementedError

    def _append(self, job_id: str, text: str, skipped: int) -> None:
        raise NotImplementedError

    def read(self, job_id: str, offset: int = 0) -> Optional[Tuple[str, int, int]]:
        """``(text from offset, end, cut)``; text starts at max(offset, cut)."""
        raise NotImplementedError

    def claim(self, key: str, job_id: str) -> Optional[str]:
        """Make the (created) job ``job_id`` the holder of ``key``, atomically
        across processes, unless a queued or running job holds it: then that
        job's id (and the caller drops its own)."""
        raise NotImplementedError

    def ids(self) -> List[str]:
        """Ids of all retained jobs (reads every job: tests and small stores only)."""
        raise NotImplementedError

    def delete(self, job_id: str) -> None:
        raise NotImplementedError

    def page(self, status: Optional[str] = None, name: Optional[str] = None, owner: Optional[str] = None,
             limit: int = 50, offset: int = 0, before: Optional[Tuple[float, str]] = None,
             count: bool = True, fields: Optional[Sequence[str]] = None) -> Page:
        """Up to ``limit`` jobs newest first (by ``created``, then id), skipping
        ``offset`` of them, or only those older than ``before`` (the
        ``sort_key`` of the last job of the previous page: paging that stays
        exact while jobs are created and dropped); filtered by ``status``,
        ``name`` (a part of it, any case) and ``owner`` (compared as ``str``).
        ``count``: also the counts per status and how many match; ``fields``:
        only these are needed (a store may then read just them, and ``id``,
        ``status``, ``created``, ``finished``).  This default reads every job;
        each store answers from its own indexes."""
        records = [r for r in (self.get(i) for i in self.ids()) if r is not None]
        records.sort(key=sort_key, reverse=True)
        if owner is not None:
            records = [r for r in records if owner_key(r.get("owner")) == owner]
        counts = count_statuses(r["status"] for r in records)
        shown = [r for r in records if (status is None or r["status"] == status)
                 and (name is None or names_matching([str(r.get("name") or "")], name))
                 and (before is None or sort_key(r) < tuple(before))]
        return Page(shown[offset:offset + limit], counts if count else {}, len(shown) if count else None)

    def walk(self, status: Optional[str] = None, name: Optional[str] = None, owner: Optional[str] = None,
             ttl: Optional[float] = None, batch: int = 500,
             fields: Optional[Sequence[str]] = None) -> Iterator[Dict[str, Any]]:
        """Every job the filters match, newest first, read ``batch`` at a time
        through ``page`` (jobs created meanwhile are not in the walk; none is
        listed twice); ``ttl``: skip finished jobs past it not yet pruned."""
        before: Optional[Tuple[float, str]] = None
        while True:
            jobs = self.page(status, name, owner, limit=batch, before=before, count=False, fields=fields).jobs
            now = time.time()
            for record in jobs:
                finished = record.get("finished")
                if ttl is None or record["status"] not in FINISHED or finished is None or finished + ttl > now:
                    yield record
            if len(jobs) < batch:
                return
            before = sort_key(jobs[-1])

    def prune(self, ttl: float, max_jobs: int, now: Optional[float] = None, limit: int = PRUNE_SLICE) -> int:
        """Drop at most ``limit`` jobs in one bounded step: finished jobs older
        than ``ttl``, then the oldest finished past ``max_jobs`` finished ones;
        never a queued or running one.  Returns how many (``limit``: call again)."""
        return self.expire(ttl, max_jobs, now)

    def expire(self, ttl: float, max_jobs: int, now: Optional[float] = None) -> int:
        """Drop every finished job ``prune`` would, slice after slice.  Returns how many."""
        dropped = 0
        while True:
            n = self.prune(ttl, max_jobs, now)
            dropped += n
            if n < PRUNE_SLICE:
                return dropped

    def beat(self, job_ids: Iterable[str], now: float) -> None:
        """Mark these jobs alive at ``now`` (their ``heartbeat``): one batched write."""
        for job_id in job_ids:
            self.update(job_id, heartbeat=now)

    def cancel_requested(self, job_ids: Iterable[str]) -> Set[str]:
        """Which of these jobs were asked to stop (their ``cancel`` flag): one batched read."""
        found = set()
        for job_id in job_ids:
            record = self.get(job_id)
            if record is not None and record["cancel"]:
                found.add(job_id)
        return found


def count_statuses(statuses: Iterable[str]) -> Dict[str, int]:
    """How many of each status (every status present, zero or more)."""
    counts = {s.value: 0 for s in JobStatus}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return counts


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` with each lone surrogate (``"\\ud800"``, or a byte that
    ``surrogateescape`` decoded: no UTF-8 encoder takes one) as U+FFFD, one
    character for one, so that offsets stay the same everywhere."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _clean_value(value: Any) -> Any:
    """Strings of a record (its error, a progress message) cleaned; other values as they are."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {k: clean(v) if isinstance(v, str) else v for k, v in value.items()}
    return value


def jsonable(value: Any) -> Any:
    """``value`` if it is JSON-serialisable, else its ``repr`` (results, mostly)."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def open_store(spec: Any, max_output: int, ttl: float = 3600.0) -> Store:
    """A store from a URL or a ready ``Store`` object.

    URLs: ``memory://``; ``sqlite:///relative/path.db`` or
    ``sqlite:////absolute/path.db`` (written as SQLAlchemy writes them);
    ``redis://host:port/db`` (also ``rediss://`` and ``unix://``).
    """
    if isinstance(spec, Store):
        spec.max_output, spec.ttl = max_output, ttl
        return spec
    if not isinstance(spec, str):
        raise TypeError("store must be a URL string or a Store, not %r" % (spec,))
    scheme = spec.split(":", 1)[0].lower()
    if scheme == "memory":
        from .memory import MemoryStore

        return MemoryStore(max_output=max_output)
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        if not spec.lower().startswith("sqlite:///") or len(spec) == len("sqlite:///"):
            raise ValueError("SQLite store URL must be sqlite:///relative.db or sqlite:////abs.db, not %r" % spec)
        return SQLiteStore(spec[len("sqlite:///"):], max_output=max_output)
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisStore

        return RedisStore(spec, max_output=max_output, ttl=ttl)
    raise ValueError("unknown store URL %r (expected memory://, sqlite:///path or redis://host:port/db)" % (spec,))
