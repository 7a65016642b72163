"""Jobs in Redis, shared by every process on every machine that reaches it.

Per job, three keys with one hash tag (``{id}``):
  ``wb:{id}``       hash: each record field as JSON, plus ``end``, ``cut``, ``n``
  ``wb:{id}:out``   list of output chunks, oldest first
  ``wb:{id}:idx``   sorted set: chunk serial number -> its absolute start offset
and the indexes the page query and pruning read, sorted sets scored by
``created`` unless said otherwise: ``wb:ids`` (every job), ``wb:s:<status>``,
``wb:o:<owner>``, ``wb:os:<status>:<owner>``, ``wb:n:<name>`` (with
``wb:names``, the set of names), ``wb:finished`` (scored by ``finished``);
``wb:ix`` (a hash: id -> which of them hold it, and its ``key=``),
``wb:cancel`` (the set of unfinished jobs asked to stop) and ``wb:key:<key>``
(the job holding a key).  Appends, reads, updates and drops are Lua scripts,
so each is one round trip and atomic.  A finished job's keys also carry a
Redis expiry of ``ttl`` seconds (if no process prunes); pruning drops a job
with its index entries and its key entry.  ``wb:version`` marks a database
whose older jobs (written before these indexes) were indexed, at the first
prune of a process that found it missing.
"""

import json
import secrets
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from . import redis_scripts as lua
from . import FINISHED, PRUNE_SLICE, JobStatus, Page, Store, StoreError, jsonable, names_matching, owner_key

try:
    import redis
except ImportError:  # pragma: no cover - exercised only without the extra
    redis = None  # type: ignore[assignment]


def _keys(job_id: str) -> Tuple[str, str, str]:
    base = "wb:{%s}" % job_id
    return base, base + ":out", base + ":idx"


