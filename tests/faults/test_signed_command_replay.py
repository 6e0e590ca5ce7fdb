"""A signed command binds the stream it was written to and the time it was issued: a copy on
another stream, an entry older than ``command_max_age``, and a replay of an old entry's bytes
(its execution record gone) are dead-lettered, never run. A dead letter replayed with the key
gets a fresh signature; without the key, the replay says so."""

import asyncio
import time

import pytest
from redis.asyncio import Redis

from by_framework import AgentState, GatewayClient, Settings
from by_framework.protocol import AskAgentCommand, MessageHeader, encode_command
from by_framework.protocol.signing import sign
from by_framework.redis.dead_letter import DeadLetterReplayError, DeadLetters
from by_framework.redis.keys import KeySpace
from tests.agents import EchoAgent, ShowcaseAgent
from tests.faults.test_reclaim import kill, stop_all
from tests.support import running_worker, wait_online, worker_process

KEY = "replay-signing-key"


def signed(settings: Settings, **overrides: object) -> Settings:
    return Settings.model_validate({**settings.model_dump(), "signing_key": KEY, **overrides})


async def dead_reasons(redis: Redis, settings: Settings, count: int) -> list[str]:
    """The reasons of the first ``count`` dead letters, waiting up to 10 s for them."""
    stream = KeySpace(settings.key_prefix).dead_letter_stream()
    async with asyncio.timeout(10):
        while len(dead := await redis.xrange(stream)) < count:
            await asyncio.sleep(0.05)
    return [fields[b"reason"].decode() for _, fields in dead]


async def test_a_signed_entry_copied_to_another_stream_is_dead_lettered(
    redis: Redis, settings: Settings
) -> None:
    settings = signed(settings)
    keys = KeySpace(settings.key_prefix)
    client = GatewayClient(redis, settings=settings)
    try:
        async with running_worker(ShowcaseAgent(), settings):
            sent = await client.send_message("showcase", "s-copy", {"sleep": 0.5})  # still pending
            ((_, fields),) = await redis.xrange(keys.agent_type_stream("showcase"))
            await redis.xadd(keys.agent_type_stream("showcase-b"), fields)
            result = await client.wait_for_result(sent.message_id, timeout=10)
            (reason,) = await dead_reasons(redis, settings, 1)
    finally:
        await client.aclose()
    assert result.status is AgentState.COMPLETED
    assert reason.startswith("signed for another stream"), reason
    assert keys.agent_type_stream("showcase") in reason, reason


async def test_an_expired_entry_is_dead_lettered_and_replays_only_with_the_key(
    redis: Redis, settings: Settings
) -> None:
    settings = signed(settings, command_max_age=60)
    keys = KeySpace(settings.key_prefix)
    stream = keys.agent_type_stream("echo")
    header = MessageHeader(session_id="s-old", target_agent_type="echo")
    envelope = encode_command(header, AskAgentCommand(content="held back"))
    async with running_worker(EchoAgent(), settings):
        old = sign(envelope, KEY.encode(), stream, issued_at=time.time() - 3600)
        await redis.xadd(stream, {b"e": envelope, b"s": old})
        (reason,) = await dead_reasons(redis, settings, 1)
        (letter,) = await DeadLetters(redis, keys, settings.consumer_group).list()
        keyless = DeadLetters(redis, keys, settings.consumer_group)
        with pytest.raises(DeadLetterReplayError, match="BYAI_SIGNING_KEY"):
            await keyless.replay(letter.id)
        keyed = DeadLetters(
            redis, keys, settings.consumer_group, signing_key=settings.signing_key_bytes
        )
        await keyed.replay(letter.id)
        registry = keys.session_registry("s-old")
        async with asyncio.timeout(10):  # a bare entry has no task index: read its record
            while b'"completed"' not in (await redis.hget(registry, header.message_id) or b""):
                await asyncio.sleep(0.05)
    assert reason.startswith("expired"), reason
    assert await DeadLetters(redis, keys, settings.consumer_group).list() == []


async def test_replaying_an_entry_after_the_window_is_refused(
    redis: Redis, settings: Settings
) -> None:
    """The attack the window closes: the record that made a re-added entry a duplicate has
    expired (deleted here), and the entry's bytes are added again."""
    settings = signed(settings, command_max_age=2)
    keys = KeySpace(settings.key_prefix)
    stream = keys.agent_type_stream("echo")
    client = GatewayClient(redis, settings=settings)
    try:
        async with running_worker(EchoAgent(), settings):
            sent = await client.send_message("echo", "s-replay", {"sleep": 0.3})
            ((_, fields),) = await redis.xrange(stream, count=1)  # still pending
            first = await client.wait_for_result(sent.message_id, timeout=10)
            await redis.delete(keys.session_registry("s-replay"), keys.task_index(sent.message_id))
            await asyncio.sleep(2.1)
            await redis.xadd(stream, fields)
            (reason,) = await dead_reasons(redis, settings, 1)
            record = await client.get_task(sent.message_id)
    finally:
        await client.aclose()
    assert first.content == {"sleep": 0.3}
    assert reason.startswith("expired"), reason
    assert record is None, f"the replayed entry ran again: {record}"


async def test_a_signed_entry_reclaimed_after_the_window_still_runs(
    redis: Redis, settings: Settings
) -> None:
    """The window runs from signing to when Redis added the entry, not to when it is read: a
    task whose worker dies once the window has passed is reclaimed and run, not refused."""
    settings = signed(settings, command_max_age=1)
    env = {"BYAI_SIGNING_KEY": KEY, "BYAI_COMMAND_MAX_AGE": "1"}
    client = GatewayClient(redis, settings=settings)
    victim = worker_process(settings, "victim", env=env)
    survivor = None
    try:
        await wait_online(client, "victim")
        sent_at = time.monotonic()
        sent = await client.send_message("echo", "s-late", {"sleep": 3.0})
        survivor = worker_process(settings, "survivor", env=env)
        await wait_online(client, "survivor")
        await asyncio.sleep(max(0.0, 1.5 - (time.monotonic() - sent_at)))  # past the window
        running = await client.get_task(sent.message_id)
        assert running is not None and running.worker_id == "victim", running
        assert running.status is AgentState.RUNNING, "ended before the kill"
        kill(victim)
        result = await client.wait_for_result(sent.message_id, timeout=30)
        record = await client.get_task(sent.message_id)
    finally:
        await client.aclose()
        stop_all(*(p for p in (victim, survivor) if p is not None))
    assert result.status is AgentState.COMPLETED, result
    assert record is not None and record.worker_id == "survivor"
    assert await redis.xlen(KeySpace(settings.key_prefix).dead_letter_stream()) == 0
