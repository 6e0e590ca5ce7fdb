"""The dead-letter stream: listed, shown, replayed and purged, through the API and the CLI."""

import asyncio
import json
import os
import signal
import sys
from typing import Any

import pytest
from redis.asyncio import Redis

from by_framework import AgentContext, AgentState, GatewayClient, GatewayWorker, Settings
from by_framework.cli import main
from by_framework.redis.dead_letter import (
    DeadLetter,
    DeadLetterNotFoundError,
    DeadLetterReplayError,
    DeadLetters,
)
from by_framework.redis.keys import KeySpace
from tests.agents import EchoAgent
from tests.support import ROOT, output_of, running_worker, wait_online, worker_process


class ForgivingAgent(GatewayWorker):
    """Serves "echo" like the crash agent, but survives any command."""

    def get_agent_types(self) -> list[str]:
        return ["echo"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        return {"status": "completed", "content": "survived"}


def dead_letters(redis: Redis, settings: Settings) -> DeadLetters:
    return DeadLetters(redis, KeySpace(settings.key_prefix), settings.consumer_group)


async def wait_for(dead: DeadLetters, count: int, timeout: float = 10) -> list[DeadLetter]:
    async with asyncio.timeout(timeout):
        while len(letters := await dead.list()) < count:
            await asyncio.sleep(0.05)
    return letters


def cli_args(settings: Settings, *args: str) -> list[str]:
    return ["dead-letter", *args, "--redis-url", str(settings.redis_url),
            "--key-prefix", settings.key_prefix]  # fmt: skip


async def cli(settings: Settings, *args: str) -> str:
    """The CLI's output, run as a user runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "by_framework", *cli_args(settings, *args),
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_malformed_entries_are_listed_shown_and_purged(
    settings: Settings, redis: Redis
) -> None:
    stream = KeySpace(settings.key_prefix).agent_type_stream("echo")
    dead = dead_letters(redis, settings)
    async with running_worker(EchoAgent(), settings):
        not_json = await redis.xadd(stream, {b"e": b"{definitely not json"})
        no_envelope = await redis.xadd(stream, {b"payload": b"no envelope field"})
        letters = await wait_for(dead, 2)
    by_entry = {letter.entry_id: letter for letter in letters}
    assert set(by_entry) == {not_json.decode(), no_envelope.decode()}
    broken = by_entry[not_json.decode()]
    assert "malformed entry" in broken.reason
    assert broken.fields == {b"e": b"{definitely not json"}
    assert (broken.stream, broken.session_id, broken.message_id) == (stream, None, None)
    missing = by_entry[no_envelope.decode()]
    assert "no 'e' field" in missing.reason
    assert missing.fields == {b"payload": b"no envelope field"}
    assert await dead.get(broken.id) == broken

    shown, listed = await asyncio.gather(cli(settings, "show", broken.id), cli(settings, "list"))
    entry = json.loads(shown)
    assert entry["reason"] == broken.reason
    assert entry["fields"] == {"e": "{definitely not json"}
    lines = listed.splitlines()
    assert [line.split()[0] for line in lines] == [letter.id for letter in letters]
    assert all(stream in line for line in lines)
    assert "no 'e' field" in listed

    assert (await cli(settings, "purge", "--all")).strip() == "2"
    assert await dead.list() == []


async def test_a_given_up_command_replays_and_completes(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    crash = worker_process(settings, "crash-1", "tests.agents.CrashAgent", "--max-deliveries", "1")
    try:
        await wait_online(client, "crash-1")
        poison = await client.send_message("echo", "s-replay", "crash")
        assert await asyncio.to_thread(crash.wait, 20) == 17, output_of(crash)
    finally:
        if crash.poll() is None:
            crash.send_signal(signal.SIGKILL)
            crash.wait(timeout=10)
    dead = dead_letters(redis, settings)
    # This worker reclaims the command after the lease and, as it had its one delivery, gives up.
    async with running_worker(ForgivingAgent(), settings, worker_id="forgiving", max_deliveries=1):
        (letter,) = await wait_for(dead, 1)
        assert "gave up after 1 deliveries" in letter.reason
        assert (letter.session_id, letter.message_id) == ("s-replay", poison.message_id)
        failed = await client.get_task(poison.message_id)
        assert failed is not None and failed.status is AgentState.FAILED

        new_id = await dead.replay(letter.id)
        result = await client.wait_for_result(poison.message_id, timeout=10)
    assert new_id != letter.entry_id
    assert result.status is AgentState.COMPLETED and result.content == "survived"
    record = await client.get_task(poison.message_id)
    assert record is not None
    assert [status for status, _ in record.timeline] == [
        "queued", "running", "failed", "queued", "running", "completed"
    ]  # fmt: skip
    assert (record.worker_id, record.delivery_count, record.error) == ("forgiving", 1, None)
    assert await dead.list() == []
    pending = await redis.xpending(letter.stream, settings.consumer_group)
    assert pending["pending"] == 0


async def test_replay_refuses_unknown_ids_and_finished_tasks(
    client: GatewayClient, settings: Settings, redis: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = KeySpace(settings.key_prefix).agent_type_stream("echo")
    dead = dead_letters(redis, settings)
    async with running_worker(EchoAgent(), settings):
        done = await client.send_message("echo", "s-done", "hello")
        assert (await client.wait_for_result(done.message_id, timeout=10)).content == "hello"
        # The same command again, in an envelope version no worker reads: dead-lettered.
        ((_, fields),) = await redis.xrange(stream)
        envelope = json.loads(fields[b"e"])
        envelope["v"] = 7
        await redis.xadd(stream, {b"e": json.dumps(envelope).encode()})
        (letter,) = await wait_for(dead, 1)
    assert letter.message_id == done.message_id
    before = await client.get_task(done.message_id)

    with pytest.raises(DeadLetterReplayError, match="already completed; nothing to replay"):
        await dead.replay(letter.id)
    assert await client.get_task(done.message_id) == before
    assert await dead.list() == [letter]
    assert await redis.xlen(stream) == 2  # nothing was added

    for unknown in ("1-0", "not-an-id", letter.id.split("-")[0]):
        with pytest.raises(DeadLetterNotFoundError, match=f"no dead letter '{unknown}'"):
            await dead.replay(unknown)
    with pytest.raises(SystemExit, match="by-framework: no dead letter '1-0'"):
        await asyncio.to_thread(main, cli_args(settings, "replay", "1-0"))
    with pytest.raises(SystemExit) as usage:
        main(cli_args(settings, "purge"))
    assert usage.value.code == 2
    assert "one of the arguments id --all is required" in capsys.readouterr().err

    assert await dead.purge("1-0") == 0
    assert await dead.purge(letter.id) == 1
    assert await dead.list() == []


def test_a_dead_letter_with_forged_counts_reads_as_truncated_and_is_not_replayable() -> None:
    """The dead-letter stream is writable by whoever can write to Redis: counts that are not
    numbers neither crash the CLI nor make a cut entry look whole."""
    raw = {b"reason": b"x", b"field:e": b"{}", b"size:e": b"huge", b"dropped": b"lots"}
    letter = DeadLetter.from_entry(b"1-0", raw)
    assert letter.truncated
    assert letter.cut_note() == "e: -1 bytes, sha256 ; some field(s) dropped"