class RedisStore(Store):
    """A store in the Redis server at ``url`` (``redis://host:port/db``)."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", max_output: int = 1_000_000,
                 ttl: float = 3600.0, timeout: float = 2.0) -> None:
        if redis is None:
            raise StoreError("the Redis store needs redis-py: pip install 'web_background[redis]'")
        self.url, self.max_output, self.ttl = url, max_output, ttl
        # redis-py's pool is fork-safe: a child opens its own connections
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                           health_check_interval=30)
        self._scripts(self.client)
        self._upgraded = False

    def _scripts(self, client: Any) -> None:
        self._append_script = client.register_script(lua.APPEND)
        self._read_script = client.register_script(lua.READ)
        self._claim_script = client.register_script(lua.CLAIM)
        self._update_script = client.register_script(lua.UPDATE)
        self._drop_script = client.register_script(lua.DROP)
        self._prune_script = client.register_script(lua.PRUNE)
        self._beat_script = client.register_script(lua.BEAT)
        self._page_script = client.register_script(lua.PAGE)

    def share_connection(self, client: Any) -> bool:
        """Use ``client`` (an RQ work-horse's own, already connected) when it
        reaches the same Redis: a forked work-horse then opens no connection
        of its own.  False, and nothing changed, when it does not."""
        def where(c: Any) -> Tuple[Any, ...]:
            kw = c.connection_pool.connection_kwargs
            return kw.get("host"), kw.get("port"), kw.get("db", 0), kw.get("path"), kw.get("username")

        try:
            same = where(client) == where(self.client)
        except AttributeError:
            return False
        if same:
            self.client = client
            self._scripts(client)
        return same

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as e:
            raise StoreError("Redis at %s: %s" % (self.url, e)) from None

    def _create(self, record: Dict[str, Any]) -> None:
        key = _keys(record["id"])[0]
        fields: Dict[str, Any] = {k: json.dumps(jsonable(v)) for k, v in record.items()}
        fields.update(end=0, cut=0, n=0)
        pipe = self.client.pipeline()
        pipe.hset(key, mapping=fields)
        _index(pipe, record)
        self._call(pipe.execute)

    def _upgrade(self) -> None:
        """Index the jobs a version without the page query wrote (once per Redis database)."""
        if not self._call(self.client.set, "wb:version", "2", nx=True):
            return  # done already, or under way in another process
        ids = [i.decode() for i in self._call(self.client.zrange, "wb:ids", 0, -1)]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            indexed = self._call(self.client.hmget, "wb:ix", chunk)
            todo = [i for i, ix in zip(chunk, indexed) if ix is None]
            pipe = self.client.pipeline(transaction=False)
            for job_id in todo:
                pipe.hgetall(_keys(job_id)[0])
            raws = self._call(pipe.execute) if todo else []
            pipe = self.client.pipeline(transaction=False)
            for job_id, raw in zip(todo, raws):
                try:
                    record = _decode(job_id, raw) if raw else None
                except StoreError:
                    record = None
                if record is not None and "created" in record:
                    _index(pipe, record)
            self._call(pipe.execute)

    def get(self, job_id: str) -> Optional[Dict[str, Any]]:
        raw = self._call(self.client.hgetall, _keys(job_id)[0])
        if not raw:
            return None
        return _decode(job_id, raw)

    def _update(self, job_id: str, **fields: Any) -> None:
        # one script: the fields, the indexes and the expiry land together, and a
        # job that expired meanwhile is not resurrected
        if not fields:
            return
        status = fields.get("status")
        finished = ""
        if status in FINISHED:
            finished = repr(float(fields.get("finished") or time.time()))
        owner: List[Any] = ["", ""]
        if "owner" in fields:
            value = owner_key(fields["owner"])
            owner = ["0", ""] if value is None else ["1", value]
        pairs: List[Any] = []
        for k, v in fields.items():
            pairs += [k, json.dumps(jsonable(v))]
        self._call(self._update_script, keys=list(_keys(job_id)),
                   args=[job_id, status or "", finished, "1" if fields.get("cancel") else "",
                         max(1, int(self.ttl + 1))] + owner + pairs)

    def _append(self, job_id: str, text: str, skipped: int = 0) -> None:
        if text or skipped:
            self._call(self._append_script, keys=list(_keys(job_id)), args=[text, len(text), self.max_output, skipped])

    def read(self, job_id: str, offset: int = 0) -> Optional[Tuple[str, int, int]]:
        # Lua numbers are doubles: any offset past 2**52 is past the end anyway
        got = self._call(self._read_script, keys=list(_keys(job_id)), args=[min(offset, 2 ** 52)])
        if not got:
            return None
        end, cut, chunk_start, chunks = int(got[0]), int(got[1]), int(float(got[2])), got[3]
        start = max(offset, cut)
        if start >= end or not chunks:
            return "", end, cut
        text = b"".join(chunks).decode("utf-8")
        return text[start - chunk_start:], end, cut

    def claim(self, key: str, job_id: str) -> Optional[str]:
        holder = self._call(self._claim_script, keys=["wb:key:" + key], args=[job_id])
        return holder.decode() if holder else None

    def ids(self) -> List[str]:
        ids = [i.decode() for i in self._call(self.client.zrange, "wb:ids", 0, -1)]
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.exists(_keys(job_id)[0])
        alive = self._call(pipe.execute) if ids else []
        gone = [i for i, a in zip(ids, alive) if not a]
        if gone:  # expired by Redis: forget them in the indexes too
            self._call(self._drop_script, keys=[], args=gone)
        return [i for i, a in zip(ids, alive) if a]

    def delete(self, job_id: str) -> None:
        self._call(self._drop_script, keys=[], args=[job_id])

    def page(self, status: Optional[str] = None, name: Optional[str] = None, owner: Optional[str] = None,
             limit: int = 50, offset: int = 0, before: Optional[Tuple[float, str]] = None,
             count: bool = True, fields: Optional[Sequence[str]] = None) -> Page:
        if owner is None:
            source = "wb:ids" if status is None else "wb:s:" + status
        else:
            source = "wb:o:" + owner if status is None else "wb:os:%s:%s" % (status, owner)
        temp = None
        if name is not None:
            names = names_matching([n.decode("utf-8", "replace") for n in self._call(self.client.smembers, "wb:names")],
                                   name)
            if not names:
                return Page([], self._counts(owner) if count else {}, 0 if count else None)
            temp = "wb:tmp:" + secrets.token_hex(8)  # the matching jobs, for this query only
            pipe = self.client.pipeline()
            pipe.zunionstore(temp, ["wb:n:" + n for n in names], aggregate="MAX")
            pipe.zinterstore(temp, [temp, source], aggregate="MAX")
            pipe.expire(temp, 30)
            self._call(pipe.execute)
            source = temp
        try:
            wanted = [] if fields is None else sorted(set(fields) | {"id", "status", "created", "finished"})
            cursor = ["", "", ""] if before is None else ["1", repr(float(before[0])), before[1]]
            pipe = self.client.pipeline(transaction=False)  # one round trip: the page and the counts
            self._page_script(keys=[source], args=cursor + [offset, limit] + wanted, client=pipe)
            if count:
                pipe.zcard(source)
                self._queue_counts(pipe, owner)
            got = self._call(pipe.execute)
        finally:
            if temp is not None:
                self._call(self.client.delete, temp)
        jobs = _parse_page(got[0])
        if not count:
            return Page(jobs)
        return Page(jobs, dict(zip([s.value for s in JobStatus], got[2:])), got[1])

    def _queue_counts(self, pipe: Any, owner: Optional[str]) -> None:
        for s in JobStatus:
            pipe.zcard("wb:s:" + s.value if owner is None else "wb:os:%s:%s" % (s.value, owner))

    def _counts(self, owner: Optional[str]) -> Dict[str, int]:
        pipe = self.client.pipeline(transaction=False)
        self._queue_counts(pipe, owner)
        return dict(zip([s.value for s in JobStatus], self._call(pipe.execute)))

    def prune(self, ttl: float, max_jobs: int, now: Optional[float] = None, limit: int = PRUNE_SLICE) -> int:
        if not self._upgraded:  # the maintenance thread's first prune: off every request path
            self._upgraded = True
            self._upgrade()
        now = time.time() if now is None else now
        return int(self._call(self._prune_script, keys=[], args=[repr(float(now - ttl)), max_jobs, limit]))

    def beat(self, job_ids: Iterable[str], now: float) -> None:
        keys = [_keys(i)[0] for i in job_ids]
        if keys:
            self._call(self._beat_script, keys=keys, args=[json.dumps(now)])

    def cancel_requested(self, job_ids: Iterable[str]) -> Set[str]:
        asked = {i.decode() for i in self._call(self.client.smembers, "wb:cancel")}
        return asked.intersection(job_ids)


def _index(pipe: Any, record: Dict[str, Any]) -> None:
    """Queue the index entries of a job (see the module's docstring)."""
    job_id, status, created = record["id"], record["status"], record["created"]
    name, owner = str(record.get("name") or ""), owner_key(record.get("owner"))
    ix: Dict[str, Any] = {"s": status, "n": name}
    pipe.zadd("wb:ids", {job_id: created})
    pipe.zadd("wb:s:" + status, {job_id: created})
    pipe.zadd("wb:n:" + name, {job_id: created})
    pipe.sadd("wb:names", name)
    if owner is not None:
        ix["o"] = owner
        pipe.zadd("wb:o:" + owner, {job_id: created})
        pipe.zadd("wb:os:%s:%s" % (status, owner), {job_id: created})
    if record.get("key") is not None:
        ix["k"] = str(record["key"])
    pipe.hset("wb:ix", job_id, json.dumps(ix))
    if status in FINISHED:
        pipe.zadd("wb:finished", {job_id: record.get("finished") or time.time()})
    if record.get("cancel") and status not in FINISHED:
        pipe.sadd("wb:cancel", job_id)


def _parse_page(raw: bytes) -> List[Dict[str, Any]]:
    """The records of the page script's JSON array."""
    try:
        records = json.loads(raw)
        for record in records:
            if not isinstance(record, dict) or not isinstance(record.get("id"), str) or "status" not in record:
                raise ValueError("not a job record: %.80r" % (record,))
    except ValueError as e:
        raise StoreError("corrupt record in Redis (%s)" % e) from None
    return records


def _decode(job_id: str, raw: Dict[bytes, bytes]) -> Dict[str, Any]:
    """A record from its hash (HGETALL)."""
    try:
        record = {k.decode(): json.loads(v) for k, v in raw.items()}
        if record.get("id") != job_id or "status" not in record:
            raise ValueError("not a job record")
    except ValueError as e:
        raise StoreError("job %s: corrupt record in Redis (%s)" % (job_id, e)) from None
    return record
