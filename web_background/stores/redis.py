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
with its index entries and its key entry.
"""

import json
import secrets
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from . import FINISHED, PRUNE_SLICE, JobStatus, Page, Store, StoreError, jsonable, names_matching, owner_key

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

# wb:ix holds, per job, a JSON object: s (status), o (owner, if any), n (name), k (its key=, if any)
# ARGV: id, the new status or '', finished at (or ''), '1' for a cancel, the expiry of a finished job,
# the owner ('' unchanged, '0' none, '1' the next argument), the owner, then field, value pairs
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local id = ARGV[1]
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
if ARGV[4] == '1' then redis.call('SADD', 'wb:cancel', id) end
local raw = redis.call('HGET', 'wb:ix', id)
if raw and (ARGV[2] ~= '' or ARGV[6] ~= '') then
  local ix = cjson.decode(raw)
  local s, o = ix.s, ix.o
  if ARGV[2] ~= '' then s = ARGV[2] end
  if ARGV[6] == '0' then o = nil elseif ARGV[6] == '1' then o = ARGV[7] end
  if s ~= ix.s or o ~= ix.o then
    local created = redis.call('ZSCORE', 'wb:ids', id) or '0'
    redis.call('ZREM', 'wb:s:' .. ix.s, id)
    redis.call('ZADD', 'wb:s:' .. s, created, id)
    if ix.o then
      redis.call('ZREM', 'wb:o:' .. ix.o, id)
      redis.call('ZREM', 'wb:os:' .. ix.s .. ':' .. ix.o, id)
    end
    if o then
      redis.call('ZADD', 'wb:o:' .. o, created, id)
      redis.call('ZADD', 'wb:os:' .. s .. ':' .. o, created, id)
    end
    ix.s, ix.o = s, o
    redis.call('HSET', 'wb:ix', id, cjson.encode(ix))
  end
end
if ARGV[3] ~= '' then  -- finished at this time
  redis.call('ZADD', 'wb:finished', ARGV[3], id)
  redis.call('SREM', 'wb:cancel', id)
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
end
return 1
"""

# drop(ids): each job's keys, index entries and key= entry, with one command per index touched
_DROP_ALL = """
local function drop(ids)
  local gone, by_key, dead, names = 0, {}, {}, {}
  local function add(key, id)
    local list = by_key[key]
    if not list then list = {}; by_key[key] = list end
    list[#list + 1] = id
  end
  for _, id in ipairs(ids) do
    local base = 'wb:{' .. id .. '}'
    dead[#dead + 1] = base; dead[#dead + 1] = base .. ':out'; dead[#dead + 1] = base .. ':idx'
    add('wb:ids', id); add('wb:finished', id)
    local raw = redis.call('HGET', 'wb:ix', id)
    if raw then
      gone = gone + 1
      local ix = cjson.decode(raw)
      add('wb:s:' .. ix.s, id)
      if ix.o then add('wb:o:' .. ix.o, id); add('wb:os:' .. ix.s .. ':' .. ix.o, id) end
      add('wb:n:' .. ix.n, id)
      names[ix.n] = true
      if ix.k and redis.call('GET', 'wb:key:' .. ix.k) == id then dead[#dead + 1] = 'wb:key:' .. ix.k end
    elseif redis.call('EXISTS', base) == 1 then
      gone = gone + 1
    end
  end
  if #ids == 0 then return 0 end
  redis.call('DEL', unpack(dead))
  redis.call('HDEL', 'wb:ix', unpack(ids))
  redis.call('SREM', 'wb:cancel', unpack(ids))
  for key, list in pairs(by_key) do redis.call('ZREM', key, unpack(list)) end
  for name in pairs(names) do
    if redis.call('EXISTS', 'wb:n:' .. name) == 0 then redis.call('SREM', 'wb:names', name) end
  end
  return gone
end
"""

_DROP = _DROP_ALL + """
return drop(ARGV)
"""

