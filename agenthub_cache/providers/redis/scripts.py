"""The Redis provider's Lua scripts: every write that touches indexes is one of these.

Layout they maintain (all keys already prefixed by the Django backend's key function):

* ``<ns>k:<key>``: the entry, a plain string in the backend's own serialization.
* ``<ns>m:<key>``: a hash ``{index name: index key}``, what the entry is filed under now;
  it expires with the entry.
* ``<ns>i:<index>:<value>``: a sorted set of escaped keys (the ``member``), each scored by
  its entry's expiry in server milliseconds (``+inf`` for none). The set expires at its
  highest score, so it lives exactly as long as its longest-lived member.

Every key a script touches is in its ``KEYS`` (Redis's rule, and what lets redis-py route a
call to the cluster node of its slot). Python computes every key but one kind: the index keys
an entry is filed under, which only its meta hash knows. A script that files entries out of
their indexes (``declared.READS_FILINGS``) reads their metas first, and if they name index keys
its ``KEYS`` did not declare, it changes nothing and returns those keys (a list, which none of
these scripts returns otherwise); the caller sends it again with them appended to ``KEYS``
(``declared.declared_again``, applied by every driver). An entry filed under no index, or
under the index keys the call already declared (a set that keeps its indexes), takes one call.

Scores come from the server's clock (an entry's expiry as the server set it, or ``TIME``), so
clients with skewed clocks still agree on what is expired. Each script does a bounded amount
of work: callers split large jobs into chunks (``CHUNK``).
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

local redis7 = redis.REDIS_VERSION_NUM ~= nil

-- The index score of entry, whose expiry was just set from px: on Redis 7 its expiry read
-- back (PEXPIRETIME: the same server milliseconds, without TIME and number formatting).
local function score_of(entry, px)
  if px == '' then return '+inf' end
  if redis7 then return redis.call('PEXPIRETIME', entry) end
  return score_for(px)
end

-- refresh(idx) just after giving a member that was filed here already the score. An index
-- that expires does so at its highest score (refresh), so on Redis 7 two cheaper checks
-- usually do: PEXPIREAT GT moves an expiry only later, and only an index that expires, so
-- when it does, score was past every other member's and is the highest now; and an index
-- that already expires at score has no member above it. Otherwise (an index that never
-- expires, or the member's own score lowered) it is refreshed from its members.
local function refresh_after(idx, score)
  if score == '+inf' then redis.call('PERSIST', idx); return end
  if redis7 then
    if redis.call('PEXPIREAT', idx, score, 'GT') == 1 then return end
    if redis.call('PEXPIRETIME', idx) == tonumber(score) then return end
  end
  refresh(idx)
end

-- Append to missing the index keys of filings (a meta's HGETALL: name, index key, ...) that
-- KEYS does not declare, each once. Returns missing.
local declared
local function undeclared(filings, missing)
  if #filings == 0 then return missing end
  if declared == nil then
    declared = {}
    for i = 1, #KEYS do declared[KEYS[i]] = true end
  end
  for i = 2, #filings, 2 do
    if not declared[filings[i]] then
      declared[filings[i]] = true
      missing[#missing + 1] = filings[i]
    end
  end
  return missing
end

-- Take member out of the indexes of filings (its meta's HGETALL, every index key declared),
-- except those in keep (name -> index key). Returns how many index memberships were removed
-- (-1 if there was no meta), how many filings the meta held, and how many of them were not
-- in keep (whether or not the index still held the member: a flush racing a write may have
-- dropped the index set already).
local function unfile(filings, member, keep)
  if #filings == 0 then return -1, 0, 0 end
  local removed, moved = 0, 0
  for i = 1, #filings, 2 do
    if keep == nil or keep[filings[i]] ~= filings[i + 1] then
      moved = moved + 1
      removed = removed + redis.call('ZREM', filings[i + 1], member)
      refresh(filings[i + 1])
    end
  end
  return removed, #filings / 2, moved
end
"""

#: ``SET``'s common call, before the helpers are even defined: no indexes, and a key filed
#: nowhere (no meta), is a plain SET (or DEL for px '0'); anything else goes on to ``SET``.
SET_PLAIN = """
if #ARGV == 4 and redis.call('EXISTS', KEYS[2]) == 0 then
  if ARGV[3] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
  if ARGV[2] == '' then redis.call('SET', KEYS[1], ARGV[1])
  elseif ARGV[2] == '0' then redis.call('DEL', KEYS[1])
  else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
  return 1
end
"""

