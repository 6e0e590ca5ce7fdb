"""Hostile control entries fed to a live worker, signing off and on: deep nesting, huge numbers,
oversized content, invalid UTF-8, stray types. Each entry is run or dead-lettered with a reason
without waiting for a reclaim, and the control stream's pending list ends empty."""

import asyncio
import json
import uuid
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from by_framework import GatewayClient, Settings
from by_framework.protocol.signing import sign
from by_framework.redis.keys import KeySpace
from tests.agents import EchoAgent
from tests.support import running_worker

KEY = b"hostile-signing-key"
MAX_ENTRY_BYTES = 4096
SESSION = "s-hostile"


@dataclass(frozen=True)
class Hostile:
    """An entry to write: its envelope text around ``{id}`` (the message id, filled in when the
    entry is written), whether its header is valid, whether to sign it, or raw bytes instead."""

    text: str | None
    raw: bytes = b""
    valid_header: bool = False
    signed: bool = True

    def fields(self, message_id: str, stream: str) -> dict[bytes, bytes]:
        envelope = self.raw if self.text is None else self.text.replace("{id}", message_id).encode()
        if not self.signed:
            return {b"e": envelope}
        return {b"e": envelope, b"s": sign(envelope, KEY, stream)}


def envelope(v: str, header: str, command: str) -> str:
    return f'{{"v":{v},"header":{header},"command":{command}}}'


def deep(depth: int, opener: str) -> str:
    closer = "]" if opener == "[" else "}"
    inner = "[" if opener == "[" else '{"a":'
    return inner * depth + ("1" if opener == "{" else "") + closer * depth


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
).map(json.dumps)
fragments = st.one_of(
    json_values,
    st.builds(deep, st.integers(1, 3000), st.sampled_from(["[", "{"])),
    st.integers(1, 6000).map(lambda digits: "9" * digits),  # past int's 4,300-digit limit too
    st.sampled_from(["1e999", "-1e999", "18446744073709551616", '"\\ud800"', "{}", "[]"]),
    st.integers(0, 3 * MAX_ENTRY_BYTES).map(lambda size: json.dumps("x" * size)),
)
valid_header = json.dumps(
    {"session_id": SESSION, "target_agent_type": "echo", "message_id": "{id}"}
)
commands = st.one_of(
    fragments,
    fragments.map(lambda content: f'{{"type":"ask_agent","content":{content}}}'),
)
envelopes = st.one_of(
    st.builds(
        lambda command, signed: Hostile(
            envelope("1", valid_header, command),
            valid_header=True,
            signed=signed,
        ),
        commands,
        st.booleans(),
    ),
    st.builds(
        lambda v, header, command, signed: Hostile(
            envelope(v, header, command), signed=signed
        ),
        fragments,
        fragments,
        commands,
        st.booleans(),
    ),
    st.builds(lambda raw, signed: Hostile(None, raw=raw, signed=signed), st.binary(max_size=200),
              st.booleans()),
    fragments.map(lambda text: Hostile(text)),
)  # fmt: skip


@given(st.lists(envelopes, min_size=1, max_size=8), st.booleans())
@hypothesis_settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_hostile_entry_is_run_or_dead_lettered(
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    entries: list[Hostile],
    signing: bool,
) -> None:
    workspace = str(tmp_path_factory.mktemp("ws"))
    asyncio.run(_scenario(redis_url, workspace, entries, signing))


async def _scenario(redis_url: str, workspace: str, entries: list[Hostile], signing: bool) -> None:
    prefix = f"test-hostile-{uuid.uuid4().hex[:10]}"
    settings = Settings.resolve(
        redis_url=redis_url, key_prefix=prefix, workspace_dir=workspace,
        heartbeat_interval=0.2, heartbeat_ttl=1.0, lease_seconds=1.5, sweep_interval=0.5,
        max_entry_bytes=MAX_ENTRY_BYTES, signing_key=KEY.decode() if signing else None,
    )  # fmt: skip
    keys = KeySpace(prefix)
    stream = keys.agent_type_stream("echo")
    redis = Redis.from_url(redis_url)
    client = GatewayClient(redis, settings=settings)
    try:
        async with running_worker(EchoAgent(), settings):
            written = {}
            for entry in entries:
                message_id = f"hostile-{uuid.uuid4().hex}"
                entry_id = await redis.xadd(stream, entry.fields(message_id, stream))
                written[entry_id] = message_id if entry.valid_header else None
            sentinel = await client.send_message("echo", "s-sentinel", "still serving")
            result = await client.wait_for_result(sentinel.message_id, timeout=10)
            assert result.content == "still serving"
            await _settled(redis, stream, settings)
        reasons = {
            fields[b"entry_id"]: fields[b"reason"]
            for _, fields in await redis.xrange(keys.dead_letter_stream())
        }
        for entry_id, message_id in written.items():
            if entry_id in reasons:
                assert reasons[entry_id].strip(), "a dead letter without a reason"
            else:
                assert message_id is not None, f"{entry_id!r} was neither run nor dead-lettered"
                record = await redis.hget(keys.session_registry(SESSION), message_id)
                assert record is not None and json.loads(record)["status"] == "completed"
    finally:
        await client.aclose()
        async for key in redis.scan_iter(match=f"{prefix}:*"):
            await redis.delete(key)
        await redis.aclose()


async def _settled(redis: Redis, stream: str, settings: Settings) -> None:
    """Waits until nothing is pending on the stream, for less than a lease: a reclaim (an entry
    left pending by a failure) would take a lease and a sweep."""
    async with asyncio.timeout(settings.lease_seconds):
        while (await redis.xpending(stream, settings.consumer_group))["pending"]:
            await asyncio.sleep(0.05)