# ARGV: the cutoff (finished at or before it: past ttl), max_jobs, the slice's size
_PRUNE = _DROP_ALL + """
local limit = tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', 'wb:finished', '-inf', ARGV[1], 'LIMIT', 0, limit)
local over = redis.call('ZCARD', 'wb:finished') - #ids - tonumber(ARGV[2])
if over > 0 and #ids < limit then
  local more = redis.call('ZRANGE', 'wb:finished', #ids, #ids + math.min(over, limit - #ids) - 1)
  for _, id in ipairs(more) do ids[#ids + 1] = id end
end
return drop(ids)
"""

# One page: the ids from the index KEYS[1] newest first, then each job's hash
# (ARGV[6..]: only these fields) as one JSON array of objects (the values are
# JSON already), one string for the whole page.  ARGV: '1' after a cursor, its
# created and id, the offset, the limit.  Ties on created go by id, bytewise.
_PAGE = """
local function lt(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local offset, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local ids = {}
if limit <= 0 then return '[]' end
if ARGV[1] == '1' then
  local at = tonumber(ARGV[2])
  local ties = redis.call('ZCOUNT', KEYS[1], ARGV[2], ARGV[2])
  local got = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[2], '-inf', 'WITHSCORES', 'LIMIT', 0, offset + limit + ties)
  local skipped = 0
  for i = 1, #got, 2 do
    if tonumber(got[i + 1]) ~= at or lt(got[i], ARGV[3]) then
      if skipped < offset then skipped = skipped + 1
      elseif #ids < limit then ids[#ids + 1] = got[i] end
    end
  end
else
  ids = redis.call('ZREVRANGE', KEYS[1], offset, offset + limit - 1)
end
local names = {}  -- field name -> its JSON
local function name(n)
  local q = names[n]
  if not q then q = cjson.encode(n); names[n] = q end
  return q
end
local out = {}
for _, id in ipairs(ids) do
  local key = 'wb:{' .. id .. '}'
  local parts = {}
  if #ARGV < 6 then
    local h = redis.call('HGETALL', key)
    for j = 1, #h, 2 do parts[#parts + 1] = name(h[j]) .. ':' .. h[j + 1] end
  else  -- a job that is gone has none of them
    local h = redis.call('HMGET', key, unpack(ARGV, 6))
    for j = 6, #ARGV do
      if h[j - 5] then parts[#parts + 1] = name(ARGV[j]) .. ':' .. h[j - 5] end
    end
  end
  if #parts > 0 then out[#out + 1] = '{' .. table.concat(parts, ',') .. '}' end
end
return '[' .. table.concat(out, ',') .. ']'
"""

_BEAT = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('HSET', KEYS[i], 'heartbeat', ARGV[1]) end
end
return 0
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
        self._update_script = client.register_script(_UPDATE)
        self._drop_script = client.register_script(_DROP)
        self._prune_script = client.register_script(_PRUNE)
        self._beat_script = client.register_script(_BEAT)
        self._page_script = client.register_script(_PAGE)

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
        job_id, status, created = record["id"], record["status"], record["created"]
        name, owner = str(record.get("name") or ""), owner_key(record.get("owner"))
        ix: Dict[str, Any] = {"s": status, "n": name}
        pipe = self.client.pipeline()
        pipe.hset(key, mapping=fields)
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
        now = time.time() if now is None else now
        return int(self._call(self._prune_script, keys=[], args=[repr(float(now - ttl)), max_jobs, limit]))

    def beat(self, job_ids: Iterable[str], now: float) -> None:
        keys = [_keys(i)[0] for i in job_ids]
        if keys:
            self._call(self._beat_script, keys=keys, args=[json.dumps(now)])

    def cancel_requested(self, job_ids: Iterable[str]) -> Set[str]:
        asked = {i.decode() for i in self._call(self.client.smembers, "wb:cancel")}
        return asked.intersection(job_ids)


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
