"""Auto-batching on a Redis Cluster: each command goes to the master that serves its slot.

A caller's commands are split by the node of their first key (for a script, its first KEYS
entry); each node has a ``CommandBatcher`` of its own (its flushes, its connections), so a flush
is one pipeline to one node. Commands of one caller to one node stay together and in order; a
caller's commands to different nodes run at once, in no order between them (they touch different
slots, so no script or reply can tell).

Where the slot map changed under a command, Redis says so and the command is sent again: MOVED
(the slot has a new owner: the map is updated, the command goes there), ASK (the slot is being
migrated and the key is already on the target: ASKING then the command, to the target), TRYAGAIN
(a multi-key command whose keys the migration has split: sent again a moment later), NOSCRIPT (a
replica promoted by a failover has never loaded the scripts: loaded there, sent again). A node
that cannot be reached, or a cluster that says it is down (CLUSTERDOWN, during a failover), fails
the command with a ``ClusterUnavailable`` (a ``ConnectionError``, which callers already ride out
with their retries) and makes the next command refresh the slot map first.

A flush that writes a session's stream ends with an SPUBLISH on the stream's wake channel (once
per stream): that is what wakes the clients that follow the session (``cluster_feed.py``),
whoever wrote the events (an XADD, or a script given the stream as a key).
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

from by_framework.redis.batching import SOURCES, CommandBatcher, RedisCommand, pack_one
from by_framework.redis.connection import node_connection

T = TypeVar("T")

REDIRECTS = 5
"""Times a command is sent again after MOVED, ASK, TRYAGAIN or NOSCRIPT before its error is
raised: more means the slot map keeps changing under it."""
TRY_AGAIN_PAUSE = 0.05  # seconds before a command a migration split (TRYAGAIN) is sent again
LOADS = [("SCRIPT", "LOAD", source) for source in SOURCES.values()]
"""Every Lua script's SCRIPT LOAD: what a master needs before the engine's commands reach it."""
_KEYLESS = frozenset({"PING", "SCRIPT", "CLIENT", "INFO", "ASKING", "CLUSTER", "FUNCTION"})


class ClusterUnavailable(ConnectionError):
    """A node could not be reached, or the cluster said it is down (a failover under way): the
    slot map is refreshed before the next command; a retry may well succeed."""


def first_key(command: RedisCommand) -> Any:
    """The key whose slot decides where the command goes; None for a command of no key."""
    name = command[0]
    if name in ("EVALSHA", "EVAL"):
        return command[3] if int(command[2]) else None
    if name in ("XREAD", "XREADGROUP"):
        return command[command.index("STREAMS") + 1]
    if name in ("XINFO", "XGROUP"):
        return command[2]
    if name in _KEYLESS:
        return None
    return command[1]


def _written_keys(command: RedisCommand) -> Sequence[Any]:
    """The keys a command may write: an XADD's stream, a script's KEYS."""
    name = command[0]
    if name == "EVALSHA":
        return command[3 : 3 + int(command[2])]
    if name == "XADD":
        return command[1:2]
    return ()


class ClusterTopology:
    """The client's slot map, refreshed once after whatever made it doubtful (merged when
    many commands fail at once); ``on_new_primary`` runs for each master it learns of."""

    def __init__(
        self,
        cluster: RedisCluster,
        on_new_primary: Callable[[ClusterNode], Awaitable[None]] | None = None,
    ) -> None:
        self.cluster = cluster
        self._on_new_primary = on_new_primary
        self._primaries: set[str] = set()
        self._stale = True  # not learnt yet
        self._lock = asyncio.Lock()

    def doubt(self) -> None:
        self._stale = True

    async def ready(self) -> None:
        """The map is known (learnt again if doubted): raises ClusterUnavailable if no node
        can tell it."""
        if not self._stale:
            return
        async with self._lock:
            if not self._stale:
                return
            try:
                if self.cluster.nodes_manager.slots_cache:
                    await self.cluster.nodes_manager.initialize()
                else:
                    await self.cluster.initialize()
            except (RedisClusterException, ConnectionError, TimeoutError, OSError) as exc:
                raise ClusterUnavailable(
                    f"no node of the cluster told its slot map: {exc}"
                ) from exc
            self._stale = False
            primaries = self.cluster.get_primaries()
            new = [node for node in primaries if node.name not in self._primaries]
            self._primaries = {node.name for node in primaries}
            if self._on_new_primary is not None:
                try:
                    for node in new:
                        await self._on_new_primary(node)
                except (ConnectionError, TimeoutError):
                    self._primaries -= {node.name for node in new}  # again, next refresh

    def node_of(self, command: RedisCommand) -> ClusterNode:
        """The master that serves the command's slot (any, for a command of no key)."""
        key = first_key(command)
        if key is None:
            return self.cluster.get_default_node() or self.cluster.get_primaries()[0]
        slot = self.cluster.keyslot(key)
        try:
            node = self.cluster.nodes_manager.slots_cache[slot][0]
        except (KeyError, IndexError):
            self.doubt()
            raise ClusterUnavailable(f"no master serves slot {slot} (yet)") from None
        if node.name not in self._primaries:
            # The client learnt a new master by itself (redis-py refreshes the map on its own
            # errors): learn it here too, before the next command, and load the scripts there.
            self.doubt()
        return node

    def node_at(self, host: str, port: int) -> ClusterNode:
        """The node at an address a redirection named (known, or added to the map)."""
        manager = self.cluster.nodes_manager
        node = manager.get_node(host=host, port=port)
        if node is None:
            node = ClusterNode(host, port, "primary", **manager.connection_kwargs)
            manager.set_nodes(manager.nodes_cache, {node.name: node})
        return node

    async def moved(self, error: MovedError) -> None:
        """Learn the map again, unless it already has the slot where MOVED says (many
        commands of a resharded slot: one refresh)."""
        owners = self.cluster.nodes_manager.slots_cache.get(error.slot_id)
        if owners and (owners[0].host, owners[0].port) == (error.host, error.port):
            return
        self.doubt()
        await self.ready()


