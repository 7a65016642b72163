"""Jobs in Redis, shared by every process on every machine that reaches it.

Per job, three keys with one hash tag (``{id}``):
  ``wb:{id}``       hash: each record field as JSON, plus ``end``, ``cut``, ``n``
  ``wb:{id}:out``   list of output chunks, oldest first
  ``wb:{id}:idx``   sorted set: chunk serial number -> its absolute start offset
and two indexes: ``wb:ids`` (id -> created) and ``wb:finished`` (id -> finished).
Appends and reads are Lua scripts, so each is one round trip and atomic.
A finished job's keys carry a Redis expiry of ``ttl`` seconds.
"""

import json
import time
from typing import Any, Dict, List, Optional, Tuple

from . import FINISHED, Store, StoreError, jsonable

try:
    import redis
except ImportError:  # pragma: no cover - exercised only without the extra
    redis = None  # type: ignore[assignment]

_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local e = tonumber(redis.call('HGET', KEYS[1], 'end') or '0')
if tonumber(ARGV[4]) > 0 then  -- characters skipped before this text: all older output is cut
  redis.call('DEL', KEYS[2], KEYS[3])
  e = e + tonumber(ARGV[4])
  redis.call('HSET', KEYS[1], 'cut', e)
end
local serial = redis.call('HINCRBY', KEYS[1], 'n', 1) - 1
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], e, serial)
e = e + tonumber(ARGV[2])
local cut = math.max(tonumber(redis.call('HGET', KEYS[1], 'cut') or '0'), e - tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'end', e, 'cut', cut)
while true do  -- drop whole chunks that end at or before the cut; reads slice the rest
  local two = redis.call('ZRANGE', KEYS[3], 0, 1, 'WITHSCORES')
  if #two < 4 or tonumber(two[4]) > cut then break end
  redis.call('LPOP', KEYS[2])
  redis.call('ZREM', KEYS[3], two[1])
end
local ttl = redis.call('TTL', KEYS[1])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
end
return 1
"""

_READ = """
local h = redis.call('HMGET', KEYS[1], 'end', 'cut')
if not h[1] then return false end
local e, cut = tonumber(h[1]), tonumber(h[2] or '0')
local start = math.max(tonumber(ARGV[1]), cut)
if start >= e then return {h[1], string.format('%d', cut), string.format('%d', start), {}} end
local hit = redis.call('ZREVRANGEBYSCORE', KEYS[3], start, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
local first = redis.call('ZRANGE', KEYS[3], 0, 0)
local i = tonumber(hit[1]) - tonumber(first[1])
return {h[1], string.format('%d', cut), hit[2], redis.call('LRANGE', KEYS[2], i, -1)}
"""

_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  local status = redis.call('HGET', 'wb:{' .. holder .. '}', 'status')
  if status == '"queued"' or status == '"running"' then return holder end
end
redis.call('SET', KEYS[1], ARGV[1])
return false
"""

_NUMERIC = ("end", "cut", "n")


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

    def _scripts(self, client: Any) -> None:
        self._append_script = client.register_script(_APPEND)
        self._read_script = client.register_script(_READ)
        self._claim_script = client.register_script(_CLAIM)

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
        pipe.zadd("wb:ids", {record["id"]: record["created"]})
        if record["status"] in FINISHED:
            pipe.zadd("wb:finished", {record["id"]: record.get("finished") or time.time()})
        self._call(pipe.execute)

    def get(self, job_id: str) -> Optional[Dict[str, Any]]:
        raw = self._call(self.client.hgetall, _keys(job_id)[0])
        if not raw:
            return None
        try:
            record = {k.decode(): json.loads(v) for k, v in raw.items()}
            if record.get("id") != job_id or "status" not in record:
                raise ValueError("not a job record")
        except ValueError as e:
            raise StoreError("job %s: corrupt record in Redis (%s)" % (job_id, e)) from None
        return record

    def _update(self, job_id: str, **fields: Any) -> None:
        key, out, idx = _keys(job_id)
        pipe = self.client.pipeline()  # MULTI/EXEC: the fields and the expiry land together
        pipe.exists(key)
        pipe.hset(key, mapping={k: json.dumps(jsonable(v)) for k, v in fields.items()})
        if fields.get("status") in FINISHED:
            pipe.zadd("wb:finished", {job_id: fields.get("finished") or time.time()})
            for k in (key, out, idx):
                pipe.expire(k, max(1, int(self.ttl + 1)))
        existed = self._call(pipe.execute)[0]
        if not existed:  # updating a job that expired meanwhile must not resurrect it
            self._call(self.client.delete, key)

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
            self._call(self.client.zrem, "wb:ids", *gone)
            self._call(self.client.zrem, "wb:finished", *gone)
        return [i for i, a in zip(ids, alive) if a]

    def delete(self, job_id: str) -> None:
        pipe = self.client.pipeline()
        pipe.delete(*_keys(job_id))
        pipe.zrem("wb:ids", job_id)
        pipe.zrem("wb:finished", job_id)
        self._call(pipe.execute)

    def expire(self, ttl: float, max_jobs: int, now: Optional[float] = None) -> int:
        now = time.time() if now is None else now
        old = self._call(self.client.zrangebyscore, "wb:finished", "-inf", now - ttl)
        drop = [i.decode() for i in old]
        over = self._call(self.client.zcard, "wb:ids") - len(drop) - max_jobs
        if over > 0:
            more = self._call(self.client.zrange, "wb:finished", len(drop), len(drop) + over - 1)
            drop += [i.decode() for i in more]
        for job_id in drop:
            self.delete(job_id)
        return len(drop)
