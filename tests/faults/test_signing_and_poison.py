"""With a signing key, only signed commands run: unsigned, forged and altered ones are
dead-lettered. Poison entries mixed into good ones never stop the queue."""

import asyncio
import json
import random

from redis.asyncio import Redis

from by_framework import AgentState, GatewayClient, Settings
from by_framework.protocol import AskAgentCommand, MessageHeader, encode_command
from by_framework.protocol.signing import sign
from by_framework.redis.keys import KeySpace
from tests.agents import EchoAgent
from tests.faults.test_reclaim import tally
from tests.support import eventually, running_worker, wait_all

KEY = "s3cret-signing-key"


async def test_only_signed_commands_run_when_signing_is_on(
    redis: Redis, settings: Settings
) -> None:
    signed_settings = Settings.model_validate({**settings.model_dump(), "signing_key": KEY})
    signer = GatewayClient(redis, settings=signed_settings)
    plain = GatewayClient(redis, settings=settings)
    stream = KeySpace(settings.key_prefix).agent_type_stream("echo")
    dead_letters = KeySpace(settings.key_prefix).dead_letter_stream()
    header = MessageHeader(session_id="s-sign", target_agent_type="echo")
    envelope = encode_command(header, AskAgentCommand(content="forged"))
    altered = envelope.replace(b"forged", b"altered")
    try:
        async with running_worker(EchoAgent(), signed_settings):
            good = await signer.send_message("echo", "s-sign", "signed")
            unsigned = await plain.send_message("echo", "s-sign", "unsigned")
            await redis.xadd(stream, {b"e": envelope})  # no signature
            await redis.xadd(stream, {b"e": envelope, b"s": sign(envelope, b"other-key", stream)})
            await redis.xadd(stream, {b"e": altered, b"s": sign(envelope, KEY.encode(), stream)})
            result = await signer.wait_for_result(good.message_id, timeout=10)

            async def four_dead_lettered() -> bool:
                return await redis.xlen(dead_letters) >= 4

            await eventually(four_dead_lettered, what="the four refused commands dead-lettered")
    finally:
        await signer.aclose()
        await plain.aclose()
    assert result.content == "signed"
    unsigned_record = await signer.get_task(unsigned.message_id)
    assert unsigned_record is not None and unsigned_record.status is AgentState.QUEUED
    dead = await redis.xrange(dead_letters)
    reasons = sorted(fields[b"reason"].decode().split(":")[0] for _, fields in dead)
    assert reasons == ["bad signature", "bad signature", "unsigned command", "unsigned command"]
    assert await redis.xpending(stream, settings.consumer_group) == {
        "pending": 0, "min": None, "max": None, "consumers": []
    }  # fmt: skip


async def test_poison_mixed_into_a_thousand_good_commands(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    stream = KeySpace(settings.key_prefix).agent_type_stream("echo")
    dead_letters = KeySpace(settings.key_prefix).dead_letter_stream()
    rng = random.Random(7)
    poison = [
        {b"e": b"\xff\xfe not json"},
        {b"junk": b"1"},
        {b"e": json.dumps({"v": 1, "header": {"session_id": "p"}}).encode()},
        {b"e": json.dumps({"v": 1, "header": {"session_id": "p", "target_agent_type": "echo"},
                           "command": {"type": "ask_agent", "wait_for_reply": [1]}}).encode()},
    ]  # fmt: skip
    sends = []
    poisoned = 0
    async with running_worker(EchoAgent(), settings):
        for first in range(0, 1000, 50):
            sends += await asyncio.gather(
                *(client.send_message("echo", f"s{i % 20}", {"n": i})
                  for i in range(first, first + 50))
            )  # fmt: skip
            for _ in range(rng.randint(0, 5)):
                await redis.xadd(stream, rng.choice(poison))
                poisoned += 1
        results = await wait_all(client, sends, timeout=60)

        async def all_poison_dead_lettered() -> bool:
            return await redis.xlen(dead_letters) >= poisoned

        await eventually(all_poison_dead_lettered, what=f"{poisoned} entries dead-lettered")
    assert [r.content["n"] for r in results] == list(range(1000))
    counts = await tally(client, sends)
    assert (counts["completed"], counts["lost"], counts["duplicated"]) == (1000, 0, 0)
    dead = await redis.xlen(dead_letters)
    print(f"poison: {poisoned} entries dead-lettered: {dead}")
    assert dead == poisoned > 0
