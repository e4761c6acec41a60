"""The Redis provider's Lua scripts: every write that touches indexes is one of these.

Layout they maintain (all keys already prefixed by the Django backend's key function):

* ``<ns>k:<key>``: the entry, a plain string in the backend's own serialization.
* ``<ns>m:<key>``: a hash ``{index name: index key}``, what the entry is filed under now;
  it expires with the entry.
* ``<ns>i:<index>:<value>``: a sorted set of escaped keys (the ``member``), each scored by
  its entry's expiry in server milliseconds (``+inf`` for none). The set expires at its
  highest score, so it lives exactly as long as its longest-lived member.

Python computes and passes every key a script names (``KEYS``: Redis's rule, and what lets
redis-py route a call to the cluster node of its slot); the one exception is the index keys
an entry was filed under before, which only its meta hash knows. They share the entry's hash
tag (see ``layout``), so on a cluster they live in the same slot as the declared keys. Scores come from the server's ``TIME``, so
clients with skewed clocks still agree on what is expired. Each script does a bounded
amount of work: callers split large jobs into chunks (``CHUNK``).
"""

from __future__ import annotations

from typing import Final

#: Most members or entries one script call handles, so no call blocks the server for long.
CHUNK: Final = 500

_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function score_for(px)
  if px == '' then return '+inf' end
  return string.format('%.0f', now_ms() + tonumber(px))
end

-- An index expires with its highest-scored (longest-lived) member.
local function refresh(idx)
  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  if top[2] == nil then return end
  if top[2] == 'inf' then redis.call('PERSIST', idx) else redis.call('PEXPIREAT', idx, top[2]) end
end

-- Take member out of the indexes its meta names, except those in keep (name -> index key).
-- Returns how many index memberships were removed (-1 if there was no meta), how many
-- filings the meta held, and how many of them were not in keep (whether or not the index
-- still held the member: a flush racing a write may have dropped the index set already).
local function unfile(meta, member, keep)
  local old = redis.call('HGETALL', meta)
  if #old == 0 then return -1, 0, 0 end
  local removed, moved = 0, 0
  for i = 1, #old, 2 do
    if keep == nil or keep[old[i]] ~= old[i + 1] then
      moved = moved + 1
      removed = removed + redis.call('ZREM', old[i + 1], member)
      refresh(old[i + 1])
    end
  end
  return removed, #old / 2, moved
end
"""

#: KEYS: entry, meta, index keys...; ARGV: value, px ('' none, '0' expire now), nx ('1' or ''),
#: member, index names... (one per index key). Returns 1 if stored, 0 if ``nx`` found the key.
SET = """
local entry, meta, value, px, member = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[4]
if ARGV[3] == '1' and redis.call('EXISTS', entry) == 1 then return 0 end
if px == '0' then
  unfile(meta, member, nil)
  redis.call('DEL', meta, entry)
  return 1
