"""The record's stored layout: a record leaves out what is not set, and one written in the
earlier layout (every field, "" for not set) is still run, ended and read alike."""

import json

from redis.asyncio import Redis

from by_framework import AgentState, GatewayClient, MessageHeader, Settings
from by_framework.protocol import AskAgentCommand, encode_command
from by_framework.redis.keys import KeySpace
from by_framework.redis.records import new_record
from tests.agents import EchoAgent
from tests.support import running_worker

NOT_SET = {"parent_message_id", "task_group_id", "parent_span_id", "user_code", "metadata"}


async def stored(redis: Redis, settings: Settings, session_id: str, message_id: str) -> dict:
    registry = KeySpace(settings.key_prefix).session_registry(session_id)
    raw = await redis.hget(registry, message_id)
    assert raw is not None
    return dict(json.loads(raw))


async def test_a_record_leaves_out_what_is_not_set(
    client: GatewayClient, redis: Redis, settings: Settings
) -> None:
    async with running_worker(EchoAgent(), settings):
        sent = await client.send_message("echo", "s-layout", "hi")
        await client.wait_for_result(sent.message_id, timeout=10)
    fields = await stored(redis, settings, "s-layout", sent.message_id)
    assert not (NOT_SET | {"reply", "error"}) & fields.keys()
    record = await client.get_task(sent.message_id)
    assert record is not None and record.status is AgentState.COMPLETED
    assert (record.parent_message_id, record.user_code, record.error) == (None, None, None)
    assert record.metadata == {}


async def test_a_record_in_the_earlier_layout_runs_and_ends_alike(
    client: GatewayClient, redis: Redis, settings: Settings
) -> None:
    header = MessageHeader(session_id="s-earlier", target_agent_type="echo")
    earlier = json.loads(new_record(header, send_id="earlier-send"))
    earlier |= dict.fromkeys(NOT_SET, "") | {"metadata": {}, "reply": False}
    earlier |= {"delivery_count": 0, "run": 0}
    registry = KeySpace(settings.key_prefix).session_registry("s-earlier")
    await redis.hset(registry, header.message_id, json.dumps(earlier))
    envelope = encode_command(header, AskAgentCommand(content="old"))
    async with running_worker(EchoAgent(), settings):
        # The send that wrote it, retried: its own record, not delivered yet ("again").
        await client.engine.control.send(header, envelope, None, send_id="earlier-send")
        result = await client.wait_for_result(header.message_id, timeout=10)
    assert (result.status, result.content) == (AgentState.COMPLETED, "old")
    record = await client.get_task(header.message_id)
    assert record is not None and record.status is AgentState.COMPLETED
    assert (record.parent_message_id, record.error, record.delivery_count) == (None, None, 1)
    assert [state for state, _ in record.timeline] == [
        AgentState.QUEUED,
        AgentState.RUNNING,
        AgentState.COMPLETED,
    ]
