"""The Lua that makes each session write one atomic, single-slot round trip.

Session scripts take the seven keys of :class:`ailib_store_redis.keys.SessionKeys` as ``KEYS``
and, first in ``ARGV``, the namespace's index prefix. On a single server the prefix is given
and the script updates the listing index in the same call; on a cluster it is ``''`` (the
index lives in another slot) and the script returns what the caller then passes to
``INDEX_TOUCH``. Every write takes an op id and remembers its result, so that a call resent
after a lost reply returns the first result instead of writing twice.

Times travel as the decimal text Python wrote and are stored as is: Lua's own number
formatting keeps only 14 digits. Only the sources live here; ``evalsha`` sends them (a bare
``EVALSHA``, loaded on ``NOSCRIPT``).

A write that succeeds replies with its result (a version or checkpoint number) as an integer,
or on a cluster ``{'ok', result, user_id json, expires_at}`` for the index update. Refusals
are ``{status, ...}``: ``missing`` (absent or expired), ``conflict`` (with the stored version,
if any) or ``nocp`` (no such checkpoint). Small integer replies keep the client's parsing cost
down on the hot path.

Reads are MULTI/EXEC pipelines on a single server. On a cluster they are the read-only
``FETCH`` and ``FETCH_CHECKPOINTS`` scripts instead: redis-py's asyncio cluster client has no
native MULTI/EXEC (it queues each command of a transaction through a thread and an event loop
of its own), and one design for both stores means the sync cluster store reads the same way.
"""

from __future__ import annotations

from typing import Final

__all__ = (
    "APPEND",
    "APPLY",
    "BY_NAME",
    "CHECKPOINT",
    "CHECKPOINT_STATE",
    "CREATE",
    "DELETE",
    "FETCH",
    "FETCH_CHECKPOINTS",
    "INDEX_DROP_EXPIRED",
    "INDEX_TOUCH",
    "LIST_PAGE",
    "OPS_KEPT",
    "POP",
    "PURGE_SESSION",
    "REPLACE",
    "RESTORE",
    "TRIM_EVERY",
)

#: How many recent op ids a session remembers for retries.
OPS_KEPT: Final = 256
#: Old op ids are forgotten every this many versions: a trim reads the whole op-id hash (up
#: to ``OPS_KEPT + TRIM_EVERY`` records), so a rarer trim costs each write less.
TRIM_EVERY: Final = 128

_INDEX = """
-- `old` is the user the index holds for the session: nil to look it up (in `own`, which
-- maps session -> user for the sessions that have one).
local function index_touch(prefix, sid, updated, user, exp, old)
  local own = prefix .. 'own'
  local lookup = old == nil
  if lookup then old = redis.call('HGET', own, sid) or '' end
  if old ~= user then
    if old ~= '' then redis.call('ZREM', prefix .. 'user:' .. old, sid) end
    if user ~= '' then redis.call('HSET', own, sid, user) else redis.call('HDEL', own, sid) end
  end
  if user ~= '' then redis.call('ZADD', prefix .. 'user:' .. user, 'GT', updated, sid) end
  redis.call('ZADD', prefix .. 'idx', 'GT', updated, sid)
  if exp ~= '' then
    redis.call('ZADD', prefix .. 'exp', exp, sid)
  elseif lookup then
    redis.call('ZREM', prefix .. 'exp', sid)
  end
end

local function index_drop(prefix, sid)
  local own = prefix .. 'own'
  local old = redis.call('HGET', own, sid)
  if old then
    redis.call('ZREM', prefix .. 'user:' .. old, sid)
    redis.call('HDEL', own, sid)
  end
  redis.call('ZREM', prefix .. 'exp', sid)
  return redis.call('ZREM', prefix .. 'idx', sid)
end
"""