#: KEYS: entry, meta, index keys..., then the keys ``declared_again`` adds; ARGV: value, px
#: ('' none, '0' expire now), nx ('1' or ''), member, index names... (one per index key).
#: Returns 1 if stored, 0 if ``nx`` found the key. Runs after ``SET_PLAIN``.
SET = """
local entry, meta, value, px, member = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[4]
local n = #ARGV - 4
if ARGV[3] == '1' and redis.call('EXISTS', entry) == 1 then return 0 end
local old = redis.call('HGETALL', meta)
local missing = undeclared(old, {})
if #missing > 0 then return missing end
if px == '0' then
  unfile(old, member, nil)
  redis.call('DEL', meta, entry)
  return 1
end
if px == '' then redis.call('SET', entry, value) else redis.call('SET', entry, value, 'PX', px) end
local keep = {}
for i = 1, n do keep[ARGV[i + 4]] = KEYS[i + 2] end
local removed, filed, moved = unfile(old, member, keep)
if n > 0 then
  local score, was = score_of(entry, px), {}
  for i = 2, #old, 2 do was[old[i]] = true end
  for i = 3, n + 2 do
    redis.call('ZADD', KEYS[i], score, member)
    if was[KEYS[i]] or score == '+inf' then refresh_after(KEYS[i], score) else refresh(KEYS[i]) end
  end
  if moved ~= 0 or filed ~= n then -- filed differently before (or not at all)
    local fields = {}
    for i = 1, n do
      fields[#fields + 1] = ARGV[i + 4]
      fields[#fields + 1] = KEYS[i + 2]
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

#: KEYS: entry1, meta1, entry2, meta2..., then added keys; ARGV: px, cut, value1, value2...,
#: where ``cut`` is the length of the entry keys' common prefix (each entry's member is the
#: rest of its key), or '' when member1, member2... follow the values. Stores every pair
#: unindexed (taking each out of its old indexes). Returns the count.
SET_MANY = """
local px, cut = ARGV[1], ARGV[2]
local n = #ARGV - 2
if cut == '' then n = n / 2 end
local function member(i)
  if cut == '' then return ARGV[n + 2 + i] end
  return string.sub(KEYS[2 * i - 1], tonumber(cut) + 1)
end
local metas = {}
for i = 1, n do metas[i] = KEYS[2 * i] end
if redis.call('EXISTS', unpack(metas)) > 0 then -- rarely: some were filed under indexes
  local olds, missing = {}, {}
  for i = 1, n do
    olds[i] = redis.call('HGETALL', KEYS[2 * i])
    undeclared(olds[i], missing)
  end
  if #missing > 0 then return missing end
  for i = 1, n do
    if #olds[i] > 0 then
      unfile(olds[i], member(i), nil)
      redis.call('DEL', KEYS[2 * i])
    end
  end
end
if px == '0' then
  for i = 1, n do redis.call('DEL', KEYS[2 * i - 1]) end
elseif px == '' then
  local flat = {}
  for i = 1, n do
    flat[2 * i - 1], flat[2 * i] = KEYS[2 * i - 1], ARGV[i + 2]
  end
  redis.call('MSET', unpack(flat))
else
  for i = 1, n do redis.call('SET', KEYS[2 * i - 1], ARGV[i + 2], 'PX', px) end
end
return n
"""

#: KEYS: entry1, meta1, entry2, meta2..., then added keys; ARGV: member1, member2...
#: Returns how many existed.
DELETE = """
local n, olds, missing, count = #ARGV, {}, {}, 0
for i = 1, n do
  olds[i] = redis.call('HGETALL', KEYS[2 * i])
  undeclared(olds[i], missing)
end
if #missing > 0 then return missing end
for i = 1, n do
  if unfile(olds[i], ARGV[i], nil) >= 0 then redis.call('DEL', KEYS[2 * i]) end
  count = count + redis.call('UNLINK', KEYS[2 * i - 1])
