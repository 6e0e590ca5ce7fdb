"""Every Redis key name, built in this one module.

The part of a name in braces is its Redis Cluster hash tag: keys with the same tag share a slot,
and every Lua script and multi-key command joins keys of one tag only (docs/execution.md,
"Atomic steps and crashes"). The families and their tags:

- a session's keys (records, events, children lists, groups, owner, turns): ``{<session id>}``;
- an agent type's control stream: ``{<agent type>}``, shard ``k`` of a sharded one
  ``{<agent type>#k}`` (shard 0 keeps the unsharded name);
- a worker's own streams (direct commands, notices): ``{<worker id>}``;
- the worker registry (membership, online keys, locks, worker info, the fleet's indexes):
  ``{<prefix>}``, one slot per deployment, so that the heartbeat stays one script;
- scheduled runs (definitions, due times, ticks being fired, their state):
  ``{<prefix>#schedules}``, one slot per deployment, so that taking a due one is one script;
- a discovered service's keys (its node set, its nodes' leases): ``{<service>}``;
- keys used one at a time (task index, dead letters, plugin configs, rate buckets): no tag.

A task index has no tag (it is found by message id alone), yet a new task's id is chosen so that
its index falls in its session's slot (``KeySpace.placed_id``): a send then writes to two
masters of a cluster (the session's and the agent type's), not three.
"""

import itertools
import re
import zlib
from binascii import crc_hqx
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from redis.crc import key_slot

DEFAULT_PREFIX = "byai_gateway"


@dataclass(frozen=True, slots=True)
class KeySpace:
    prefix: str = DEFAULT_PREFIX
    shards: Mapping[str, int] = field(default_factory=dict, hash=False)
    """Agent type -> how many control streams it is spread over (absent: one)."""

    # Control plane
    def shard_count(self, agent_type: str) -> int:
        return max(1, self.shards.get(agent_type, 1))

    def agent_type_stream(self, agent_type: str, shard: int = 0) -> str:
        tag = agent_type if shard == 0 else f"{agent_type}#{shard}"
        return f"{self.prefix}:ctrl:agent_type:{{{tag}}}"

    def agent_type_streams(self, agent_type: str) -> list[str]:
        """Every shard of an agent type's control stream: what its workers read together."""
        return [self.agent_type_stream(agent_type, k) for k in range(self.shard_count(agent_type))]

    def send_stream(self, agent_type: str, session_id: str) -> str:
        """The shard a command of this session goes to: one per session, so that a session's
        commands keep their order in one stream."""
        shards = self.shard_count(agent_type)
        shard = zlib.crc32(session_id.encode()) % shards if shards > 1 else 0
        return self.agent_type_stream(agent_type, shard)

    def worker_stream(self, worker_id: str) -> str:
        return f"{self.prefix}:ctrl:worker:{{{worker_id}}}"

    def worker_notices(self, worker_id: str) -> str:
        """Wake-ups for the parents a worker runs: a child finished, a group completed."""
        return f"{self.prefix}:ctrl:notices:{{{worker_id}}}"

    def dead_letter_stream(self) -> str:
        return f"{self.prefix}:dead_letter"

    # Data plane and execution state, per session (hash-tagged)
    def session_data_stream(self, session_id: str) -> str:
        return f"{self.prefix}:session:{{{session_id}}}:data_stream"

    def session_registry(self, session_id: str) -> str:
        return f"{self.prefix}:session:{{{session_id}}}:registry"

    def task_children(self, session_id: str, message_id: str) -> str:
        """The sub-calls a task dispatched: the task tree, walked by cancel."""
        return f"{self.prefix}:session:{{{session_id}}}:children:{message_id}"

    def task_children_prefix(self, session_id: str) -> str:
        return f"{self.prefix}:session:{{{session_id}}}:children:"

    def task_group(self, session_id: str, group_id: str) -> str:
        """A scatter-gather group: its children in dispatch order and how many are still out."""
        return f"{self.prefix}:session:{{{session_id}}}:task_group:{group_id}"

    def feed_wake(self, feed_id: str) -> str:
        """A client's session feed is woken here when a follower joins (``redis/feed.py``)."""
        return f"{self.prefix}:client:{feed_id}:wake"

    def session_owner(self, session_id: str) -> str:
        """The user who created the session, for the HTTP gateway's access control."""
        return f"{self.prefix}:session:{{{session_id}}}:owner"

    def session_turn(self, session_id: str, agent_type: str) -> str:
        """The message whose run of ``agent_type`` holds the session's turn."""
        return f"{self.prefix}:session:{{{session_id}}}:turn:{agent_type}"

    def answer(self, reply_to: str) -> str:
        """A list holding one answer for one waiting caller."""
        return f"{self.prefix}:answer:{{{reply_to}}}"

    def rate_bucket(self, caller: str) -> str:
        """A caller's token bucket of the HTTP gateway's rate limit."""
        return f"{self.prefix}:gateway:rate:{caller}"

    def task_index(self, message_id: str) -> str:
        """message id -> session id, so a task can be found from its id alone. No hash tag (it
        is looked up by message id): written beside the record, not with it, and in the same
        slot when the id was placed (``placed_id``)."""
        return f"{self.prefix}:task:{message_id}"

    def placed_id(self, message_id: str, session_id: str) -> str:
        """``message_id`` with its last five characters replaced by hex digits that put its
        task index in the session's slot: the same for the same arguments. An id shorter than
        six characters, or a prefix with a hash tag of its own, is left as it is."""
        if len(message_id) <= PLACED_CHARS or "{" in self.prefix:
            return message_id
        head = message_id[:-PLACED_CHARS]
        target = key_slot(self.session_registry(session_id).encode())
        base = crc_hqx(f"{self.task_index(head)}{_ZEROS}".encode(), 0)
        return head + _suffix((target ^ base) & _SLOT_MASK)

    # Scheduled runs: one hash tag, the deployment's schedules', for every key of them
    def _schedules(self) -> str:
        return f"{self.prefix}:schedules:{{{self.prefix}#schedules}}"

    def schedule_definitions(self) -> str:
        """schedule id -> its definition (JSON): what to send, and when (cron or one time)."""
        return f"{self._schedules()}:definitions"

    def schedules_due(self) -> str:
        """A sorted set of schedule ids by when each fires next (ms), or by when the worker
        firing one may be presumed dead (its lease)."""
        return f"{self._schedules()}:due"

    def schedules_firing(self) -> str:
        """schedule id -> the tick (ms) being fired: kept until the firing is settled, so a
        firing taken over after a crash sends that tick's task, not a new one."""
        return f"{self._schedules()}:firing"

    def schedules_state(self) -> str:
        """schedule id -> what its firings did (JSON): count, last task, last error."""
        return f"{self._schedules()}:state"

    # Plugins
    def config_snapshot(self, key: str) -> str:
        return f"{self.prefix}:agent_configs_snapshot:{key}"

    def config_versions(self, key: str) -> str:
        return f"{self.prefix}:agent_configs_versions:{key}"

    def reload_acks(self) -> str:
        return f"{self.prefix}:ctrl:reload_acks"

    # Worker registry: one hash tag, the deployment's, for every key of it
    def _registry(self) -> str:
        return f"{self.prefix}:registry:{{{self.prefix}}}"

    def worker_online(self, worker_id: str) -> str:
        return f"{self.worker_online_prefix()}{worker_id}"

    def worker_online_prefix(self) -> str:
        return f"{self._registry()}:worker:online:"

    def agent_type_workers(self, agent_type: str) -> str:
        return f"{self._registry()}:agent_type:workers:{agent_type}"

    def worker_agent_types(self, worker_id: str) -> str:
        return f"{self._registry()}:worker:agent_types:{worker_id}"

    def worker_lock(self, worker_id: str) -> str:
        return f"{self._registry()}:worker:lock:{worker_id}"

    def worker_info(self, worker_id: str) -> str:
        """What a worker publishes about itself (a hash): host, slots, load, state, outcomes."""
        return f"{self._registry()}:worker:info:{worker_id}"

    def known_workers(self) -> str:
        """Every registered worker (a set, pruned like the agent types' sets): the fleet's
        index, so that reading it needs no SCAN of the keyspace."""
        return f"{self._registry()}:workers"

    def known_agent_types(self) -> str:
        """Every agent type served lately (a sorted set scored by when a worker last served it)."""
        return f"{self._registry()}:agent_types"

    # Service discovery (ServiceRegistry)

    def _service(self, service: str) -> str:
        return f"{self.prefix}:discovery:service:{{{service}}}"

    def service_nodes(self, service: str) -> str:
        """The ids of a service's registered nodes (a set, pruned of lapsed leases on lookup)."""
        return f"{self._service(service)}:nodes"

    def service_node_prefix(self, service: str) -> str:
        return f"{self._service(service)}:node:"

    def service_node(self, service: str, node_id: str) -> str:
        """A node's record, with its lease as the key's expiry."""
        return f"{self.service_node_prefix(service)}{node_id}"

    def services_pattern(self) -> str:
        """A SCAN pattern matching every service's node set (the prefix's glob characters
        escaped)."""
        escaped = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix)
        return f"{escaped}:discovery:service:{{*}}:nodes"

    def service_of_nodes(self, key: str) -> str:
        """The service whose node set ``key`` is."""
        return key.removeprefix(f"{self.prefix}:discovery:service:{{").removesuffix("}:nodes")


