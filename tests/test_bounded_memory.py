"""Nothing grows without bound: control streams are trimmed, never below what is still pending."""

import asyncio

from redis.asyncio import Redis

from by_framework import GatewayClient, Settings
from by_framework.redis.keys import KeySpace
from tests.agents import EchoAgent
from tests.support import eventually, running_worker, wait_all
from tests.test_slots import watching


async def test_control_streams_keep_only_what_a_consumer_still_needs(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    stream = KeySpace(settings.key_prefix).agent_type_stream("echo")
    async with running_worker(EchoAgent(), settings):
        before = [await client.send_message("echo", "s-trim", {"n": i}) for i in range(50)]
        await wait_all(client, before)
        # Long enough to be still running however slowly the machine gets through the rest.
        slow = await client.send_message("echo", "s-trim", {"sleep": 8})
        after = await asyncio.gather(
            *(client.send_message("echo", "s-trim", {"n": i}) for i in range(300))
        )
        await wait_all(client, after)
        await asyncio.sleep(settings.sweep_interval * 3)
        # The 50 before the slow task are gone; the slow one is pending, so it and what
        # follows it stay.
        assert await redis.xlen(stream) == 301
        entries = await redis.xrange(stream, count=1)
        (pending,) = await redis.xpending_range(stream, settings.consumer_group, "-", "+", 10)
        assert entries[0][0] == pending["message_id"]
        await client.wait_for_result(slow.message_id, timeout=20)
        await asyncio.sleep(settings.sweep_interval * 3)
        assert await redis.xlen(stream) <= 1  # all consumed: trimmed to at most the last one


async def test_a_stream_without_a_consumer_group_is_never_trimmed(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    stream = KeySpace(settings.key_prefix).agent_type_stream("nobody-yet")
    for i in range(5):
        await redis.xadd(stream, {"e": str(i)})
    async with running_worker(EchoAgent(), settings) as runner:
        assert await runner.engine.control.trim([stream]) == 0
    assert await redis.xlen(stream) == 5


async def test_crashed_workers_leave_the_membership_and_the_sets_expire(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    registry = client.registry
    token = await registry.acquire("ghost", 1)
    assert token is not None
    await registry.register("ghost", ["echo"], token, 1)  # then it "crashes": no heartbeat
    async with running_worker(EchoAgent(), settings, worker_id="alive"):
        assert await registry.workers_of("echo") == {"ghost", "alive"}
        await asyncio.sleep(1.0 + settings.sweep_interval * 3)
        assert await registry.workers_of("echo") == {"alive"}
        ttl = await redis.ttl(KeySpace(settings.key_prefix).agent_type_workers("echo"))
        assert 0 < ttl <= settings.record_ttl


async def test_a_runs_end_refreshes_the_ttls_only_of_a_task_sent_a_while_ago(
    redis: Redis, settings: Settings
) -> None:
    """With record_ttl 100 s, a run's end refreshes the session registry's and the task index's
    TTLs only for a task sent over a second (a hundredth of it) before: a younger one's send set
    them, and the EXPIREs are spared. Either way the record lives about record_ttl past its end."""
    own = settings.model_copy(update={"record_ttl": 100})
    client = GatewayClient(redis, settings=own)
    keys = KeySpace(own.key_prefix)

    async def ttls(session: str, message_id: str) -> tuple[int, int]:
        registry = await redis.pttl(keys.session_registry(session))
        return registry, await redis.pttl(keys.task_index(message_id))

    try:
        async with running_worker(EchoAgent(), own):
            young = await client.send_message("echo", "s-young", {"sleep": 0.5})
            await client.wait_for_result(young.message_id, timeout=10)
            assert all(ttl <= 99_500 for ttl in await ttls("s-young", young.message_id))
            old = await client.send_message("echo", "s-old", {"sleep": 1.5})
            await client.wait_for_result(old.message_id, timeout=10)

            async def refreshed() -> bool:  # the index's EXPIRE goes beside the XACK, just after
                return all(ttl > 98_500 for ttl in await ttls("s-old", old.message_id))

            await eventually(refreshed, timeout=5, what="the TTLs set again at the run's end")
    finally:
        await client.aclose()


async def test_a_session_stream_is_given_its_ttl_once_per_hundredth_of_it(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    """Twenty tasks of one session in a row: the stream's TTL is set by the first task's start
    alone (each start and end set it again before), and it stands at about data_stream_ttl."""
    stream = KeySpace(settings.key_prefix).session_data_stream("s-ttl")
    async with running_worker(EchoAgent(), settings), watching(redis, settings) as monitor:
        for n in range(20):
            sent = await client.send_message("echo", "s-ttl", {"n": n})
            await client.wait_for_result(sent.message_id, timeout=10)
    expires = [
        command
        for script in monitor.commands
        for command in script.run_by_script
        if command.name == b"EXPIRE" and command.args[1] == stream.encode()
    ]
    assert len(expires) == 1
    assert settings.data_stream_ttl * 0.99 <= await redis.ttl(stream) <= settings.data_stream_ttl


async def test_a_session_stream_deleted_mid_run_is_written_again_with_a_ttl(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    """The run's end, which would not set the TTL again so soon after its start, finds the
    stream gone and gives the one it writes a TTL: none is left to live for ever."""
    stream = KeySpace(settings.key_prefix).session_data_stream("s-gone")
    async with running_worker(EchoAgent(), settings):
        sent = await client.send_message("echo", "s-gone", {"sleep": 1})
        await eventually(lambda: redis.exists(stream), what="the run's start written")
        assert await redis.delete(stream) == 1
        await client.wait_for_result(sent.message_id, timeout=10)
    assert await redis.xlen(stream) >= 2  # its result and end
    assert 0 < await redis.ttl(stream) <= settings.data_stream_ttl
