"""What a failover loses on a Redis Cluster, and how it shows.

Replication is asynchronous: a write a master acknowledged and had not yet sent to its replica
is gone when the replica takes over. These tests make that happen on purpose (the replica is
stopped and its link cut while the master takes the write, then the master is killed) and check
that the loss shows rather than leaving anything stuck unseen (docs/cluster.md, "Failover")."""

import asyncio

import pytest

from by_framework import (
    AgentState,
    GatewayClient,
    Settings,
    TaskNotFoundError,
    TaskTimeoutError,
)
from by_framework.redis.keys import KeySpace
from tests.agents import EchoAgent
from tests.support import LocalCluster, final_result, running_worker


def masters_of(client: GatewayClient, cluster: LocalCluster, prefix: str) -> tuple[int, str, int]:
    """The master of the echo control stream, and a session whose keys are on another one, not
    the worker registry's either (and that one)."""
    redis = client.engine.redis
    keys = KeySpace(prefix)
    stream_master = cluster.owner(redis.keyslot(keys.agent_type_stream("echo")))
    registry_master = cluster.owner(redis.keyslot(keys.worker_online("w")))
    for n in range(1000):
        session = f"s{n}"
        session_master = cluster.owner(redis.keyslot(keys.session_registry(session)))
        if session_master not in (stream_master, registry_master):
            return stream_master, session, session_master
    raise AssertionError("no session off the stream's and the registry's masters")


async def test_a_lost_command_leaves_its_task_queued_in_sight_and_a_cancel_ends_it(
    client: GatewayClient, cluster_settings: Settings, own_cluster: LocalCluster
) -> None:
    stream_master, session, _ = masters_of(client, own_cluster, cluster_settings.key_prefix)
    stream = KeySpace(cluster_settings.key_prefix).agent_type_stream("echo")
    async with running_worker(EchoAgent(), cluster_settings, worker_id="w", max_concurrency=1):
        busy = await client.send_message("echo", session, {"sleep": 3})  # holds the one slot
        await asyncio.sleep(0.5)
        stalled = own_cluster.stall_replicas(stream_master)
        lost = await client.send_message("echo", session, "lost")  # acknowledged by the master
        await asyncio.to_thread(own_cluster.kill_master, stream_master, stalled)
        try:
            # The task before the failover completes: its entry had reached the replica.
            busy_result = await final_result(client, busy.message_id, timeout=30)
            assert busy_result.status is AgentState.COMPLETED
            # The command is gone; its record, on another master, says queued: listed with the
            # session's tasks, and whoever waits for its result is told it did not end in time.
            entries = [fields[b"e"] for _, fields in await client.engine.redis.xrange(stream)]
            assert not any(lost.message_id.encode() in entry for entry in entries)
            listed = {t.message_id: t.status for t in await client.list_session_tasks(session)}
            assert listed[lost.message_id] is AgentState.QUEUED
            with pytest.raises((TaskTimeoutError, TaskNotFoundError)):  # the task index may
                await client.wait_for_result(lost.message_id, timeout=2)  # have gone too
            await client.cancel_task(lost.message_id, session, reason="lost in a failover")
            listed = {t.message_id: t.status for t in await client.list_session_tasks(session)}
            assert listed[lost.message_id] is AgentState.CANCELLED
        finally:
            own_cluster.restart(stream_master)


async def test_a_lost_record_is_written_again_from_its_command(
    client: GatewayClient, cluster_settings: Settings, own_cluster: LocalCluster
) -> None:
    _, session, session_master = masters_of(client, own_cluster, cluster_settings.key_prefix)
    async with running_worker(EchoAgent(), cluster_settings, worker_id="w", max_concurrency=1):
        # Busy past the failover: the run that rebuilds the record starts after it is seen gone.
        busy = await client.send_message("echo", f"{session}-busy", {"sleep": 6})
        await asyncio.sleep(0.5)
        stalled = own_cluster.stall_replicas(session_master)
        kept = await client.send_message("echo", session, "kept")  # its record: on the master
        await asyncio.to_thread(own_cluster.kill_master, session_master, stalled)
        try:
            listed = await client.list_session_tasks(session)
            assert kept.message_id not in {t.message_id for t in listed}  # the record is gone
            await final_result(client, busy.message_id, timeout=30)
            async with asyncio.timeout(30):  # ...and is made again by its run
                while True:
                    listed = await client.list_session_tasks(session)
                    record = next((t for t in listed if t.message_id == kept.message_id), None)
                    if record is not None and record.status is AgentState.COMPLETED:
                        break
                    await asyncio.sleep(0.05)
            assert record.result is not None and record.result.content == "kept"
        finally:
            own_cluster.restart(session_master)


async def test_a_lost_end_of_run_leaves_the_task_running_in_sight_until_a_cancel(
    client: GatewayClient, cluster_settings: Settings, own_cluster: LocalCluster
) -> None:
    """The record's end is lost with the session's master while the command's acknowledgement,
    on another master, is kept: nothing will run the task again, and it shows as running under
    its live worker, until a cancel: that worker holds no run of it and ends it CANCELLED."""
    _, session, session_master = masters_of(client, own_cluster, cluster_settings.key_prefix)
    stream = KeySpace(cluster_settings.key_prefix).agent_type_stream("echo")
    group = cluster_settings.consumer_group
    async with running_worker(EchoAgent(), cluster_settings, worker_id="w"):
        sent = await client.send_message("echo", session, {"sleep": 1})
        async with asyncio.timeout(10):
            while (await client.list_session_tasks(session))[0].status is not AgentState.RUNNING:
                await asyncio.sleep(0.05)
        own_cluster.wait_replicated(session_master)
        stalled = own_cluster.stall_replicas(session_master)
        async with asyncio.timeout(10):  # ended on the master, acknowledged on the other
            while (await client.list_session_tasks(session))[0].status is AgentState.RUNNING:
                await asyncio.sleep(0.05)
            while (await client.engine.redis.xpending(stream, group))["pending"]:
                await asyncio.sleep(0.05)
        await asyncio.to_thread(own_cluster.kill_master, session_master, stalled)
        try:
            (record,) = await client.list_session_tasks(session)
            assert record.message_id == sent.message_id
            assert (record.status, record.worker_id) == (AgentState.RUNNING, "w")
            assert (await client.engine.redis.xpending(stream, group))["pending"] == 0
            with pytest.raises((TaskTimeoutError, TaskNotFoundError)):
                await client.wait_for_result(sent.message_id, timeout=2)
            await client.cancel_task(sent.message_id, session, reason="lost in a failover")
            async with asyncio.timeout(10):
                while (await client.list_session_tasks(session))[0].status is AgentState.RUNNING:
                    await asyncio.sleep(0.05)
            (record,) = await client.list_session_tasks(session)
            assert (record.status, record.error) == (AgentState.CANCELLED, "lost in a failover")
        finally:
            own_cluster.restart(session_master)
