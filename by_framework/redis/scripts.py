"""Lua scripts: every state transition of an execution record is one atomic script.

Records live in the session's registry hash: field ``<message_id>`` holds the record's metadata
as JSON (only ours, so cjson's round trip is safe), field ``<message_id>:r`` holds the envelope of
the run's result event, untouched by Lua (cjson would turn an empty list into ``{}``).
"""

from dataclasses import dataclass
from hashlib import sha1


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str

    @property
    def sha(self) -> str:
        return sha1(self.source.encode()).hexdigest()


# Shared Lua helpers, prepended to the scripts that use them.
_HELPERS = """
local function append_events(stream, maxlen, ttl, ...)
  for _, envelope in ipairs({...}) do
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', envelope)
  end
  redis.call('EXPIRE', stream, ttl)
end
local function set_status(rec, status, now)
  rec.status = status
  rec.updated_at = now
  table.insert(rec.timeline, {status, now})
end
"""

# KEYS: agent-type worker set, session registry, task index, control stream
# ARGV: online-key prefix, target worker id or "", message id, record JSON, envelope, record TTL,
#       session id, signature or ""
# Returns the stream entry id; 0 when no worker is online; -1 when the message id is taken.
ENQUEUE = Script(
    "enqueue",
    """
local target = ARGV[2]
if target ~= '' then
  if redis.call('EXISTS', ARGV[1] .. target) == 0 then return 0 end
else
  local online = false
  for _, worker in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    if redis.call('EXISTS', ARGV[1] .. worker) == 1 then online = true; break end
  end
  if not online then return 0 end
end
if redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4]) == 0 then return -1 end
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('SET', KEYS[3], ARGV[7], 'EX', ARGV[6])
if ARGV[8] ~= '' then return redis.call('XADD', KEYS[4], '*', 'e', ARGV[5], 's', ARGV[8]) end
return redis.call('XADD', KEYS[4], '*', 'e', ARGV[5])
""",
)

# KEYS: session registry, session data stream
# ARGV: message id, worker id, now, record TTL, record JSON to use when none exists (or "": then
#       a missing record answers "missing" and the caller calls again with one),
#       RUNNING state-event envelope, data MAXLEN, data TTL, stream entry id, online-key prefix,
#       max deliveries
# Returns "run", "missing", "skip:<why>" (ack it), "busy:<holder>" (the holder is alive: give the
# entry back to it) or "exhausted:<runs>" (dead-letter it).
# A RUNNING record runs again only from the very entry it ran from, and only when that entry was
# redelivered to the same worker id (its restart) or its holder's lease lapsed (reclaimed). Any
# other entry of a running message is a duplicate.
BEGIN = Script(
    "begin",
    _HELPERS
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw and ARGV[5] == '' then return 'missing' end
local rec = cjson.decode(raw or ARGV[5])
local now = tonumber(ARGV[3])
if rec.status == 'running' then
  if rec.entry_id ~= ARGV[9] then return 'skip:duplicate of a running entry' end
  if rec.worker_id ~= ARGV[2] and redis.call('EXISTS', ARGV[10] .. rec.worker_id) == 1 then
    return 'busy:' .. rec.worker_id
  end
elseif rec.status ~= 'queued' then
  return 'skip:' .. rec.status
end
if (rec.delivery_count or 0) >= tonumber(ARGV[11]) then
  return 'exhausted:' .. rec.delivery_count
end
rec.worker_id = ARGV[2]
rec.entry_id = ARGV[9]
rec.started_at = now
rec.delivery_count = (rec.delivery_count or 0) + 1
set_status(rec, 'running', now)
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
if not raw then redis.call('EXPIRE', KEYS[1], ARGV[4]) end  -- else enqueue set the TTL
append_events(KEYS[2], ARGV[7], ARGV[8], ARGV[6])
return 'run'
""",
)

# KEYS: session registry, session data stream, control stream, task index
# ARGV: message id, worker id, now, status, error or "", result-event envelope (also kept in the
#       record's result field), end-event envelope, record TTL, data MAXLEN, data TTL,
#       consumer group, entry id
# Records the outcome, writes the final events and acknowledges the entry, all at once.
# Returns "ok", or "stale" when another worker holds the record now (nothing is written).
FINISH = Script(
    "finish",
    _HELPERS
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 'stale' end
local rec = cjson.decode(raw)
if rec.status ~= 'running' or rec.worker_id ~= ARGV[2] then return 'stale' end
local now = tonumber(ARGV[3])
rec.finished_at = now
rec.error = ARGV[5]
set_status(rec, ARGV[4], now)
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec), ARGV[1] .. ':r', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('EXPIRE', KEYS[4], ARGV[8])
append_events(KEYS[2], ARGV[9], ARGV[10], ARGV[6], ARGV[7])
redis.call('XACK', KEYS[3], ARGV[11], ARGV[12])
return 'ok'
""",
)