_SESSION = (
    f"local OPS_KEPT, TRIM_EVERY = {OPS_KEPT}, {TRIM_EVERY}\n"
    + """
local META, LOG, CP, CPP = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local SNAP, OPS, OPQ = KEYS[5], KEYS[6], KEYS[7]
local PREFIX, OPID, NOW = ARGV[1], ARGV[2], ARGV[3]

-- RPUSH list[first..last] in chunks; the list's length after (nil if nothing was pushed).
local function push(key, list, first, last)
  local i, n = first, nil
  while i <= last do
    local j = math.min(i + 999, last)
    n = redis.call('RPUSH', key, unpack(list, i, j))
    i = j + 1
  end
  return n
end

-- {version, expires_at, ttl, user_id json, message count, last checkpoint number} of the
-- live session, or nil. The count (`l`) is absent in sessions written before it was kept.
local function live()
  local f = redis.call('HMGET', META, 'v', 'e', 't', 'm:user_id', 'l', 'n')
  if not f[1] then return nil end
  if f[2] and tonumber(f[2]) <= tonumber(NOW) then return nil end
  return f
end

-- An op id's record in OPS is `version` (the result is the version) or `version:result`,
-- so old op ids can be forgotten by version. Sessions written before kept the bare result
-- (and a list OPQ of the ids): read as such, forgotten at the next trim.
local function result_of(done)
  return string.match(done, '^%d+:(.*)$') or done
end

local function replay()
  local done = OPID ~= '' and redis.call('HGET', OPS, OPID)
  if not done then return nil end
  local result = tonumber(result_of(done))
  if PREFIX ~= '' then return result end
  local f = redis.call('HMGET', META, 'm:user_id', 'e')
  return {'ok', result, f[1] or '', f[2] or ''}
end

local function remember(version, result)
  if OPID == '' then return end
  if result == nil then
    redis.call('HSET', OPS, OPID, version)
  else
    redis.call('HSET', OPS, OPID, version .. ':' .. result)
  end
end

-- Each write makes one version and records at most one op id, so keeping the op ids of the
-- last OPS_KEPT versions keeps at least the last OPS_KEPT op ids. Trimmed every TRIM_EVERY
-- versions.
local function forget(version)
  if version % TRIM_EVERY ~= 0 then return end
  local all = redis.call('HGETALL', OPS)
  local cutoff = version - OPS_KEPT
  local old = {}
  for i = 1, #all, 2 do
    if (tonumber(string.match(all[i + 1], '^(%d+)')) or 0) <= cutoff then
      old[#old + 1] = all[i]
    end
  end
  for i = 1, #old, 1000 do
    redis.call('HDEL', OPS, unpack(old, i, math.min(i + 999, #old)))
  end
  redis.call('DEL', OPQ)
end

-- Keys created by a write that does not refresh the TTL get the session's remaining one.
local function align_ttl()
  local ms = redis.call('PTTL', META)
  if ms > 0 then
    for i = 2, #KEYS do redis.call('PEXPIRE', KEYS[i], ms) end
  end
end

-- A rewrite refuses a log whose length is not the stored count (a message was removed or
-- added behind the store's back): rewriting it would hide the damage. nil when they agree.
local function damaged(f)
  if not f or not f[5] then return nil end
  local n = redis.call('LLEN', LOG)
  if n ~= tonumber(f[5]) then return {'corrupt', tonumber(f[5]), n} end
  return nil
end

-- End a write: bump the version, stamp the time and the message count (`count`, nil: the
-- log's length), give the session's keys the full TTL again, and (single server) move the
-- session in the index. `f` is what live() read before the write (nil for a new session);
-- `changed` tells whether the metadata changed; `memo` is what a resent call gets back
-- (default: the new version); `recorded`: the op id is already recorded. Returns version,
-- user, expiry.
local function commit(f, ttl, changed, memo, count, recorded)
  local version = f and tonumber(f[1]) + 1 or 1
  if not recorded then remember(version, memo) end
  forget(version)
  count = count or redis.call('LLEN', LOG)
  local exp = ''
  if ttl then
    local secs = tonumber(ttl)
    exp = string.format('%.17g', tonumber(NOW) + secs)
    redis.call('HSET', META, 'v', version, 'u', NOW, 'l', count, 'e', exp)
    local ms = math.max(1, math.ceil(secs * 1000))
    -- The checkpoint keys exist only once a checkpoint was taken (`n` > 0); the old op-id
    -- list (KEYS[7]) is no longer written.
    local last = (f and f[6] == '0') and 3 or 6
    redis.call('PEXPIRE', META, ms)
    redis.call('PEXPIRE', LOG, ms)
    redis.call('PEXPIRE', OPS, ms)
    if last == 6 then
      redis.call('PEXPIRE', CP, ms)
      redis.call('PEXPIRE', CPP, ms)
      redis.call('PEXPIRE', SNAP, ms)
    end
  else
    redis.call('HSET', META, 'v', version, 'u', NOW, 'l', count)
  end
  local old = f and (f[4] or '') or nil
  local user = old
  if changed then user = redis.call('HGET', META, 'm:user_id') or '' end
  if PREFIX ~= '' then index_touch(PREFIX, ARGV[4], NOW, user, exp, old) end
  return version, user, exp
end

local function finish(f, ttl, changed, count, recorded)
  local version, user, exp = commit(f, ttl, changed, nil, count, recorded)
  if PREFIX ~= '' then return version end
  return {'ok', version, user, exp}
end

local function clear_metadata()
  for _, name in ipairs(redis.call('HKEYS', META)) do
    if string.sub(name, 1, 2) == 'm:' then redis.call('HDEL', META, name) end
  end
end

-- ARGV[at] holds 2n, then n (key, value-json) pairs; returns the index after them.
local function set_metadata(at)
  local n = tonumber(ARGV[at])
  for i = at + 1, at + n, 2 do
    redis.call('HSET', META, 'm:' .. ARGV[i], ARGV[i + 1])
  end
  return at + n + 1
end

local function metadata_json()
  local parts = {}
  local all = redis.call('HGETALL', META)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'm:' then
      parts[#parts + 1] = cjson.encode(string.sub(all[i], 3))
      parts[#parts + 1] = cjson.encode(all[i + 1])
    end
  end
  return '[' .. table.concat(parts, ',') .. ']'
end

local function add_checkpoint(label)
  local n = redis.call('HINCRBY', META, 'n', 1)
  redis.call('HSET', CPP, n, redis.call('LLEN', LOG))
  redis.call('HSET', CP, n, '[' .. NOW .. ',' .. label .. ',' .. metadata_json() .. ']')
  return n
end

-- Copy-on-write: before the log keeps only its first `keep` messages, every pointer
-- checkpoint reaching past them gets its messages copied (once, shared) into SNAP.
local function materialize(keep)
  local pointers = redis.call('HGETALL', CPP)
  local broken, widest = {}, 0
  for i = 1, #pointers, 2 do
    local p = pointers[i + 1]
    if not string.find(p, '@', 1, true) then
      local count = tonumber(p)
      if count > keep then
        broken[#broken + 1] = pointers[i]
        broken[#broken + 1] = p
        if count > widest then widest = count end
      end
    end
  end
  if widest == 0 then return end
  local offset = redis.call('LLEN', SNAP)
  local i = 0
  while i < widest do
    local j = math.min(i + 999, widest - 1)
    redis.call('RPUSH', SNAP, unpack(redis.call('LRANGE', LOG, i, j)))
    i = j + 1
  end
  for k = 1, #broken, 2 do
    redis.call('HSET', CPP, broken[k], broken[k + 1] .. '@' .. offset .. '@' .. broken[k + 1])
  end
end

-- Keep the first `keep` messages of the log, then append list[first..last].
local function rewrite_log(keep, list, first, last)
  if keep == 0 then
    redis.call('DEL', LOG)
  else
    redis.call('LTRIM', LOG, 0, keep - 1)
  end
  push(LOG, list, first, last)
end

local function common_prefix(old, new, first)
  local n = 0
  while n < #old and first + n <= #new and old[n + 1] == new[first + n] do n = n + 1 end
  return n
end
"""
)


