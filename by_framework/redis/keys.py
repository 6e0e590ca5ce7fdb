"""Every Redis key name, built in this one module.

Keys of one session carry the session id in braces, a Redis Cluster hash tag, so that a script
touching one session's record hash and data stream stays within one slot.
"""

from dataclasses import dataclass

DEFAULT_PREFIX = "byai_gateway"


@dataclass(frozen=True, slots=True)
class KeySpace:
    prefix: str = DEFAULT_PREFIX

    # Control plane
    def agent_type_stream(self, agent_type: str) -> str:
        return f"{self.prefix}:ctrl:agent_type:{agent_type}"

    def worker_stream(self, worker_id: str) -> str:
        return f"{self.prefix}:ctrl:worker:{worker_id}"

    def worker_notices(self, worker_id: str) -> str:
        """Wake-ups for the parents a worker runs: a child finished, a group completed."""
        return f"{self.prefix}:ctrl:notices:{worker_id}"

    def worker_notices_prefix(self) -> str:
        return f"{self.prefix}:ctrl:notices:"

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

    def rate_bucket(self, caller: str) -> str:
        """A caller's token bucket of the HTTP gateway's rate limit."""
        return f"{self.prefix}:gateway:rate:{caller}"

    def task_index(self, message_id: str) -> str:
        """message id -> session id, so a task can be found from its id alone."""
        return f"{self.prefix}:task:{message_id}"

    # Plugins
    def config_snapshot(self, key: str) -> str:
        return f"{self.prefix}:agent_configs_snapshot:{key}"

    def config_versions(self, key: str) -> str:
        return f"{self.prefix}:agent_configs_versions:{key}"

    def reload_acks(self) -> str:
        return f"{self.prefix}:ctrl:reload_acks"

    # Worker registry
    def worker_online(self, worker_id: str) -> str:
        return f"{self.prefix}:registry:worker:online:{worker_id}"

    def worker_online_prefix(self) -> str:
        return f"{self.prefix}:registry:worker:online:"

    def agent_type_workers(self, agent_type: str) -> str:
        return f"{self.prefix}:registry:agent_type:workers:{agent_type}"

    def worker_agent_types(self, worker_id: str) -> str:
        return f"{self.prefix}:registry:worker:agent_types:{worker_id}"

    def worker_lock(self, worker_id: str) -> str:
        return f"{self.prefix}:registry:worker:lock:{worker_id}"

    def worker_info(self, worker_id: str) -> str:
        """What a worker publishes about itself (a hash): host, slots, load, state, outcomes."""
        return f"{self.prefix}:registry:worker:info:{worker_id}"

    def known_workers(self) -> str:
        """Every registered worker (a set, pruned like the agent types' sets): the fleet's
        index, so that reading it needs no SCAN of the keyspace."""
        return f"{self.prefix}:registry:workers"

    def known_agent_types(self) -> str:
        """Every agent type served lately (a sorted set scored by when a worker last served it)."""
        return f"{self.prefix}:registry:agent_types"
