"""Lua scripts: every state transition of an execution record is one atomic script.

Every script touches the keys of one hash slot (``keys.py``): a session's, an agent type's
stream, or the registry. A step that changes keys of two slots (write the record, then deliver or
acknowledge the control entry) is two steps, ordered as docs/execution.md ("Atomic steps and
crashes") sets out.

Records live in the session's registry hash: field ``<message_id>`` holds the record's metadata
as JSON (only ours, so cjson's round trip is safe), field ``<message_id>:r`` holds the envelope of
the run's result event, untouched by Lua (cjson would turn an empty list into ``{}``).
"""

from dataclasses import dataclass, field
from hashlib import sha1
from typing import Any, Generic, NamedTuple, TypeVar

A = TypeVar("A", bound=tuple[Any, ...])


@dataclass(frozen=True, slots=True)
class Script(Generic[A]):
    """A Lua script and what it takes: ``args`` is a NamedTuple whose fields, in order, are the
    script's ``ARGV[1]``, ``ARGV[2]``, ... (``tail``: more values follow them, which the script
    reads as a list). Callers build the NamedTuple by field name; the type checker holds them to
    it, and tests/test_scripts.py holds the Lua to it (every field read, nothing past them)."""

    name: str
    args: type[A]
    source: str
    tail: bool = False
    sha: str = field(init=False)
    """Its SHA1, taken once: EVALSHA names the script three times per task."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", sha1(self.source.encode()).hexdigest())

    def argv(self, args: A, *tail: Any) -> list[Any]:
        """The ARGV list, for a caller that runs the script through redis-py's own script
        objects (the registry, the lease thread)."""
        return [*args, *tail]


class NoArgs(NamedTuple):
    """A script that takes no ARGV."""


# Shared Lua helpers, prepended to the scripts that use them.
_HELPERS = """
-- ttl > 0: the stream's TTL, set; ttl < 0: the writer set it lately (ttl_refreshes.py), so it
-- is set (to -ttl) only where this append creates the stream (deleted or expired meanwhile).
local function append_events(stream, maxlen, ttl, ...)
  local events = {...}
  ttl = tonumber(ttl)
  if ttl < 0 and #events > 0
      and redis.call('XADD', stream, 'NOMKSTREAM', 'MAXLEN', '~', maxlen, '*', 'e', events[1]) then
    for i = 2, #events do
      redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', events[i])
    end
    return
  end
  for _, envelope in ipairs(events) do
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', envelope)
  end
  redis.call('EXPIRE', stream, math.abs(ttl))
end
local function set_status(rec, status, now)
  rec.status = status
  rec.updated_at = now
  table.insert(rec.timeline, {status, now})
end
local function holds_run(status)
  return status == 'running' or status == 'waiting_reply'
end
-- A task reached a terminal state: count its group down, and name the parent to wake if the
-- parent waits for it (a group child: only the last one of its group). The wake-up (worker id,
-- then the child's or group's id) is appended to ``wakes``: the caller adds it to the notice
-- stream of that worker, another slot. A parent whose wake-up is lost re-reads the journal
-- on its periodic re-check; one whose worker died finds it when re-run.
local function notify_parent(registry, rec, group_prefix, wakes)
  local parent_id = rec.parent_message_id
  if parent_id == nil or parent_id == '' then return end
  local key = rec.message_id
  if rec.task_group_id ~= nil and rec.task_group_id ~= '' then
    local group = group_prefix .. rec.task_group_id
    if redis.call('EXISTS', group) == 0 then return end  -- expired: never recreate it
    if redis.call('HINCRBY', group, 'remaining', -1) > 0 then return end
    key = rec.task_group_id
  elseif not rec.reply then
    return
  end
  local raw = redis.call('HGET', registry, parent_id)
  if not raw then return end
  local parent = cjson.decode(raw)
  if holds_run(parent.status) and parent.worker_id ~= '' then
    table.insert(wakes, parent.worker_id)
    table.insert(wakes, key)
  end
end
"""


class OnlineArgs(NamedTuple):
    online_prefix: str  # 1: the prefix of the workers' online keys
    target_worker: str  # 2: the one worker the send targets, or ""


# KEYS: the agent types' worker sets (registry slot)
# The advisory online check before a send: 0 when the target worker is online (with a target),
# else when every set has an online member; otherwise the 1-based index of the first set
# without one (1 for an offline target).
ONLINE = Script(
    "online",
    OnlineArgs,
    """