def _session_script(body: str) -> str:
    return _INDEX + _SESSION + body


#: ARGV: prefix, opid, now, sid, kind, created_at, ttl|'', last checkpoint number,
#: 2m + m metadata pairs, c + c checkpoints as (number, pointer, info), s + s snapshot
#: messages, then the messages.
CREATE: Final = _session_script("""
local done = replay()
if done then return done end
if live() then return {'conflict'} end
redis.call('DEL', unpack(KEYS))
local ttl = ARGV[7] ~= '' and ARGV[7] or nil
local fields = {'k', ARGV[5], 'c', ARGV[6], 'n', ARGV[8]}
if ttl then fields[#fields + 1] = 't'; fields[#fields + 1] = ttl end
redis.call('HSET', META, unpack(fields))
local at = set_metadata(9)
local c = tonumber(ARGV[at])
for i = at + 1, at + 3 * c, 3 do
  redis.call('HSET', CPP, ARGV[i], ARGV[i + 1])
  redis.call('HSET', CP, ARGV[i], ARGV[i + 2])
end
at = at + 3 * c + 1
local s = tonumber(ARGV[at])
push(SNAP, ARGV, at + 1, at + s)
push(LOG, ARGV, at + s + 1, #ARGV)
return finish(nil, ttl, true)
""")

