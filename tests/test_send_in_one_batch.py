"""A send made soon after a worker was seen online goes in one batch: the record's claim, the
task index and the command together. On a cluster these reach their nodes in any order, so a
worker may read the command before its record exists: it writes the record with the command's
send id, and the send's claim then finds its own record, already run."""

import asyncio

from redis.asyncio import Redis

from by_framework import AgentState, GatewayClient, MessageHeader, Settings
from by_framework.protocol import AskAgentCommand, encode_command
from by_framework.protocol.codec import with_send_id
from by_framework.redis.keys import KeySpace
from tests.agents import EchoAgent
from tests.support import eventually, running_worker


async def test_a_command_come_before_its_record_runs_once_and_its_send_finds_it_sent(
    client: GatewayClient, redis: Redis, settings: Settings
) -> None:
    header = MessageHeader(session_id="s-early", target_agent_type="echo")
    envelope = encode_command(header, AskAgentCommand(content="early"))
    stamped = with_send_id(envelope, "send-1")
    assert stamped is not None
    stream = KeySpace(settings.key_prefix).send_stream("echo", "s-early")
    async with running_worker(EchoAgent(), settings):
        await client.send_message("echo", "s-warm", "seen online")  # the next send: one batch
        await redis.xadd(stream, {"e": stamped})  # the command, its record not written yet

        async def ran() -> bool:
            record = await client.engine.tasks.list_session("s-early")
            return bool(record) and record[0].status is AgentState.COMPLETED

        await eventually(ran, what="the early command to run")
        await client.engine.control.send(header, envelope, None, send_id="send-1")  # no error
        result = await client.wait_for_result(header.message_id, timeout=10)
        await asyncio.sleep(0.5)  # the batch's copy of the command reaches the worker: skipped
    assert result.content == "early"
    (record,) = await client.engine.tasks.list_session("s-early")
    assert (record.status, record.delivery_count) == (AgentState.COMPLETED, 1)
    events = await redis.xrange(KeySpace(settings.key_prefix).session_data_stream("s-early"))
    assert sum(b'"type":"end"' in fields[b"e"] for _, fields in events) == 1