if ARGV[2] ~= '' then
  return redis.call('EXISTS', ARGV[1] .. ARGV[2]) == 1 and 0 or 1
end
for i, members in ipairs(KEYS) do
  local online = false
  for _, worker in ipairs(redis.call('SMEMBERS', members)) do
    if redis.call('EXISTS', ARGV[1] .. worker) == 1 then online = true; break end
  end
  if not online then return i end
end
return 0
""",
)


class ClaimArgs(NamedTuple):
    message_id: str  # 1
    record: bytes  # 2: the QUEUED record's JSON, carrying the send id
    record_ttl: int  # 3
    send_id: str  # 4


# KEYS: session registry
# The first step of a send: the QUEUED record, written only if the message id is free. Returns
# "new" (written), "again" (this very send wrote it before and it was not delivered yet: a retry,
# deliver it again), "sent" (this send wrote it and it ran since: done) or "taken" (another
# command has that id: nothing is written, nothing may be sent).
CLAIM = Script(
    "claim",
    ClaimArgs,
    """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return 'new'
end
local rec = cjson.decode(redis.call('HGET', KEYS[1], ARGV[1]))
if rec.send_id ~= ARGV[4] then return 'taken' end
if rec.status == 'queued' and (rec.delivery_count or 0) == 0 then return 'again' end
return 'sent'
""",
)


class UnclaimArgs(NamedTuple):
    message_id: str  # 1
    send_id: str  # 2


# KEYS: session registry
# Takes back a record this send claimed and never delivered (no worker was online). Returns 1, or
# 0 when it is not that (nothing changes).
UNCLAIM = Script(
    "unclaim",
    UnclaimArgs,
    """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if rec.send_id ~= ARGV[2] or rec.status ~= 'queued' or (rec.delivery_count or 0) > 0 then
  return 0
end
return redis.call('HDEL', KEYS[1], ARGV[1])
""",
)


class BeginArgs(NamedTuple):
    message_id: str  # 1
    worker_id: str  # 2
    now: float  # 3
    record_ttl: int  # 4
    record: bytes | str  # 5: the record to use if none exists, or "" (a missing one: "missing")
    running_event: bytes  # 6: the RUNNING state event's envelope
    data_maxlen: int  # 7
    data_ttl: int  # 8
    entry_id: str  # 9: the stream entry it runs from
    offline_holder: str  # 10: the holder the caller found offline, or ""
    max_deliveries: int  # 11
    config_version: int  # 12: the plugin config version the run uses
    send_id: str  # 13: the send that wrote the command (its envelope's), or ""


# KEYS: session registry, session data stream
# Returns "run:<run number>", "cancel:<reason>" (a cancel came for it while its worker was down:
# this worker holds it now and ends it CANCELLED), "missing", "skip:<why>" (ack it: also a
# command of another send than the record's, delivered before its send learnt the id was taken),
# "held:<holder>" (another worker holds it: the caller checks that one is online, and calls again
# naming it if it is not) or "exhausted:<runs>" (dead-letter it). The run number counts resumes:
# sub-call ids are derived from it.
# A RUNNING record runs again only from the very entry it ran from, and only when that entry was
# redelivered to the same worker id (its restart) or its holder is offline (reclaimed). Any other
# entry of a running message is a duplicate.
BEGIN = Script(
    "begin",
    BeginArgs,
    _HELPERS
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw and ARGV[5] == '' then return 'missing' end
local rec = cjson.decode(raw or ARGV[5])
if ARGV[13] ~= '' and (rec.send_id or '') ~= '' and rec.send_id ~= ARGV[13] then
  return 'skip:another command has this message id'
end
local now = tonumber(ARGV[3])
if holds_run(rec.status) then
  if rec.entry_id ~= ARGV[9] then return 'skip:duplicate of a running entry' end
  if rec.worker_id ~= ARGV[2] and rec.worker_id ~= ARGV[10] then
    return 'held:' .. rec.worker_id
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
rec.config_version = tonumber(ARGV[12])
set_status(rec, 'running', now)
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
if not raw then redis.call('EXPIRE', KEYS[1], ARGV[4]) end  -- else the send set the TTL
append_events(KEYS[2], ARGV[7], ARGV[8], ARGV[6])
if rec.cancel ~= nil and rec.cancel ~= '' then return 'cancel:' .. rec.cancel end
return 'run:' .. (rec.run or 0)
""",
)


