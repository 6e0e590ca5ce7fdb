"""Malformed stream entries: a clear error, moved aside, and the worker keeps serving."""

import asyncio
import json
import uuid

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from by_framework import ErrorEvent, GatewayClient, Settings
from by_framework.protocol import MalformedEntry, decode_command, decode_event
from by_framework.redis.keys import KeySpace
from tests.agents import EchoAgent
from tests.support import eventually, running_worker

GOOD_HEADER = {"session_id": "s-bad", "target_agent_type": "echo", "message_id": "poison-1"}


def entry(body: object) -> dict[bytes, bytes]:
    return {b"e": json.dumps(body).encode()}


async def test_poison_entries_are_dead_lettered_and_the_queue_keeps_flowing(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    keys = KeySpace(settings.key_prefix)
    stream = keys.agent_type_stream("echo")
    poison = [
        {b"e": b"{definitely not json"},
        {b"payload": b"no envelope field"},
        entry({"v": 1, "header": GOOD_HEADER, "command": {"type": "format_disk"}}),
        entry({"v": 1, "header": {"session_id": "s-bad"}, "command": {"type": "ask_agent"}}),
        entry({"v": 7, "header": GOOD_HEADER, "command": {"type": "ask_agent"}}),
        entry({"v": 1, "header": GOOD_HEADER,
               "command": {"type": "ask_agent", "content": "x" * 5000}}),
        entry({"v": 1, "header": GOOD_HEADER,
               "command": {"type": "cancel_task", "message_ids": "not a list"}}),
        # valid commands that are not tasks, on a queue of tasks: never run as one
        entry({"v": 1, "header": GOOD_HEADER,
               "command": {"type": "query", "name": "get_state", "reply_to": "r-1"}}),
        entry({"v": 1, "header": GOOD_HEADER,
               "command": {"type": "drain_worker", "worker_id": "w", "instance": "i"}}),
        # a worker's own markers, where they never go: entries like any other, not obeyed
        {b"wake": b"1"},
        {b"n": b"some-child"},
    ]  # fmt: skip
    async with running_worker(EchoAgent(), settings, max_entry_bytes=4096):
        before = await client.send_message("echo", "s-good", "before")
        for fields in poison:
            await redis.xadd(stream, fields)
        after = await client.send_message("echo", "s-good", "after")
        assert (await client.wait_for_result(after.message_id, timeout=10)).content == "after"
        assert (await client.wait_for_result(before.message_id, timeout=10)).content == "before"
        errors = await _errors(client, "s-bad", 7)
    dead = sorted(
        await redis.xrange(keys.dead_letter_stream()),
        key=lambda item: tuple(map(int, item[1][b"entry_id"].split(b"-"))),
    )
    assert len(dead) == len(poison)
    reasons = [fields[b"reason"].decode() for _, fields in dead]
    assert "malformed entry" in reasons[0]
    assert "no 'e' field" in reasons[1]
    assert "command" in reasons[2]
    assert "target_agent_type" in reasons[3]
    assert "unsupported envelope version 7" in reasons[4]
    assert "over the 4096-byte limit" in reasons[5]
    assert "command.cancel_task.message_ids" in reasons[6]
    assert reasons[7:9] == [
        f"{kind} commands belong on a worker's notice stream" for kind in ("query", "drain_worker")
    ]
    assert all("no 'e' field" in reason for reason in reasons[9:])
    # Nothing is lost: the original fields travel with the reason.
    assert dead[0][1][b"field:e"] == b"{definitely not json"
    assert all(fields[b"stream"].decode() == stream for _, fields in dead)
    # The entries whose session could be read told that session.
    assert len(errors) == 7 and all("rejected" in e for e in errors)
    # Every entry was acknowledged: nothing is left pending.
    pending = await redis.xpending(stream, settings.consumer_group)
    assert pending["pending"] == 0


async def _errors(client: GatewayClient, session_id: str, expected: int) -> list[str]:
    found: list[str] = []
    async for item in client.events(session_id, timeout=5):
        if isinstance(item.event, ErrorEvent):
            found.append(item.event.error)
            if len(found) == expected:
                break
    return found


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
envelope_like = st.fixed_dictionaries(
    {},
    optional={
        "v": st.integers(-1, 3) | json_values,
        "header": st.fixed_dictionaries(
            {}, optional={k: json_values | st.text() for k in
                          ("session_id", "target_agent_type", "message_id", "metadata")}
        ) | json_values,
        "command": st.fixed_dictionaries(
            {}, optional={"type": st.sampled_from(["ask_agent", "resume", "x"]) | json_values,
                          "content": json_values, "wait_for_reply": json_values}
        ) | json_values,
    },
)  # fmt: skip


@given(
    st.one_of(
        st.binary(max_size=300).map(lambda raw: {b"e": raw}),
        envelope_like.map(lambda body: {b"e": json.dumps(body).encode()}),
        st.dictionaries(st.binary(max_size=5), st.binary(max_size=20), max_size=3),
    )
)
@hypothesis_settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_the_decoder_accepts_or_names_the_problem_for_any_entry(
    fields: dict[bytes, bytes],
) -> None:
    try:
        envelope = decode_command(fields)
    except MalformedEntry as exc:
        assert exc.reason
    else:
        assert envelope.header.session_id.strip()
        assert envelope.header.target_agent_type.strip()


event_like = st.fixed_dictionaries(
    {},
    optional={
        "v": st.integers(-1, 3) | json_values,
        "message_id": st.text() | json_values,
        "seq": st.integers(-2, 5) | json_values,
        "ts": st.floats(allow_nan=False) | json_values,
        "stream_id": json_values,
        "event": st.fixed_dictionaries(
            {}, optional={"type": st.sampled_from(["chunk", "state", "end", "x"]) | json_values,
                          "content": json_values, "state": json_values, "status": json_values}
        ) | json_values,
    },
)  # fmt: skip


@given(
    st.one_of(
        st.binary(max_size=300).map(lambda raw: {b"e": raw}),
        json_values.map(lambda body: {b"e": json.dumps(body).encode()}),
        event_like.map(lambda body: {b"e": json.dumps(body).encode()}),
    )
)
@hypothesis_settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_the_event_decoder_accepts_or_names_the_problem_for_any_entry(
    fields: dict[bytes, bytes],
) -> None:
    try:
        event = decode_event("7-1", fields)
    except MalformedEntry as exc:
        assert exc.reason.startswith("malformed entry: ")
    else:
        assert event.stream_id == "7-1"  # where it was read, whatever the entry says


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=200).map(lambda raw: {b"e": raw}),
            envelope_like.map(lambda body: {b"e": json.dumps(body).encode()}),
            st.dictionaries(st.binary(min_size=1, max_size=5), st.binary(max_size=20),
                            min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=15,
    )
)  # fmt: skip
@hypothesis_settings(max_examples=12, deadline=None)
def test_a_worker_fed_random_entries_settles_every_one_and_keeps_serving(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, entries: list[dict[bytes, bytes]]
) -> None:
    asyncio.run(_random_entries_scenario(redis_url, str(tmp_path_factory.mktemp("ws")), entries))