end
if px == '' then redis.call('SET', entry, value) else redis.call('SET', entry, value, 'PX', px) end
local keep = {}
for i = 3, #KEYS do keep[ARGV[i + 2]] = KEYS[i] end
local removed, filed, moved = unfile(meta, member, keep)
if #KEYS > 2 then
  local score = score_for(px)
  for i = 3, #KEYS do
    redis.call('ZADD', KEYS[i], score, member)
    refresh(KEYS[i])
  end
  if moved ~= 0 or filed ~= #KEYS - 2 then -- filed differently before (or not at all)
    local fields = {}
    for i = 3, #KEYS do
      fields[#fields + 1] = ARGV[i + 2]
      fields[#fields + 1] = KEYS[i]
    end
    if removed >= 0 then redis.call('DEL', meta) end
    redis.call('HSET', meta, unpack(fields))
  end
  if px == '' then redis.call('PERSIST', meta) else redis.call('PEXPIRE', meta, px) end
elseif removed >= 0 then
  redis.call('DEL', meta)
end
return 1
"""

#: KEYS: entry1, meta1, entry2, meta2...; ARGV: px, member1, value1, member2, value2...
#: Stores every pair unindexed (taking each out of its old indexes). Returns the count.
SET_MANY = """
local px, n = ARGV[1], #KEYS / 2
local metas = {}
for i = 1, n do metas[i] = KEYS[2 * i] end
if redis.call('EXISTS', unpack(metas)) > 0 then -- rarely: some were filed under indexes
  for i = 1, n do
    if unfile(KEYS[2 * i], ARGV[2 * i], nil) >= 0 then redis.call('DEL', KEYS[2 * i]) end
  end
end
if px == '0' then
  for i = 1, n do redis.call('DEL', KEYS[2 * i - 1]) end
elseif px == '' then
  local flat = {}
  for i = 1, n do
    flat[2 * i - 1], flat[2 * i] = KEYS[2 * i - 1], ARGV[2 * i + 1]
  end
  redis.call('MSET', unpack(flat))
else
  for i = 1, n do redis.call('SET', KEYS[2 * i - 1], ARGV[2 * i + 1], 'PX', px) end
end
return n
"""

#: KEYS: entry1, meta1, entry2, meta2...; ARGV: member1, member2... Returns how many existed.
DELETE = """
local n = 0
for i = 1, #KEYS, 2 do
  if unfile(KEYS[i + 1], ARGV[(i + 1) / 2], nil) >= 0 then redis.call('DEL', KEYS[i + 1]) end
  n = n + redis.call('UNLINK', KEYS[i])
end
return n
"""

#: KEYS: entry, meta; ARGV: member. Returns the value (now deleted) or nil: GETDEL + unfile.
POP = """
local value = redis.call('GET', KEYS[1])
if not value then return false end
redis.call('DEL', KEYS[1])
if unfile(KEYS[2], ARGV[1], nil) >= 0 then redis.call('DEL', KEYS[2]) end
return value
"""

#: KEYS: entry, meta; ARGV: delta, px, member. A missing key starts at 0 with ``px``, unfiled.
INCR = """
local entry, meta, delta, px = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if redis.call('EXISTS', entry) == 1 then return redis.call('INCRBY', entry, delta) end
if unfile(meta, ARGV[3], nil) >= 0 then redis.call('DEL', meta) end
redis.call('SET', entry, 0)
local value = redis.call('INCRBY', entry, delta)
if px == '0' then redis.call('DEL', entry)
elseif px ~= '' then redis.call('PEXPIRE', entry, px) end
return value
"""

#: KEYS: entry, meta; ARGV: px ('' persist, '0' expire now), member. Moves the entry's
#: index scores and its meta's expiry along with it. Returns 1 if the entry exists.
TOUCH = """
local entry, meta, px, member = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if redis.call('EXISTS', entry) == 0 then return 0 end
if px == '0' then
  unfile(meta, member, nil)
  redis.call('DEL', meta, entry)
  return 1
end
if px == '' then redis.call('PERSIST', entry) else redis.call('PEXPIRE', entry, px) end
local filed = redis.call('HGETALL', meta)
if #filed > 0 then
  local score = score_for(px)
  for i = 2, #filed, 2 do
    redis.call('ZADD', filed[i], 'XX', score, member)
    refresh(filed[i])
  end
  if px == '' then redis.call('PERSIST', meta) else redis.call('PEXPIRE', meta, px) end
end
return 1
"""

#: KEYS: index; ARGV: -. The members whose entries have not expired, by server time.
LIVE_MEMBERS = """
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now_ms()), '+inf')
"""

#: KEYS: index, entry1, entry2...; ARGV: member1, member2... Of these candidates, the members
#: still filed in the index and unexpired by server time, and their values, in one atomic
#: step (so an entry re-filed or deleted meanwhile is never returned): member1, value1, ...
LIVE_ENTRIES = """
local idx, now, out = KEYS[1], now_ms(), {}
for i = 2, #KEYS do
  local score = redis.call('ZSCORE', idx, ARGV[i - 1])
  if score and (score == 'inf' or tonumber(score) > now) then
    local value = redis.call('GET', KEYS[i])
    if value then
      out[#out + 1] = ARGV[i - 1]
      out[#out + 1] = value
    end
  end
end
return out
"""

#: KEYS: index, entry1, meta1, entry2, meta2...; ARGV: index name, member1, member2...
#: Deletes each entry still filed under this index (and files it out of its others); a member
#: re-filed elsewhere meanwhile is only dropped from this index. Returns entries deleted.
DELETE_FILED = """
local idx, name, n = KEYS[1], ARGV[1], 0
for i = 2, #KEYS, 2 do
  local entry, meta, member = KEYS[i], KEYS[i + 1], ARGV[i / 2 + 1]
  if redis.call('HGET', meta, name) == idx then
    unfile(meta, member, nil)
    redis.call('DEL', meta)
    n = n + redis.call('UNLINK', entry)
  else
    redis.call('ZREM', idx, member)
  end
end
refresh(idx)
return n
"""

#: KEYS: index; ARGV: -. Drops members whose score (expiry) has passed. Returns the count.
PRUNE_EXPIRED = """
local n = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now_ms()))
refresh(KEYS[1])
return n
"""

#: KEYS: index, entry1, meta1, ...; ARGV: index name, member1, ... Re-checks each member at
#: run time: kept only if its entry exists and its meta still files it here. An orphaned meta
#: (entry gone) is unfiled everywhere. Returns how many memberships were dropped.
PRUNE_MEMBERS = """
local idx, name, n = KEYS[1], ARGV[1], 0
for i = 2, #KEYS, 2 do
  local entry, meta, member = KEYS[i], KEYS[i + 1], ARGV[i / 2 + 1]
  if redis.call('EXISTS', entry) == 0 then
    local removed = unfile(meta, member, nil)
    if removed >= 0 then
      n = n + removed
      redis.call('DEL', meta)
    end
    n = n + redis.call('ZREM', idx, member)
  elseif redis.call('HGET', meta, name) ~= idx then
    n = n + redis.call('ZREM', idx, member)
  end
end
refresh(idx)
return n
"""

#: KEYS: key; ARGV: delta. Django's ``incr()`` (``RedisClusterCache``): INCRBY only if the key
#: exists, in one step (its TTL kept); nil for a missing key, which stays missing.
INCR_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"""

#: KEYS: lock; ARGV: token. Deletes the lock only if this token holds it (1 if released).
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: Script name -> Lua source (each with the shared helpers in front).
SOURCES: Final[dict[str, str]] = {
    name: _PRELUDE + body
    for name, body in {
        "set": SET,
        "set_many": SET_MANY,
        "delete": DELETE,
        "pop": POP,
        "incr": INCR,
        "incr_existing": INCR_EXISTING,
        "touch": TOUCH,
        "live_members": LIVE_MEMBERS,
        "live_entries": LIVE_ENTRIES,
        "delete_filed": DELETE_FILED,
        "prune_expired": PRUNE_EXPIRED,
        "prune_members": PRUNE_MEMBERS,
        "release": RELEASE,
    }.items()
}
