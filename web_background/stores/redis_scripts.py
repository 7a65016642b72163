"""The Redis store's Lua scripts (each one round trip, atomic); ``redis.py`` says
what the keys hold.  Keys a script touches beyond its KEYS are the indexes
(``wb:ids``, ``wb:s:*``, ``wb:o:*``, ``wb:os:*``, ``wb:n:*``, ``wb:names``,
``wb:finished``, ``wb:ix``, ``wb:cancel``, ``wb:key:*``) and other jobs' hashes."""

APPEND = """
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

READ = """
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

CLAIM = """
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
UPDATE = """
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
DROP_ALL = """
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

DROP = DROP_ALL + """
return drop(ARGV)
"""

# ARGV: the cutoff (finished at or before it: past ttl), max_jobs, the slice's size
PRUNE = DROP_ALL + """
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
PAGE = """
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

BEAT = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('HSET', KEYS[i], 'heartbeat', ARGV[1]) end
end
return 0
"""