#: ARGV: prefix, opid, now, sid, expected version|'', replace metadata 0|1, new ttl|'',
#: 2m + m metadata pairs, u + u keys to unset, then the messages to append.
APPLY: Final = _session_script("""
local f = live()
if not f then return replay() or {'missing'} end
-- Recording the op id is also its check: HSETNX fails for an op id applied before.
if OPID ~= '' and redis.call('HSETNX', OPS, OPID, tonumber(f[1]) + 1) == 0 then
  return replay()
end
if ARGV[5] ~= '' and f[1] ~= ARGV[5] then
  if OPID ~= '' then redis.call('HDEL', OPS, OPID) end
  return {'conflict', tonumber(f[1])}
end
if ARGV[6] == '1' then clear_metadata() end
local ttl = f[3]
if ARGV[7] ~= '' then
  ttl = ARGV[7]
  redis.call('HSET', META, 't', ttl)
end
-- As Change.apply_metadata: drop the unset keys, then set (so a key in both ends up set).
local at = 8 + tonumber(ARGV[8]) + 1
local u = tonumber(ARGV[at])
for i = at + 1, at + u do redis.call('HDEL', META, 'm:' .. ARGV[i]) end
set_metadata(8)
local changed = ARGV[6] == '1' or ARGV[8] ~= '0' or u > 0
at = at + u + 1
-- The count moves by what was appended, so damage done before stays visible to loads.
local count = f[5] and tonumber(f[5]) + #ARGV - at + 1 or nil
local n = push(LOG, ARGV, at, #ARGV)
return finish(f, ttl, changed, count or n, true)
""")