class FinishArgs(NamedTuple):
    """Then (the tail) the task's own events not yet written."""

    message_id: str  # 1
    worker_id: str  # 2
    now: float  # 3
    status: str  # 4
    error: str  # 5: or ""
    result_event: bytes  # 6: also kept in the record's result field
    end_event: bytes  # 7
    record_ttl: int  # 8
    data_maxlen: int  # 9
    data_ttl: int  # 10
    entry_id: str  # 11
    state_event: bytes | str  # 12: an extra state event written first, or ""
    group_prefix: str  # 13: the task-group key prefix


# KEYS: session registry, session data stream
# Records the outcome and writes the final events at once; a terminal outcome counts its group
# down. The caller acknowledges the entry after this (another slot), and wakes the parent named.
# The registry's TTL is refreshed only for a task sent more than a hundredth of record_ttl ago:
# a younger one's send set it (or a later send, a later end), so that retention still counts
# from the end within 1 % and most tasks spare the EXPIRE, the task index's included.
# Returns {"ok", "1" if the TTLs are to be refreshed else "0", worker id, child or group id, ...}
# (the wake-ups to send), {"ended"} (this run ended with this outcome before: a retry;
# acknowledge it) or {"stale"} (another worker or run holds the record now, or it ended
# otherwise: nothing is written and the entry is not this worker's to acknowledge).
FINISH = Script(
    "finish",
    FinishArgs,
    _HELPERS
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {'stale'} end
local rec = cjson.decode(raw)
if rec.worker_id ~= ARGV[2] or rec.entry_id ~= ARGV[11] then return {'stale'} end
if not holds_run(rec.status) then
  -- this run's outcome already recorded (a retry whose reply was lost), or another one (a cancel
  -- that found this worker offline): only the first is this worker's to acknowledge
  if rec.status == ARGV[4] and (rec.error or '') == ARGV[5] then return {'ended'} end
  return {'stale'}
