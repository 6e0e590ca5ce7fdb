"""Workers and clients on a real Redis Cluster: tasks complete, sub-calls return, a killed
worker's task is reclaimed by another, and a failover or a resharding mid-run leaves nothing
silently stuck."""

import asyncio
import os
import signal
import sys
from collections.abc import Callable

from redis.asyncio.cluster import RedisCluster

from by_framework import AgentState, GatewayClient, Settings
from by_framework.redis.keys import KeySpace
from tests.agents import EchoAgent, OrchestraAgent
from tests.support import (
    ROOT,
    LocalCluster,
    final_result,
    process_env,
    running_worker,
    spawn,
    wait_all,
    wait_online,
    worker_process,
)


async def test_tasks_of_many_sessions_complete(
    client: GatewayClient, cluster_settings: Settings
) -> None:
    async with running_worker(EchoAgent(), cluster_settings, worker_id="echo-1"):
        sends = [await client.send_message("echo", f"s{n}", f"hello {n}") for n in range(20)]
        results = await wait_all(client, sends, timeout=30)
    assert [r.content for r in results] == [f"hello {n}" for n in range(20)]


async def test_a_sent_tasks_index_is_in_its_sessions_slot(
    client: GatewayClient, cluster_client: RedisCluster, cluster_settings: Settings
) -> None:
    """By the cluster's own CLUSTER KEYSLOT: a send writes to the session's master and the
    agent type's only (its id was placed, keys.py)."""
    keys = KeySpace(cluster_settings.key_prefix)
    async with running_worker(EchoAgent(), cluster_settings, worker_id="echo-slots"):
        sends = [await client.send_message("echo", f"slot-{n}", "hi") for n in range(20)]
        await wait_all(client, sends, timeout=30)
    for sent in sends:
        index, registry = keys.task_index(sent.message_id), keys.session_registry(sent.session_id)
        slots = [await cluster_client.cluster_keyslot(key) for key in (index, registry)]
        assert slots[0] == slots[1]
        assert await cluster_client.get(index) == sent.session_id.encode()


async def test_a_worker_started_with_redis_cluster_and_one_node_serves(
    client: GatewayClient, cluster_settings: Settings
) -> None:
    """``--redis-cluster --redis-host H --redis-port P``: one node is enough to find the rest."""
    node = str(cluster_settings.redis_url).removeprefix("redis+cluster://").split(",")[0]
    host, port = node.rsplit(":", 1)
    env = process_env(cluster_settings)
    del env["REDIS_URL"]  # the flags alone say where the cluster is
    worker = spawn(
        [sys.executable, "-m", "by_framework", "--worker-class", "tests.agents.EchoAgent",
         "--worker-id", "by-node", "--key-prefix", cluster_settings.key_prefix,
         "--redis-cluster", "--redis-host", host, "--redis-port", port],
        ROOT, env,
    )  # fmt: skip
    try:
        await wait_online(client, "by-node")
        (result,) = await wait_all(client, [await client.send_message("echo", "node", "hi")])
        assert result.content == "hi"
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


async def test_sub_calls_and_groups_return_across_nodes(
    client: GatewayClient, cluster_settings: Settings
) -> None:
    async with (
        running_worker(OrchestraAgent(), cluster_settings, worker_id="orchestra"),
        running_worker(EchoAgent(), cluster_settings, worker_id="echo"),
    ):
        chain = await client.send_message(
            "planner", "s-chain", {"op": "chain", "via": ["helper", "planner", "helper"]}
        )
        fanout = await client.send_message(
            "planner", "s-fan", {"op": "fanout", "n": 6, "targets": ["echo", "helper"]}
        )
        chained = await final_result(client, chain.message_id, timeout=30)
        fanned = await final_result(client, fanout.message_id, timeout=30)
    assert chained.status is AgentState.COMPLETED
    assert "at" in chained.content["inner"]["inner"]["inner"]  # three calls deep
    assert fanned.status is AgentState.COMPLETED
    assert len(fanned.content["results"]) == 6


async def test_a_killed_workers_task_is_reclaimed_by_another(
    client: GatewayClient, cluster_settings: Settings
) -> None:
    doomed = worker_process(cluster_settings, "doomed", "tests.agents.EchoAgent")
    try:
        await wait_online(client, "doomed")
        sent = await client.send_message("echo", "s-kill", {"sleep": 1.5})
        async with asyncio.timeout(10):
            while (record := await client.get_task(sent.message_id)) is None or (
                record.status is not AgentState.RUNNING
            ):
                await asyncio.sleep(0.05)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        async with running_worker(EchoAgent(), cluster_settings, worker_id="heir"):
            result = await final_result(client, sent.message_id, timeout=30)
    finally:
        if doomed.poll() is None:
            doomed.kill()
    assert result.status is AgentState.COMPLETED
    assert result.data["pid"] == os.getpid()  # run again by the heir, in this process


async def run_through(
    client: GatewayClient, settings: Settings, disruption: Callable[[], object]
) -> list[AgentState]:
    """Tasks sent before, during and after the disruption (run in a thread) with a worker
    serving throughout: the status each ended with."""
    async with running_worker(EchoAgent(), settings, worker_id="steady"):
        sends = [
            await client.send_message("echo", f"s{n % 6}", {"sleep": 0.05, "n": n})
            for n in range(20)
        ]
        disrupted = asyncio.create_task(asyncio.to_thread(disruption))
        n = 20
        while not disrupted.done():
            sends.append(await client.send_message("echo", f"s{n % 6}", {"n": n}))
            n += 1
            await asyncio.sleep(0.05)
        await disrupted
        sends += [
            await client.send_message("echo", f"s{n % 6}", {"n": n}) for n in range(n, n + 20)
        ]
        results = [await final_result(client, sent.message_id, timeout=60) for sent in sends]
    return [result.status for result in results]


async def test_tasks_complete_through_a_resharding_of_their_slots(
    client: GatewayClient, cluster_settings: Settings, own_cluster: LocalCluster
) -> None:
    keys = KeySpace(cluster_settings.key_prefix)
    moving = [keys.agent_type_stream("echo"), keys.session_data_stream("s1")]

    def reshard() -> None:
        for key in moving:
            slot = client.engine.redis.keyslot(key)
            source = own_cluster.owner(slot)
            own_cluster.move_slot(slot, next(p for p in own_cluster.masters() if p != source))

    statuses = await run_through(client, cluster_settings, reshard)
    assert set(statuses) == {AgentState.COMPLETED}


async def test_tasks_complete_through_a_failover_of_their_master(
    client: GatewayClient, cluster_settings: Settings, own_cluster: LocalCluster
) -> None:
    stream = KeySpace(cluster_settings.key_prefix).agent_type_stream("echo")
    master = own_cluster.owner(client.engine.redis.keyslot(stream))
    try:
        statuses = await run_through(
            client, cluster_settings, lambda: own_cluster.kill_master(master)
        )
    finally:
        own_cluster.restart(master)
    assert set(statuses) == {AgentState.COMPLETED}