class NodeBatcher(CommandBatcher):
    """The batcher of one node: flushes on connections to it; the errors that mean the command
    belongs elsewhere now are recovered from through the cluster's batcher."""

    def __init__(self, router: "ClusterBatcher", node: ClusterNode) -> None:
        super().__init__(router.topology.cluster)
        self._router = router
        self._node = node
        self._response_callbacks = node.response_callbacks

    def _new_connection(self) -> Any:
        return node_connection(self._node)

    async def _exchange(
        self, connection: Any, commands: list[RedisCommand], packed: bytes
    ) -> list[Any]:
        """The flush, with an SPUBLISH at its end for each stream it writes that the router
        announces (once per stream per flush, whoever wrote it)."""
        wakes = self._router.wakes
        if wakes is None:
            return await super()._exchange(connection, commands, packed)
        written = {key for command in commands for key in _written_keys(command) if wakes(key)}
        if not written:
            return await super()._exchange(connection, commands, packed)
        announcements: list[RedisCommand] = [("SPUBLISH", key, "1") for key in written]
        packed += b"".join([pack_one(command) for command in announcements])
        replies = await super()._exchange(connection, [*commands, *announcements], packed)
        return replies[: len(commands)]

    async def _recover(self, command: RedisCommand, error: ResponseError) -> Any:
        topology = self._router.topology
        node, asking = self._node, False
        for _ in range(REDIRECTS):
            if isinstance(error, MovedError):  # before AskError: a MovedError is one
                await topology.moved(error)
                node, asking = topology.node_of(command), False
            elif isinstance(error, AskError):
                node, asking = topology.node_at(error.host, error.port), True
            elif isinstance(error, TryAgainError):
                await asyncio.sleep(TRY_AGAIN_PAUSE)
                node, asking = topology.node_of(command), False
            elif isinstance(error, NoScriptError):  # all of them: others use them there too
                await self._router.submit_to(node, LOADS)
            elif isinstance(error, ClusterDownError):
                topology.doubt()
                raise ClusterUnavailable(str(error)) from error
            else:
                raise error
            sent = [("ASKING",), command] if asking else [command]
            reply = (await self._router.submit_to(node, sent))[-1]
            if not isinstance(reply, ResponseError):
                return reply
            error = reply
        raise error


