"""The batcher on a real Redis Cluster: each command goes to its slot's master, and a command
whose slot moved (MOVED), is moving (ASK) or whose scripts a promoted replica never loaded
(NOSCRIPT) still gets its reply."""

import asyncio
import contextlib
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from by_framework.redis.batching import evalsha
from by_framework.redis.cluster_batching import ClusterBatcher, ClusterUnavailable
from by_framework.redis.engine import RedisEngine
from by_framework.redis.scripts import TRIM_CONSUMED
from tests.support import LocalCluster, pending_entries


def batcher_of(engine: RedisEngine) -> ClusterBatcher:
    assert isinstance(engine.batcher, ClusterBatcher)
    return engine.batcher


def keys_on_each_master(cluster: RedisCluster, prefix: str) -> dict[int, str]:
    """A key of the prefix on each master: its port -> the key."""
    found: dict[int, str] = {}
    masters = {node.port for node in cluster.get_primaries()}
    n = 0
    while set(found) != masters:
        key = f"{prefix}:k{n}"
        found.setdefault(cluster.get_node_from_key(key).port, key)
        n += 1
    return found


def slot_of(key: str) -> int:
    return key_slot(key.encode())


async def until_answered(batcher: ClusterBatcher, *commands: Any, timeout: float = 30) -> list[Any]:
    """The replies, retrying through a failover as the engine's callers do."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                return await batcher.execute(*commands)
            except ClusterUnavailable:
                await asyncio.sleep(0.1)


async def test_connects_by_url_and_loads_scripts_on_every_master(
    engine: RedisEngine, cluster_client: RedisCluster
) -> None:
    assert isinstance(engine.redis, RedisCluster)
    await engine.ping()
    for node in cluster_client.get_primaries():
        loaded = await cluster_client.execute_command(
            "SCRIPT EXISTS", TRIM_CONSUMED.sha, target_nodes=node
        )
        assert loaded == [True]


async def test_routes_each_command_to_its_slots_master(
    engine: RedisEngine, cluster_client: RedisCluster, cluster_prefix: str
) -> None:
    keys = keys_on_each_master(cluster_client, cluster_prefix)
    batcher = batcher_of(engine)
    ordered = list(keys.values())
    replies = await batcher.execute(
        *(("SET", key, f"v-{key}") for key in ordered), *(("GET", key) for key in ordered)
    )
    assert replies[len(ordered) :] == [f"v-{key}".encode() for key in ordered]
    for port, key in keys.items():  # each on the master that serves its slot, and only there
        node = cluster_client.get_node(host="127.0.0.1", port=port)
        assert await cluster_client.execute_command("GET", key, target_nodes=node) == (
            f"v-{key}".encode()
        )


async def test_a_caller_that_fails_sees_its_own_error_only(
    engine: RedisEngine, cluster_client: RedisCluster, cluster_prefix: str
) -> None:
    keys = list(keys_on_each_master(cluster_client, cluster_prefix).values())
    batcher = batcher_of(engine)
    await batcher.execute(("SET", keys[0], "string"))
    wrong = batcher.execute(("XADD", keys[0], "*", "f", "v"))  # a string, not a stream
    right = batcher.execute(("SET", keys[1], "ok"), ("GET", keys[1]))
    outcomes = await asyncio.gather(wrong, right, return_exceptions=True)
    assert "WRONGTYPE" in str(outcomes[0])
    assert outcomes[1] == [True, b"ok"]


async def test_a_moved_slot_is_followed_to_its_new_master(
    engine: RedisEngine, own_cluster: LocalCluster, cluster_prefix: str
) -> None:
    batcher = batcher_of(engine)
    key = f"{cluster_prefix}:moving"
    await batcher.execute(("SET", key, "before"))
    slot = slot_of(key)
    source = own_cluster.owner(slot)
    target = next(port for port in own_cluster.masters() if port != source)
    own_cluster.move_slot(slot, target)  # the batcher still thinks the slot is on source

    assert await batcher.execute(("GET", key)) == [b"before"]  # MOVED, then sent to target
    assert batcher.topology.node_of(("GET", key)).port == target  # the map learnt it
    assert await batcher.execute(("SET", key, "after"), ("GET", key)) == [True, b"after"]


async def test_a_migrating_slot_is_asked_for_on_its_target(
    engine: RedisEngine, own_cluster: LocalCluster, cluster_prefix: str
) -> None:
    batcher = batcher_of(engine)
    tag = f"{cluster_prefix}:{{asked}}"
    moved, stayed, created = f"{tag}:moved", f"{tag}:stayed", f"{tag}:created"
    await batcher.execute(("SET", moved, "m"), ("SET", stayed, "s"))
    slot = slot_of(moved)
    source = own_cluster.owner(slot)
    target = next(port for port in own_cluster.masters() if port != source)
    own_cluster.begin_migration(slot, target)
    try:
        own_cluster.migrate_keys(slot, source, target, [moved])
        # The source still serves the slot: a key it holds is answered there, one it no longer
        # holds (moved, or never there) is asked for on the target.
        replies = await batcher.execute(("GET", moved), ("GET", stayed), ("SET", created, "c"))
        assert replies == [b"m", b"s", True]
        on_target = own_cluster.cli(target, "CLUSTER", "GETKEYSINSLOT", str(slot), "10").split()
        assert sorted(on_target) == sorted([moved, created])
        assert batcher.topology.node_of(("GET", moved)).port == source  # ASK moves no slot
    finally:
        own_cluster.end_migration(slot, source, target)
    assert await batcher.execute(("GET", moved), ("GET", stayed), ("GET", created)) == [
        b"m",
        b"s",
        b"c",
    ]


async def test_scripts_a_node_forgot_are_loaded_again(
    engine: RedisEngine, own_cluster: LocalCluster, cluster_prefix: str
) -> None:
    batcher = batcher_of(engine)
    stream = f"{cluster_prefix}:stream"
    await batcher.execute(("XADD", stream, "*", "f", "v"))
    own_cluster.cli(own_cluster.owner(slot_of(stream)), "SCRIPT", "FLUSH")
    assert await batcher.execute(evalsha(TRIM_CONSUMED, [stream], [])) == [0]


async def test_a_failover_is_ridden_out_and_the_new_master_gets_the_scripts(
    engine: RedisEngine, own_cluster: LocalCluster, cluster_prefix: str
) -> None:
    batcher = batcher_of(engine)
    stream = f"{cluster_prefix}:failover"
    await batcher.execute(("XADD", stream, "*", "f", "v"))
    old = own_cluster.owner(slot_of(stream))
    own_cluster.wait_replicated(old)
    new = own_cluster.kill_master(old)
    try:
        # The first command finds the old master gone, the next ones the promoted replica,
        # which has the stream (replicated) but not the scripts (never replicated).
        replies = await until_answered(batcher, evalsha(TRIM_CONSUMED, [stream], []))
        assert replies == [0]
        assert batcher.topology.node_of(("XLEN", stream)).port == new
        assert await batcher.execute(("XLEN", stream)) == [1]
    finally:
        own_cluster.restart(old)  # back as a replica of the promoted one


async def test_a_connection_redis_closed_is_made_again(
    engine: RedisEngine, own_cluster: LocalCluster, cluster_prefix: str
) -> None:
    batcher = batcher_of(engine)
    key = f"{cluster_prefix}:reconnect"
    await batcher.execute(("SET", key, "v"))
    own_cluster.cli(own_cluster.owner(slot_of(key)), "CLIENT", "KILL", "TYPE", "normal")
    # Closed between flushes: seen before the next write, which goes on a new connection.
    assert await until_answered(batcher, ("GET", key)) == [b"v"]


async def test_a_call_on_several_masters_recovers_on_each(
    engine: RedisEngine,
    own_cluster: LocalCluster,
    cluster_client: RedisCluster,
    cluster_prefix: str,
) -> None:
    """Queued on each master at once: one master's forgotten scripts are loaded again there,
    the other's reply comes as it is, in the caller's order."""
    first, second = list(keys_on_each_master(cluster_client, f"{cluster_prefix}:s").values())[:2]
    batcher = batcher_of(engine)
    await batcher.execute(("XADD", first, "*", "f", "v"))
    own_cluster.cli(own_cluster.owner(slot_of(first)), "SCRIPT", "FLUSH")
    replies = await batcher.execute(
        ("SET", second, "v"), evalsha(TRIM_CONSUMED, [first], []), ("GET", second)
    )
    assert replies == [True, 0, b"v"]


BUSY = """
local start = redis.call('TIME')
repeat
  local now = redis.call('TIME')