end
local now = tonumber(ARGV[3])
rec.finished_at = now
if ARGV[5] ~= '' then rec.error = ARGV[5] else rec.error = nil end  -- none: left out
set_status(rec, ARGV[4], now)
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec), ARGV[1] .. ':r', ARGV[6])
local renew = now - (rec.created_at or 0) > tonumber(ARGV[8]) / 100
if renew then redis.call('EXPIRE', KEYS[1], ARGV[8]) end
local events = {unpack(ARGV, 14)}  -- the task's own events not yet written, first
if ARGV[12] ~= '' then events[#events + 1] = ARGV[12] end
events[#events + 1] = ARGV[6]
events[#events + 1] = ARGV[7]
append_events(KEYS[2], ARGV[9], ARGV[10], unpack(events))
local reply = {'ok', renew and '1' or '0'}
if ARGV[4] ~= 'waiting_user' then notify_parent(KEYS[1], rec, ARGV[13], reply) end
return reply
""",
    tail=True,
)


class ReleaseRunArgs(NamedTuple):
    message_id: str  # 1
    worker_id: str  # 2
    now: float  # 3
    crashed: str  # 4: "crashed" if the worker died running it, else ""


# KEYS: session registry
# The first step of a hand-back (graceful shutdown, eviction): the record returns to QUEUED if
# that worker holds it. The caller then re-adds the entry and acknowledges the old one
# (REQUEUE, the stream's slot). Returns 1, or 0 when the worker did not hold it.
RELEASE_RUN = Script(
    "release_run",
    ReleaseRunArgs,
    _HELPERS
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if not holds_run(rec.status) or rec.worker_id ~= ARGV[2] then return 0 end
rec.worker_id = ''
-- an interrupted run is not a failed delivery: max_deliveries counts crashes only
if ARGV[4] ~= 'crashed' then
  rec.delivery_count = math.max(0, (rec.delivery_count or 1) - 1)
end
set_status(rec, 'queued', tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
return 1
""",
)


class RequeueArgs(NamedTuple):
    group: str  # 1: the consumer group
    entry_id: str  # 2
    envelope: bytes  # 3
    signature: bytes | str  # 4: or ""


# KEYS: control stream
# Moves an entry to the stream's end: a fresh copy is added and the old one acknowledged, at
# once. Returns the copy's entry id.
REQUEUE = Script(
    "requeue",
    RequeueArgs,
    """
local new_id
if ARGV[4] ~= '' then
  new_id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[3], 's', ARGV[4])
else
  new_id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[3])
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return new_id
""",
)


class GiveUpArgs(NamedTuple):
    message_id: str  # 1
    now: float  # 2
    error: str  # 3
    result_event: bytes  # 4
    end_event: bytes  # 5
    record_ttl: int  # 6
    data_maxlen: int  # 7
    data_ttl: int  # 8
    group_prefix: str  # 9: the task-group key prefix


# KEYS: session registry, session data stream
# Gives up on a command that used up its deliveries: its task ends FAILED (unless it already
# ended). The caller writes the dead letter beside it and acknowledges the entry after it.
# Returns {"ok", worker id, child or group id, ...}: the wake-ups to send.
GIVE_UP = Script(
    "give_up",
    GiveUpArgs,
    _HELPERS
    + """
local reply = {'ok'}
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
    notify_parent(KEYS[1], rec, ARGV[9], reply)
  end
end
return reply
""",
)


class DispatchArgs(NamedTuple):
    """Then (the tail), per child: its message id, its record's JSON."""

    parent_id: str  # 1
    group_id: str  # 2: or ""
    group_children: str  # 3: the group's child ids as JSON, or ""
    record_ttl: int  # 4
    offline_child: (
        int  # 5: the 1-based index of a child whose agent type has no online worker, or 0
    )


# KEYS: session registry, the parent's children list, the group hash (the registry again when
#       there is no group)
# The first step of a dispatch: the children's records (the journal), children list and group,
# written once: if the first child's record exists they were written before (a re-run of the
# parent). The caller then sends the children named (their control streams are other slots).
# Returns "ok" (written: send them all), "exists:<indices>" (written before: send again those
# never delivered, comma-separated 1-based indices, maybe none: a sender that died between the
# steps is made good, and a duplicate is skipped by ``begin``), "diverged:<what was sent>" (the
# re-run made a different call under that number: user code is not deterministic),
# "offline:<child index>" (nothing written), "cancelled:<the cancel's reason>" or "stopped:<its
# status>" (the parent is cancelled, or no longer running: no new children).
DISPATCH = Script(
    "dispatch",
    DispatchArgs,
    _HELPERS
    + """
local parent_raw = redis.call('HGET', KEYS[1], ARGV[1])
if not parent_raw then return 'stopped:its record is gone' end
local n = (#ARGV - 5) / 2
local sent_raw = redis.call('HGET', KEYS[1], ARGV[6])
if sent_raw then
  local sent = cjson.decode(sent_raw)
  local sent_group = sent.task_group_id or ''
  local size = 1
  if sent_group ~= '' then
    size = #cjson.decode(redis.call('HGET', KEYS[3], 'children') or '[]')
  end
  local wanted = cjson.decode(ARGV[7])
  if sent.agent_type ~= wanted.agent_type or sent_group ~= ARGV[2] or size ~= n then
    return 'diverged:' .. (sent_group ~= '' and 'a group of ' .. size or 'a call') .. ' to '
      .. sent.agent_type
  end
  local again = {}
  for i = 1, n do
    local raw = redis.call('HGET', KEYS[1], ARGV[4 + i * 2])
    local child = raw and cjson.decode(raw)
    if child and child.status == 'queued' and (child.delivery_count or 0) == 0 then
      table.insert(again, i)
    end
  end
  return 'exists:' .. table.concat(again, ',')
end
local parent = cjson.decode(parent_raw)
if parent.cancel ~= nil and parent.cancel ~= '' then return 'cancelled:' .. parent.cancel end
if not holds_run(parent.status) then return 'stopped:' .. parent.status end
if ARGV[5] ~= '0' then return 'offline:' .. ARGV[5] end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[3], 'remaining', n, 'children', ARGV[3], 'parent', ARGV[1])
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
for i = 1, n do
  redis.call('HSET', KEYS[1], ARGV[4 + i * 2], ARGV[5 + i * 2])
  redis.call('RPUSH', KEYS[2], ARGV[4 + i * 2])
end
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 'ok'
""",
    tail=True,
)


class SetWaitingArgs(NamedTuple):
    message_id: str  # 1
    worker_id: str  # 2
    status: str  # 3: "waiting_reply" or "running"
    now: float  # 4
    state_event: bytes  # 5
    data_maxlen: int  # 6
    data_ttl: int  # 7


# KEYS: session registry, session data stream
# A running task starts or stops waiting for its sub-calls. Returns 1, or 0 when this worker
# does not hold the task (nothing written).
SET_WAITING = Script(
    "set_waiting",
    SetWaitingArgs,
    _HELPERS
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if not holds_run(rec.status) or rec.worker_id ~= ARGV[2] then return 0 end
if rec.status ~= ARGV[3] then
  set_status(rec, ARGV[3], tonumber(ARGV[4]))
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
end
append_events(KEYS[2], ARGV[6], ARGV[7], ARGV[5])
return 1
""",
)


class CancelTreeArgs(NamedTuple):
    roots: str  # 1: the root message ids as JSON
    reason: str  # 2
    now: float  # 3
    record_ttl: int  # 4
    data_maxlen: int  # 5
    data_ttl: int  # 6
    offline: str  # 7: the workers found offline (or that do not run their tasks) as JSON
    children_prefix: str  # 8: the children-list key prefix
    group_prefix: str  # 9: the task-group key prefix


# KEYS: session registry, session data stream
# Cancels task trees, breadth-first from the roots through the children lists. A queued task,
# one waiting for the user, and one whose worker is offline end CANCELLED here (record, state,
# result and end events; a queued entry is skipped when picked up). A task running on any other
# worker is marked (no new sub-calls; a re-run of it ends CANCELLED at once) and returned: the
# caller checks those workers are online, calls again naming the ones that are not, and tells the
# live ones to stop their tasks. Returns {cancelled here, {message id, worker id, ...},
# {worker id, child or group id, ...} (the wake-ups to send)}.
CANCEL_TREE = Script(
    "cancel_tree",
    CancelTreeArgs,
    _HELPERS
    + """
local reason = ARGV[2]
local now = tonumber(ARGV[3])
local function envelope(rec, event)
  return cjson.encode({v = 1, message_id = rec.message_id, agent_type = rec.agent_type,
    seq = 0, ts = now, event = event})
end
local queue, seen, head = cjson.decode(ARGV[1]), {}, 1
local running, wakes, cancelled = {}, {}, 0
local offline = {}
for _, worker in ipairs(cjson.decode(ARGV[7])) do offline[worker] = true end
while head <= #queue do
  local id = queue[head]
  head = head + 1
  if not seen[id] then
    seen[id] = true
    for _, child in ipairs(redis.call('LRANGE', ARGV[8] .. id, 0, -1)) do
      table.insert(queue, child)
    end
    local raw = redis.call('HGET', KEYS[1], id)
    local rec = raw and cjson.decode(raw)
    local open = rec and (holds_run(rec.status) or rec.status == 'queued'
      or rec.status == 'waiting_user')
    if open then
      local live = holds_run(rec.status) and rec.worker_id ~= '' and not offline[rec.worker_id]
      if live then
        rec.cancel = reason
        redis.call('HSET', KEYS[1], id, cjson.encode(rec))
        table.insert(running, id)
        table.insert(running, rec.worker_id)
      else
        rec.cancel = reason
        rec.error = reason
        rec.finished_at = now
        set_status(rec, 'cancelled', now)
        local result = envelope(rec, {type = 'result', result = {status = 'cancelled',
          content = cjson.null, data = cjson.null, error = reason}})
        redis.call('HSET', KEYS[1], id, cjson.encode(rec), id .. ':r', result)
        append_events(KEYS[2], ARGV[5], ARGV[6],
          envelope(rec, {type = 'state', state = 'cancelled', detail = reason}), result,
          envelope(rec, {type = 'end', status = 'cancelled'}))
        notify_parent(KEYS[1], rec, ARGV[9], wakes)
        cancelled = cancelled + 1
      end
    end
  end
end
if cancelled > 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
return {cancelled, running, wakes}
""",
)


class ResumeArgs(NamedTuple):
    message_id: str  # 1
    now: float  # 2
    record_ttl: int  # 3


# KEYS: session registry
# The first step of a resume, for a task waiting for the user: its record goes back to QUEUED with
# the next run number (fresh deliveries); the caller then adds the ResumeCommand to its control
# stream. Returns "ok", "missing", or "status:<status>" when the task is not waiting for the user
# (nothing changes).
RESUME = Script(
    "resume",
    ResumeArgs,
    _HELPERS
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 'missing' end
local rec = cjson.decode(raw)
if rec.status ~= 'waiting_user' then return 'status:' .. rec.status end
rec.run = (rec.run or 0) + 1
rec.delivery_count = 0
rec.worker_id = ''
rec.entry_id = ''
set_status(rec, 'queued', tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 'ok'
""",
)


class RenewArgs(NamedTuple):
    """Then (the tail) the entry ids this consumer has in flight."""

    group: str  # 1: the consumer group
    consumer: str  # 2


# KEYS: control stream
# The lease: resets the idle time of those entries still owned by this consumer (never taking
# one that another consumer reclaimed meanwhile). Returns how many it renewed.
RENEW = Script(
    "renew",
    RenewArgs,
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
    tail=True,
)

# KEYS: control stream
# Trims the entries every consumer group is done with: older than each group's oldest pending
# entry and not after its last delivered one. A stream with no group yet keeps everything (its
# commands wait for their first worker). Returns how many entries went.
TRIM_CONSUMED = Script(
    "trim_consumed",
    NoArgs,
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


class HeartbeatArgs(NamedTuple):
    """Then (the tail) the agent type names (one per agent type set of KEYS, in order), then
    the worker info's field/value pairs to set."""

    token: str  # 1: the worker-id lock's token
    ttl: int  # 2: seconds
    worker_id: str  # 3
    retention: int  # 4: membership retention, seconds


# KEYS: worker lock, worker online key, worker -> agent types set, worker info, known workers,
#       known agent types, agent type -> workers sets...
# Renews the heartbeat only while this process still holds the worker-id lock, and keeps its
# membership (re-added if a sweep pruned it during an outage; the sets expire when nobody renews).
# The info's last_heartbeat is Redis's clock, so that its age reads right from any host.
HEARTBEAT = Script(
    "heartbeat",
    HeartbeatArgs,
    """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local retention = tonumber(ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('EXPIRE', KEYS[3], retention)
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local served = #KEYS - 6
redis.call('HSET', KEYS[4], 'last_heartbeat', string.format('%.3f', now),
  unpack(ARGV, 5 + served, #ARGV))
redis.call('EXPIRE', KEYS[4], retention)
redis.call('SADD', KEYS[5], ARGV[3])
redis.call('EXPIRE', KEYS[5], retention)
for i = 1, served do
  redis.call('SADD', KEYS[6 + i], ARGV[3])
  redis.call('EXPIRE', KEYS[6 + i], retention)
  redis.call('ZADD', KEYS[6], now, ARGV[4 + i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - retention)
redis.call('EXPIRE', KEYS[6], retention)
return 1
""",
    tail=True,
)


class PruneMembersArgs(NamedTuple):
    online_prefix: str  # 1: the prefix of the workers' online keys


# KEYS: agent type -> workers set
# Drops the members that are not online (crashed workers). Returns how many went.
PRUNE_MEMBERS = Script(
    "prune_members",
    PruneMembersArgs,
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


class ReleaseLockArgs(NamedTuple):
    token: str  # 1: the holder's token (a session turn's: its message id)


# KEYS: worker lock (or a session turn: redis/turns.py)
RELEASE_LOCK = Script(
    "release_lock",
    ReleaseLockArgs,
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""",
)


class ConfigVersionArgs(NamedTuple):
    fingerprint: str  # 1: the config set's
    retention: int  # 2: seconds


# KEYS: the version registry of one worker kind's configs (a hash: fingerprint -> version)
# The version number of a config set: the same content gets the same number on every worker of
# the kind; new content gets the next number. Returns the version.
CONFIG_VERSION = Script(
    "config_version",
    ConfigVersionArgs,
    """
local version = redis.call('HGET', KEYS[1], ARGV[1])
if not version then
  version = redis.call('HINCRBY', KEYS[1], '#last', 1)
  redis.call('HSET', KEYS[1], ARGV[1], version)
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return tonumber(version)
""",
)


class TakeTokenArgs(NamedTuple):
    rate: float  # 1: tokens added per second
    burst: int  # 2: the bucket's size


# KEYS: a caller's token bucket (a hash: tokens, at)
# Takes a token if one is left, the bucket refilled for the time since it was last touched (by
# Redis's clock, so that every gateway replica counts alike). Returns 0 when a token was taken,
# else the milliseconds until one is there.
TAKE_TOKEN = Script(
    "take_token",
    TakeTokenArgs,
    """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait_ms = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
  'at', string.format('%.6f', now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return wait_ms
""",
)


class ClaimSessionArgs(NamedTuple):
    owner: str  # 1: the caller
    retention: int  # 2: seconds


# KEYS: the session's owner key
# Makes the caller the session's owner if it has none (kept for the retention, refreshed by its
# owner's later claims); returns the owner either way. (SET NX GET would do it in one command
# from Redis 7.0 only.)
CLAIM_SESSION = Script(
    "claim_session",
    ClaimSessionArgs,
    """
local owner = redis.call('GET', KEYS[1])
if not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return ARGV[1]
end
if owner == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return owner
""",
)


class TurnArgs(NamedTuple):
    message_id: str  # 1
    lease_ms: int  # 2


# A session's turn for one agent type (redis/turns.py). KEYS: the turn
# Takes the turn if it is free, lapsed or already this message's (its lease renewed): returns
# false; else the holder's message id, and nothing changes.
TAKE_TURN = Script(
    "take_turn",
    TurnArgs,
    """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
""",
)

# KEYS: the turn (or a starting worker's lock, its token for the message id: lease_keeper.py).
# 1 if renewed, 0 if not this message's any more.
KEEP_TURN = Script(
    "keep_turn",
    TurnArgs,
    """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
""",
)

# Scheduled runs (redis/schedules.py). KEYS of every one: schedules due, firing, definitions,
# state (one slot: the deployment's schedules).


class AddScheduleArgs(NamedTuple):
    schedule_id: str  # 1
    definition: bytes  # 2: its JSON
    first_ms: int  # 3: when it fires first


# Returns 1, or 0 if the id is taken (nothing changes).
ADD_SCHEDULE = Script(
    "add_schedule",
    AddScheduleArgs,
    """
if redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
""",
)


class TakeDueArgs(NamedTuple):
    now_ms: int  # 1
    lease_end_ms: int  # 2
    limit: int  # 3: how many at most


# Takes the schedules due by now: each is pushed back to the lease end (no other worker takes it
# before then) and its tick kept in the firing hash (a firing taken over after a lease ran out
# keeps the tick it was for). Returns {id, tick, definition JSON, ...}.
TAKE_DUE = Script(
    "take_due",
    TakeDueArgs,
    """
local taken = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])) do
  local definition = redis.call('HGET', KEYS[3], id)
  if definition then
    local tick = redis.call('HGET', KEYS[2], id)
    if not tick then
      tick = redis.call('ZSCORE', KEYS[1], id)
      redis.call('HSET', KEYS[2], id, tick)
    end
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    taken[#taken + 1] = id
    taken[#taken + 1] = tick
    taken[#taken + 1] = definition
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return taken
""",
)


class SettleFiringArgs(NamedTuple):
    schedule_id: str  # 1
    lease_end_ms: int  # 2: the lease end it was taken with
    next_ms: int | str  # 3: the next fire time, or "" (none: the schedule is done and removed)
    state: str  # 4: its state's JSON
    fired: str  # 5: "1" if the tick was fired (else it is tried again at the next fire time)


# Settles a firing, only if it is still this taker's (no one took it over after its lease).
# Returns 1, or 0 when it is not (nothing changes).
SETTLE_FIRING = Script(
    "settle_firing",
    SettleFiringArgs,
    """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[5] == '1' then redis.call('HDEL', KEYS[2], ARGV[1]) end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
end
return 1
""",
)


class RemoveScheduleArgs(NamedTuple):
    schedule_id: str  # 1


# Returns 1, or 0 if there is no such schedule.
REMOVE_SCHEDULE = Script(
    "remove_schedule",
    RemoveScheduleArgs,
    """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return redis.call('HDEL', KEYS[3], ARGV[1])
""",
)

ALL_SCRIPTS: tuple[Script[Any], ...] = (
    ONLINE,
    CLAIM,
    UNCLAIM,
    BEGIN,
    FINISH,
    RELEASE_RUN,
    REQUEUE,
    GIVE_UP,
    DISPATCH,
    SET_WAITING,
    CANCEL_TREE,
    RESUME,
    RENEW,
    TRIM_CONSUMED,
    HEARTBEAT,
    PRUNE_MEMBERS,
    RELEASE_LOCK,
    CONFIG_VERSION,
    TAKE_TOKEN,
    CLAIM_SESSION,
    TAKE_TURN,
    KEEP_TURN,
    ADD_SCHEDULE,
    TAKE_DUE,
    SETTLE_FIRING,
    REMOVE_SCHEDULE,
)