# KEYS: session registry, control stream
# ARGV: message id, worker id, now, consumer group, entry id, envelope, signature or ""
# Hands an entry back to the queue (graceful shutdown): the record returns to QUEUED if this
# worker held it, a fresh copy of the entry goes to the stream's end, and the old one is acked.
HAND_BACK = Script(
    "hand_back",
    _HELPERS
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
  local rec = cjson.decode(raw)
  if rec.status == 'running' and rec.worker_id == ARGV[2] then
    rec.worker_id = ''
    -- an interrupted run is not a failed delivery: max_deliveries counts crashes only
    rec.delivery_count = math.max(0, (rec.delivery_count or 1) - 1)
    set_status(rec, 'queued', tonumber(ARGV[3]))
    redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
  end
end
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[2], '*', 'e', ARGV[6], 's', ARGV[7])
else
  redis.call('XADD', KEYS[2], '*', 'e', ARGV[6])
end
redis.call('XACK', KEYS[2], ARGV[4], ARGV[5])
return 'ok'
""",
)

# KEYS: session registry, session data stream, control stream, dead-letter stream
# ARGV: message id, now, error, result-event envelope, end-event envelope, record TTL, data MAXLEN,
#       data TTL, consumer group, entry id, dead-letter MAXLEN, the entry's envelope, its
#       signature or ""
# Gives up on a command that used up its deliveries: its task ends FAILED (unless it already
# ended), the entry goes to the dead-letter stream with the reason, and is acknowledged.
GIVE_UP = Script(
    "give_up",
    _HELPERS
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
  local rec = cjson.decode(raw)
  if rec.status ~= 'completed' and rec.status ~= 'failed' and rec.status ~= 'cancelled' then
    local now = tonumber(ARGV[2])
    rec.error = ARGV[3]
    rec.finished_at = now
    set_status(rec, 'failed', now)
    redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec), ARGV[1] .. ':r', ARGV[4])
    redis.call('EXPIRE', KEYS[1], ARGV[6])
    append_events(KEYS[2], ARGV[7], ARGV[8], ARGV[4], ARGV[5])
  end
end
local dead = {'reason', ARGV[3], 'stream', KEYS[3], 'entry_id', ARGV[10], 'at', ARGV[2],
  'field:e', ARGV[12]}
if ARGV[13] ~= '' then table.insert(dead, 'field:s'); table.insert(dead, ARGV[13]) end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[11], '*', unpack(dead))
redis.call('XACK', KEYS[3], ARGV[9], ARGV[10])
return 'ok'
""",
)

# KEYS: control stream
# ARGV: consumer group, consumer, entry ids this consumer has in flight
# The lease: resets the idle time of those entries still owned by this consumer (never taking
# one that another consumer reclaimed meanwhile). Returns how many it renewed.
RENEW = Script(
    "renew",
    """
local renewed = 0
for i = 3, #ARGV do
  local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if owned[1] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
""",
)

# KEYS: control stream
# Trims the entries every consumer group is done with: older than each group's oldest pending
# entry and not after its last delivered one. A stream with no group yet keeps everything (its
# commands wait for their first worker). Returns how many entries went.
TRIM_CONSUMED = Script(
    "trim_consumed",
    """
local function older(a, b)
  local a_ms, a_seq = string.match(a, '(%d+)-(%d+)')
  local b_ms, b_seq = string.match(b, '(%d+)-(%d+)')
  a_ms, b_ms = tonumber(a_ms), tonumber(b_ms)
  return a_ms < b_ms or (a_ms == b_ms and tonumber(a_seq) < tonumber(b_seq))
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local floor = nil
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local keep_from = info['last-delivered-id']
  if info['pending'] > 0 then
    keep_from = redis.call('XPENDING', KEYS[1], info['name'])[2]
  end
  if floor == nil or older(keep_from, floor) then floor = keep_from end
end
if floor == nil or floor == '0-0' then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', floor)
""",
)

# KEYS: worker lock, worker online key, worker -> agent types set, agent type -> workers sets...
# ARGV: lock token, TTL seconds, worker id, membership retention seconds
# Renews the heartbeat only while this process still holds the worker-id lock, and keeps its
# membership (re-added if a sweep pruned it during an outage; the sets expire when nobody renews).
HEARTBEAT = Script(
    "heartbeat",
    """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[4])
for i = 4, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[3])
  redis.call('EXPIRE', KEYS[i], ARGV[4])
end
return 1
""",
)

# KEYS: agent type -> workers set
# ARGV: online-key prefix
# Drops the members that are not online (crashed workers). Returns how many went.
PRUNE_MEMBERS = Script(
    "prune_members",
    """
local pruned = 0
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. worker) == 0 then
    redis.call('SREM', KEYS[1], worker)
    pruned = pruned + 1
  end
end
return pruned
""",
)

# KEYS: worker lock
# ARGV: lock token
RELEASE_LOCK = Script(
    "release_lock",
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""",
)

ALL_SCRIPTS = (
    ENQUEUE,
    BEGIN,
    FINISH,
    HAND_BACK,
    GIVE_UP,
    RENEW,
    TRIM_CONSUMED,
    HEARTBEAT,
    PRUNE_MEMBERS,
    RELEASE_LOCK,
)