def _refused(fields: dict[bytes, bytes]) -> bool:
    """Whether the decoder refuses the entry: a worker dead-letters exactly those."""
    try:
        decode_command(fields)
    except MalformedEntry:
        return True
    return False


async def _random_entries_scenario(
    redis_url: str, workspace: str, entries: list[dict[bytes, bytes]]
) -> None:
    prefix = f"test-hyp-{uuid.uuid4().hex[:10]}"
    settings = Settings.resolve(
        redis_url=redis_url, key_prefix=prefix, workspace_dir=workspace,
        heartbeat_interval=0.2, heartbeat_ttl=1.0, lease_seconds=1.5, sweep_interval=0.5,
    )  # fmt: skip
    redis = Redis.from_url(redis_url)
    client = GatewayClient(redis, settings=settings)
    stream = KeySpace(prefix).agent_type_stream("echo")
    try:
        async with running_worker(EchoAgent(), settings):
            for fields in entries:
                await redis.xadd(stream, fields)
            sentinel = await client.send_message("echo", "s-hyp", "still serving")
            result = await client.wait_for_result(sentinel.message_id, timeout=10)
            assert result.content == "still serving"

            async def settled() -> bool:  # every entry: run, or dead-lettered; none pending
                return (await redis.xpending(stream, settings.consumer_group))["pending"] == 0

            await eventually(settled, timeout=5, what="every entry settled")
        dead = await redis.xlen(KeySpace(prefix).dead_letter_stream())
        assert dead == sum(1 for fields in entries if _refused(fields))
    finally:
        await client.aclose()
        async for key in redis.scan_iter(match=f"{prefix}:*"):
            await redis.delete(key)
        await redis.aclose()