end
return count
"""

#: KEYS: entry, meta, then added keys; ARGV: member. Returns the value (now deleted) or nil:
#: GETDEL + unfile.
POP = """
local value = redis.call('GET', KEYS[1])
if not value then return false end
local old = redis.call('HGETALL', KEYS[2])
local missing = undeclared(old, {})
if #missing > 0 then return missing end
redis.call('DEL', KEYS[1])
if unfile(old, ARGV[1], nil) >= 0 then redis.call('DEL', KEYS[2]) end
return value
"""

#: KEYS: entry, meta, then added keys; ARGV: delta, px, member. A missing key starts at 0
#: with ``px``, unfiled.
INCR = """
local entry, meta, delta, px = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if redis.call('EXISTS', entry) == 1 then return redis.call('INCRBY', entry, delta) end
local old = redis.call('HGETALL', meta)
local missing = undeclared(old, {})
if #missing > 0 then return missing end
if unfile(old, ARGV[3], nil) >= 0 then redis.call('DEL', meta) end
redis.call('SET', entry, 0)
local value = redis.call('INCRBY', entry, delta)
if px == '0' then redis.call('DEL', entry)
elseif px ~= '' then redis.call('PEXPIRE', entry, px) end
return value
"""

#: KEYS: entry, meta, then added keys; ARGV: px ('' persist, '0' expire now), member. Moves
#: the entry's index scores and its meta's expiry along with it. Returns 1 if the entry exists.
TOUCH = """
local entry, meta, px, member = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if redis.call('EXISTS', entry) == 0 then return 0 end
local filed = redis.call('HGETALL', meta)
local missing = undeclared(filed, {})
if #missing > 0 then return missing end
if px == '0' then
  unfile(filed, member, nil)
  redis.call('DEL', meta, entry)
  return 1
end
if px == '' then redis.call('PERSIST', entry) else redis.call('PEXPIRE', entry, px) end
if #filed > 0 then
  local score = score_of(entry, px)
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

#: KEYS: index, entry1, meta1, entry2, meta2..., then added keys; ARGV: index name, member1,
#: member2... Deletes each entry still filed under this index (and files it out of its
#: others); a member re-filed elsewhere meanwhile is only dropped from this index. Returns
#: entries deleted.
DELETE_FILED = """
local idx, name, n, count = KEYS[1], ARGV[1], #ARGV - 1, 0
local olds, missing = {}, {}
for i = 1, n do
  local old = redis.call('HGETALL', KEYS[2 * i + 1])
  olds[i] = false
  for j = 1, #old, 2 do
    if old[j] == name and old[j + 1] == idx then olds[i] = old end
  end
  if olds[i] then undeclared(old, missing) end
end
if #missing > 0 then return missing end
for i = 1, n do
  local entry, meta, member = KEYS[2 * i], KEYS[2 * i + 1], ARGV[i + 1]
  if olds[i] then
    unfile(olds[i], member, nil)
    redis.call('DEL', meta)
    count = count + redis.call('UNLINK', entry)
  else
    redis.call('ZREM', idx, member)
  end
end
refresh(idx)
return count
"""

#: KEYS: index; ARGV: -. Drops members whose score (expiry) has passed. Returns the count.
PRUNE_EXPIRED = """
local n = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now_ms()))
refresh(KEYS[1])
return n
"""

#: KEYS: index, entry1, meta1, ..., then added keys; ARGV: index name, member1, ... Re-checks
#: each member at run time: kept only if its entry exists and its meta still files it here.
#: An orphaned meta (entry gone) is unfiled everywhere. Returns how many memberships were
#: dropped.
PRUNE_MEMBERS = """
local idx, name, n, count = KEYS[1], ARGV[1], #ARGV - 1, 0
local olds, missing = {}, {}
for i = 1, n do
  olds[i] = false
  if redis.call('EXISTS', KEYS[2 * i]) == 0 then
    olds[i] = redis.call('HGETALL', KEYS[2 * i + 1])
    undeclared(olds[i], missing)
  end
end
if #missing > 0 then return missing end
for i = 1, n do
  local meta, member = KEYS[2 * i + 1], ARGV[i + 1]
  if olds[i] then
    local removed = unfile(olds[i], member, nil)
    if removed >= 0 then
      count = count + removed
      redis.call('DEL', meta)
    end
    count = count + redis.call('ZREM', idx, member)
  elseif redis.call('HGET', meta, name) ~= idx then
    count = count + redis.call('ZREM', idx, member)
  end
end
refresh(idx)
return count
"""

#: KEYS: key; ARGV: delta. Django's ``incr()`` (``RedisClusterCache``): INCRBY only if the key
#: exists, in one step (its TTL kept); nil for a missing key, which stays missing.
INCR_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"""

#: Script name -> Lua source (each with the shared helpers in front).
SOURCES: Final[dict[str, str]] = {
    name: (SET_PLAIN if name == "set" else "") + _PRELUDE + body
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
    }.items()
}