class ClusterBatcher:
    """``CommandBatcher``'s interface on a Redis Cluster: a batcher per master."""

    def __init__(self, cluster: RedisCluster, wakes: Callable[[str], bool] | None = None) -> None:
        """``wakes``: whether a key's writes are announced (SPUBLISH on a channel named like the
        key, so in its slot, at the end of the pipeline that writes it): the session streams,
        whose followers are woken so (``cluster_feed.py``)."""
        self.topology = ClusterTopology(cluster, self._load_scripts)
        self.wakes = wakes
        self._nodes: dict[str, NodeBatcher] = {}

    async def execute(self, *commands: RedisCommand) -> list[Any]:
        """Run the commands (in order on each node), each on its slot's master; their replies."""
        await self.topology.ready()
        node_of = self.topology.node_of
        if len(commands) == 1:
            return await self._on(node_of(commands[0]), commands)
        by_node: dict[ClusterNode, list[RedisCommand]] = {}
        places: list[tuple[ClusterNode, int]] = []  # each command's node, and place there
        for command in commands:
            node = node_of(command)
            node_commands = by_node.setdefault(node, [])
            places.append((node, len(node_commands)))
            node_commands.append(command)
        if len(by_node) == 1:
            return await self._on(places[0][0], commands)
        parts = await asyncio.gather(*(self._on(node, cmds) for node, cmds in by_node.items()))
        replies = dict(zip(by_node, parts, strict=True))
        return [replies[node][index] for node, index in places]

    async def acknowledge(self, stream: str, group: str, entry_id: str) -> None:
        """XACK of one entry, in the next XACK of its stream and group to the stream's master."""
        await self.topology.ready()
        node = self.topology.node_of(("XACK", stream))
        await self._reaching(node, self._batcher(node).acknowledge(stream, group, entry_id))

    async def execute_on(self, node: ClusterNode, *commands: RedisCommand) -> list[Any]:
        """Run the commands on this node, wherever their keys are (CLIENT UNBLOCK, SCRIPT LOAD)."""
        await self.topology.ready()
        return await self._on(node, commands)

    async def load_scripts(self) -> None:
        """Load every Lua script on every master: done as the slot map is learnt, so that a
        replica promoted by a failover has them before most commands reach it (one that comes
        first is answered NOSCRIPT, and loads them then)."""
        await self.topology.ready()

    async def _load_scripts(self, node: ClusterNode) -> None:
        await self._on(node, LOADS)

    async def submit_to(self, node: ClusterNode, commands: Sequence[RedisCommand]) -> list[Any]:
        """The replies as they came from this node (errors in their place, not recovered)."""
        try:
            return await self._batcher(node).submit(commands)
        except (ConnectionError, TimeoutError):
            self.topology.doubt()
            raise

    async def _on(self, node: ClusterNode, commands: Sequence[RedisCommand]) -> list[Any]:
        return await self._reaching(node, self._batcher(node).execute(*commands))

    async def _reaching(self, node: ClusterNode, work: Awaitable[T]) -> T:
        """``work``'s outcome on ``node``; one that could not reach it raises a
        ``ClusterUnavailable`` and has the slot map doubted."""
        try:
            return await work
        except (ConnectionError, TimeoutError) as exc:
            self.topology.doubt()
            if isinstance(exc, ClusterUnavailable):
                raise
            raise ClusterUnavailable(f"{node.name}: {exc}") from exc

    def _batcher(self, node: ClusterNode) -> NodeBatcher:
        batcher = self._nodes.get(node.name)
        if batcher is None:
            batcher = self._nodes[node.name] = NodeBatcher(self, node)
        return batcher

    async def aclose(self) -> None:
        nodes, self._nodes = self._nodes, {}
        for batcher in nodes.values():
            await batcher.aclose()