#: The hot path: messages appended, nothing else changed. APPLY's work and replies, written
#: out without the shared helpers (defining them costs the server more than the append).
#: KEYS: meta alone (fewer arguments to pack and parse): the session's other keys and its id
#: are read from its name, ``ailib:{ns:id}:meta``, and are in its slot. ARGV: prefix, opid,
#: now, expected version|'', then the messages.
APPEND: Final = (
    f"local OPS_KEPT, TRIM_EVERY = {OPS_KEPT}, {TRIM_EVERY}\n"
    + """
local META = KEYS[1]
local base = string.sub(META, 1, -5)
local LOG, OPS = base .. 'log', base .. 'ops'
local PREFIX, OPID, NOW = ARGV[1], ARGV[2], ARGV[3]
local f = redis.call('HMGET', META, 'v', 'e', 't', 'm:user_id', 'l', 'n')
local version = f[1] and tonumber(f[1]) + 1
if not version or (f[2] and tonumber(f[2]) <= tonumber(NOW)) or
    redis.call('HSETNX', OPS, OPID, version) == 0 then
  -- Absent, or an op id applied before: its first result, if it is remembered.
  local done = redis.call('HGET', OPS, OPID)
  if not done then return {'missing'} end
  local result = tonumber(string.match(done, '^%d+:(.*)$') or done)
  if PREFIX ~= '' then return result end
  local g = redis.call('HMGET', META, 'm:user_id', 'e')
  return {'ok', result, g[1] or '', g[2] or ''}
end
if ARGV[4] ~= '' and f[1] ~= ARGV[4] then
  redis.call('HDEL', OPS, OPID)
  return {'conflict', tonumber(f[1])}
end
local count
for i = 5, #ARGV, 1000 do
  count = redis.call('RPUSH', LOG, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if f[5] then count = tonumber(f[5]) + #ARGV - 4 end
if version % TRIM_EVERY == 0 then
  local all = redis.call('HGETALL', OPS)
  local old = {}
  for i = 1, #all, 2 do
    if (tonumber(string.match(all[i + 1], '^(%d+)')) or 0) <= version - OPS_KEPT then
      old[#old + 1] = all[i]
    end
  end
  for i = 1, #old, 1000 do
    redis.call('HDEL', OPS, unpack(old, i, math.min(i + 999, #old)))
  end
  redis.call('DEL', base .. 'opq')
end
local exp = ''
if f[3] then
  local secs = tonumber(f[3])
  exp = string.format('%.17g', tonumber(NOW) + secs)
  redis.call('HSET', META, 'v', version, 'u', NOW, 'l', count, 'e', exp)
  local ms = math.max(1, math.ceil(secs * 1000))
  redis.call('PEXPIRE', META, ms)
  redis.call('PEXPIRE', LOG, ms)
  redis.call('PEXPIRE', OPS, ms)
  if f[6] ~= '0' then
    redis.call('PEXPIRE', base .. 'cp', ms)
    redis.call('PEXPIRE', base .. 'cpp', ms)
    redis.call('PEXPIRE', base .. 'snap', ms)
  end
else
  redis.call('HSET', META, 'v', version, 'u', NOW, 'l', count)
end
if PREFIX == '' then return {'ok', version, f[4] or '', exp} end
-- The id: what follows `ailib:{ns:` (as long as PREFIX, `ailib:{ns}:`, less one).
local SID = string.sub(META, #PREFIX, -7)
if f[4] then redis.call('ZADD', PREFIX .. 'user:' .. f[4], 'GT', NOW, SID) end
redis.call('ZADD', PREFIX .. 'idx', 'GT', NOW, SID)
if exp ~= '' then redis.call('ZADD', PREFIX .. 'exp', exp, SID) end
return version
"""
)

#: ARGV: prefix, opid, now, sid, expected version, ttl|'' (keep), 2m + m metadata pairs,
#: then the whole new history.
REPLACE: Final = _session_script("""
local done = replay()
if done then return done end
local f = live()
if not f then return {'missing'} end
if f[1] ~= ARGV[5] then return {'conflict', tonumber(f[1])} end
local bad = damaged(f)
if bad then return bad end
local ttl = f[3]
if ARGV[6] ~= '' then
  ttl = ARGV[6]
  redis.call('HSET', META, 't', ttl)
end
clear_metadata()
local first = set_metadata(7)
local keep = common_prefix(redis.call('LRANGE', LOG, 0, -1), ARGV, first)
materialize(keep)
rewrite_log(keep, ARGV, first + keep, #ARGV)
return finish(f, ttl, true)
""")