PLACED_CHARS = 5
_SLOT_MASK = 16383  # Redis Cluster's slot: CRC16 (XMODEM, binascii's crc_hqx) mod 16384
_ZEROS = "\0" * PLACED_CHARS
_HEX = "0123456789abcdef"


def _suffix(residue: int) -> str:
    """Five hex digits whose CRC16 has these low 14 bits. The CRC (initial value 0) is linear,
    so a key ending in them has the CRC of the key ending in zero bytes XOR theirs; and the
    CRC of two digits followed by three zero bytes XOR that of three digits is the CRC of the
    five. Every residue has such a pair (``tests/test_keys.py``)."""
    lows, highs = _suffix_tables()
    for contribution, high in highs:
        low = lows.get(residue ^ contribution)
        if low is not None:
            return high + low
    raise AssertionError(f"no placing suffix for residue {residue}")


@cache
def _suffix_tables() -> tuple[dict[int, str], list[tuple[int, str]]]:
    """Residue -> three hex digits having it; (residue of two digits and three zero bytes, the
    two digits) for every pair of digits. Built once (~4,000 CRCs)."""
    lows: dict[int, str] = {}
    for digits in itertools.product(_HEX, repeat=3):
        low = "".join(digits)
        lows.setdefault(crc_hqx(low.encode(), 0) & _SLOT_MASK, low)
    highs = [
        (crc_hqx(f"{a}{b}\0\0\0".encode(), 0) & _SLOT_MASK, f"{a}{b}")
        for a, b in itertools.product(_HEX, repeat=2)
    ]
    return lows, highs