until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > tonumber(ARGV[1])
return 1
"""


async def test_a_caller_on_several_masters_that_stops_waiting_leaves_the_others_alone(
    engine: RedisEngine, cluster_client: RedisCluster, cluster_prefix: str
) -> None:
    """A caller cancelled while one master is busy: its replies are dropped when they come;
    the next callers on both masters get theirs."""
    slow, fast = list(keys_on_each_master(cluster_client, f"{cluster_prefix}:c").values())[:2]
    batcher = batcher_of(engine)
    busy = ("EVAL", BUSY, 1, slow, 300_000)  # holds its master for 0.3 s
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0.1):
            await batcher.execute(busy, ("SET", fast, "1"))
        raise AssertionError("the busy master answered within 0.1 s")
    assert await batcher.execute(("SET", slow, "2"), ("GET", fast)) == [True, b"1"]
    assert await batcher.execute(("GET", slow)) == [b"2"]


async def test_acknowledgements_go_to_each_streams_master_and_follow_a_moved_slot(
    engine: RedisEngine,
    own_cluster: LocalCluster,
    cluster_client: RedisCluster,
    cluster_prefix: str,
) -> None:
    batcher = batcher_of(engine)
    streams = list(keys_on_each_master(cluster_client, cluster_prefix).values())
    pending: dict[str, list[str]] = {}
    for stream in streams:
        pending[stream] = await pending_entries(cluster_client, stream, 3)
    moving = streams[0]  # its slot moves before its acknowledgements: MOVED, then its new master
    slot = slot_of(moving)
    target = next(port for port in own_cluster.masters() if port != own_cluster.owner(slot))
    own_cluster.move_slot(slot, target)

    await asyncio.gather(
        *(batcher.acknowledge(s, "g", entry_id) for s in streams for entry_id in pending[s])
    )
    for stream in streams:
        assert (await cluster_client.xpending(stream, "g"))["pending"] == 0
    assert batcher.topology.node_of(("XACK", moving)).port == target