#: ARGV: prefix, opid, now, sid, label (JSON).
CHECKPOINT: Final = _session_script("""
local done = replay()
if done then return done end
if not live() then return {'missing'} end
local n = add_checkpoint(ARGV[5])
local version = redis.call('HINCRBY', META, 'v', 1)
remember(version, n)
forget(version)
align_ttl()
return n
""")

#: ARGV: prefix, opid, now, sid, count. Removes the last ``count`` messages (copying what
#: checkpoints need first). Reply: ``{'popped', JSON array of them, user json, expires}``;
#: a resent call gets the same array back (it is the op's remembered result).
POP: Final = _session_script("""
local done = OPID ~= '' and redis.call('HGET', OPS, OPID)
if done then
  local g = redis.call('HMGET', META, 'm:user_id', 'e')
  return {'popped', result_of(done), g[1] or '', g[2] or ''}
end
local f = live()
if not f then return {'missing'} end
local bad = damaged(f)
if bad then return bad end
local n = redis.call('LLEN', LOG)
if n == 0 then return {'popped', '[]', f[4] or '', f[2] or ''} end
local keep = math.max(0, n - tonumber(ARGV[5]))
local removed = '[' .. table.concat(redis.call('LRANGE', LOG, keep, -1), ',') .. ']'
materialize(keep)
rewrite_log(keep, {}, 1, 0)
local _, user, exp = commit(f, f[3], false, removed, keep)
return {'popped', removed, user, exp}
""")

#: ARGV: prefix, opid, now, sid, checkpoint number, label of the checkpoint of the current
#: state (JSON).
RESTORE: Final = _session_script("""
local done = replay()
if done then return done end
local f = live()
if not f then return {'missing'} end
local target = ARGV[5]
local pointer = redis.call('HGET', CPP, target)
if not pointer then return {'nocp'} end
local bad = damaged(f)
if bad then return bad end
local saved = cjson.decode(redis.call('HGET', CP, target))[3]
add_checkpoint(ARGV[6])
local count, offset, length = string.match(pointer, '^(%d+)@(%d+)@(%d+)$')
if count then
  offset, length = tonumber(offset), tonumber(length)
  local messages = {}
  if length > 0 then messages = redis.call('LRANGE', SNAP, offset, offset + length - 1) end
  local keep = common_prefix(redis.call('LRANGE', LOG, 0, length - 1), messages, 1)
  materialize(keep)
  rewrite_log(keep, messages, keep + 1, #messages)
else
  local keep = tonumber(pointer)
  materialize(keep)
  rewrite_log(keep, {}, 1, 0)
end
clear_metadata()
for i = 1, #saved, 2 do redis.call('HSET', META, 'm:' .. saved[i], saved[i + 1]) end
return finish(f, f[3], true)
""")

#: ARGV: prefix, '', now, sid. Reply: 1 if a live session was deleted, else 0.
DELETE: Final = _session_script("""
local existed = live() and 1 or 0
redis.call('DEL', unpack(KEYS))
if PREFIX ~= '' then index_drop(PREFIX, ARGV[4]) end
return existed
""")

#: ARGV: '', '', now, sid. Deletes the session if it expired; 1 if it is gone now.
PURGE_SESSION: Final = _session_script("""
local e = redis.call('HGET', META, 'e')
if redis.call('EXISTS', META) == 0 then return 1 end
if e and tonumber(e) <= tonumber(NOW) then
  redis.call('DEL', unpack(KEYS))
  return 1
end
return 0
""")

