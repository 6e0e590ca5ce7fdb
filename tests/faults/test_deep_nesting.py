"""An entry nested 1,000 levels deep, among good commands, reaches a real worker process: it is
dead-lettered with a reason (signing off and on), the queue keeps flowing, and the control
stream, no longer pinned by a pending entry, is trimmed again."""

import asyncio
import json

import pytest
from redis.asyncio import Redis

from by_framework import AgentState, GatewayClient, Settings
from by_framework.protocol.signing import sign
from by_framework.redis.keys import KeySpace
from tests.faults.test_reclaim import stop_all
from tests.support import output_of, wait_all, wait_online, worker_process

KEY = "deep-signing-key"
DEPTH = 1_000


def deep_entry(message_id: str) -> bytes:
    """A command whose content is ``DEPTH`` nested lists: deeper than Python's json will go."""
    header = {"session_id": "s-deep", "target_agent_type": "echo", "message_id": message_id}
    content = "[" * DEPTH + "]" * DEPTH
    return b'{"v":1,"header":%s,"command":{"type":"ask_agent","content":%s}}' % (
        json.dumps(header).encode(),
        content.encode(),
    )


async def dead_letters_for(redis: Redis, stream: str, entry_ids: set[bytes]) -> dict[bytes, str]:
    """Waits (10 s at most) until every one of ``entry_ids`` is dead-lettered; their reasons."""
    reasons: dict[bytes, str] = {}
    async with asyncio.timeout(10):
        while set(reasons) != entry_ids:
            await asyncio.sleep(0.1)
            for _, fields in await redis.xrange(stream):
                if fields[b"entry_id"] in entry_ids:
                    reasons[fields[b"entry_id"]] = fields[b"reason"].decode()
    return reasons


async def wait_trimmed(redis: Redis, stream: str) -> int:
    """Waits (10 s at most) until the sweep has trimmed the stream down to its last entry."""
    async with asyncio.timeout(10):
        while (length := await redis.xlen(stream)) > 1:
            await asyncio.sleep(0.1)
    return length


@pytest.mark.parametrize("signing", [False, True], ids=["unsigned", "signed"])
async def test_a_deeply_nested_entry_is_dead_lettered_and_the_stream_trimmed(
    redis: Redis, settings: Settings, signing: bool
) -> None:
    signed = {"signing_key": KEY} if signing else {}
    client = GatewayClient(
        redis, settings=Settings.model_validate({**settings.model_dump(), **signed})
    )
    keys = KeySpace(settings.key_prefix)
    stream = keys.agent_type_stream("echo")
    env = {"BYAI_SIGNING_KEY": KEY} if signing else {}
    worker = worker_process(settings, "deep-worker", env=env)
    try:
        await wait_online(client, "deep-worker")
        sends = [await client.send_message("echo", "s-good", {"n": n}) for n in range(10)]
        deep = deep_entry("deep-1")
        fields = {b"e": deep, b"s": sign(deep, KEY.encode(), stream)} if signing else {b"e": deep}
        poison = {await redis.xadd(stream, fields)}
        if signing:  # unsigned: rejected on its signature, before any parsing
            poison.add(await redis.xadd(stream, {b"e": deep_entry("deep-2")}))
        sends += [await client.send_message("echo", "s-good", {"n": n}) for n in range(10, 30)]
        results = await wait_all(client, sends, timeout=30)
        reasons = await dead_letters_for(redis, keys.dead_letter_stream(), poison)
        length = await wait_trimmed(redis, stream)
        pending = await redis.xpending(stream, settings.consumer_group)
    finally:
        await client.aclose()
        stop_all(worker)
    assert [r.content["n"] for r in results] == list(range(30)), output_of(worker)
    assert all(r.status is AgentState.COMPLETED for r in results)
    print(f"dead-lettered: {reasons}; stream length after the sweep: {length}")
    assert all(reason.strip() for reason in reasons.values())
    if signing:
        assert any(r.startswith("unsigned command") for r in reasons.values())
    assert pending["pending"] == 0