#: ARGV: '', '', now, sid, checkpoint number. Reply: {'ok', info, messages...}.
CHECKPOINT_STATE: Final = _session_script("""
if not live() then return {'missing'} end
local pointer = redis.call('HGET', CPP, ARGV[5])
if not pointer then return {'nocp'} end
local reply = {'ok', redis.call('HGET', CP, ARGV[5])}
local count, offset, length = string.match(pointer, '^(%d+)@(%d+)@(%d+)$')
local messages
if count then
  offset, length = tonumber(offset), tonumber(length)
  messages = length > 0 and redis.call('LRANGE', SNAP, offset, offset + length - 1) or {}
else
  count = tonumber(pointer)
  messages = count > 0 and redis.call('LRANGE', LOG, 0, count - 1) or {}
end
for _, m in ipairs(messages) do reply[#reply + 1] = m end
return reply
""")

#: KEYS: the namespace's updated index. ARGV: prefix, sid, updated_at, user json|'', expires|''.
INDEX_TOUCH: Final = (
    _INDEX
    + """
index_touch(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], nil)
return 1
"""
)

#: KEYS: the namespace's updated index. ARGV: prefix, sid, now|''. Drops the session from the
#: index (with ``now``: only if its expiry in the index has passed); 1 if it was listed.
INDEX_DROP_EXPIRED: Final = (
    _INDEX
    + """
if ARGV[3] ~= '' then
  local exp = redis.call('ZSCORE', ARGV[1] .. 'exp', ARGV[2])
  if exp and tonumber(exp) > tonumber(ARGV[3]) then return 0 end
end
return index_drop(ARGV[1], ARGV[2])
"""
)

#: KEYS: meta, log. ARGV: '' (the whole log) or how many last messages. Reply: what the
#: single-server MULTI read gets, the hash flat: {meta pairs, messages} for the whole log,
#: else {meta pairs, [last messages,] message count}.
FETCH: Final = """
local meta = redis.call('HGETALL', KEYS[1])
if ARGV[1] == '' then return {meta, redis.call('LRANGE', KEYS[2], 0, -1)} end
local last = tonumber(ARGV[1])
local count = redis.call('LLEN', KEYS[2])
if last > 0 then return {meta, redis.call('LRANGE', KEYS[2], -last, -1), count} end
return {meta, count}
"""

#: KEYS: a listing index (single server only: it reads the sessions' keys, which are not in
#: KEYS, as Redis allows outside a cluster). ARGV: top score, offset, count, session key
#: prefix ``ailib:{ns:``. Reply: one JSON text, ``[[id, score, [meta pairs], count], ...]``,
#: a whole page in one round trip and one parse (``[]``: an empty table is ``{}`` in cjson).
LIST_PAGE: Final = """
local entries = redis.call(
  'ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', ARGV[2], ARGV[3])
local page = {}
for i = 1, #entries, 2 do
  local base = ARGV[4] .. entries[i] .. '}:'
  page[#page + 1] = {
    entries[i], entries[i + 1], redis.call('HGETALL', base .. 'meta'),
    redis.call('LLEN', base .. 'log'),
  }
end
if #page == 0 then return '[]' end
return cjson.encode(page)
"""

#: KEYS: meta, cp, cpp. Reply: {{version, expires_at}, cp pairs, cpp pairs}.
FETCH_CHECKPOINTS: Final = """
return {
  redis.call('HMGET', KEYS[1], 'v', 'e'),
  redis.call('HGETALL', KEYS[2]),
  redis.call('HGETALL', KEYS[3]),
}
"""

#: Every script by the name the stores' programs call it by (``operations.Eval``).
BY_NAME: Final = {
    "create": CREATE,
    "apply": APPLY,
    "append": APPEND,
    "replace": REPLACE,
    "checkpoint": CHECKPOINT,
    "restore": RESTORE,
    "pop": POP,
    "delete": DELETE,
    "purge_session": PURGE_SESSION,
    "checkpoint_state": CHECKPOINT_STATE,
    "index_touch": INDEX_TOUCH,
    "index_drop": INDEX_DROP_EXPIRED,
    "fetch": FETCH,
    "fetch_checkpoints": FETCH_CHECKPOINTS,
    "list_page": LIST_PAGE,
}
