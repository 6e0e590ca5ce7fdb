"""Oversized entries reach the dead-letter stream in a bounded size: a 10 MB entry sent to a real
worker process, and a padded command that kills its worker on every delivery, each leave a dead
letter of at most ``dead_letter_entry_bytes`` of themselves, with the size and sha256 of what was
cut. The dead-letter CLI shows them as truncated and refuses to replay them."""

import asyncio
import hashlib
import json
import subprocess
import sys

from redis.asyncio import Redis

from by_framework import GatewayClient, Settings
from by_framework.redis.keys import KeySpace
from tests.faults.test_reclaim import stop_all
from tests.support import ROOT, process_env, wait_online, worker_process

BIG = 10 * 1024 * 1024
OVERHEAD = 4096  # per dead letter: its reason, stream, ids, and the stream's own structures


def bound(entry_bytes: int) -> int:
    """The most one dead letter may take, allocator's rounding (a quarter at most) included."""
    return (entry_bytes + OVERHEAD) * 5 // 4


def envelope(message_id: str, content: str, pad: int = 0) -> bytes:
    """A command envelope; ``pad`` bytes go in a field workers ignore, so that it still runs."""
    header = {"session_id": "s-big", "target_agent_type": "echo", "message_id": message_id}
    body = {"v": 1, "header": header, "command": {"type": "ask_agent", "content": content}}
    return json.dumps({**body, "pad": "p" * pad}).encode()


async def dead_letters(redis: Redis, stream: str, count: int) -> list[tuple[bytes, dict]]:
    """Waits (20 s at most) for ``count`` dead letters."""
    async with asyncio.timeout(20):
        while len(letters := await redis.xrange(stream)) < count:
            await asyncio.sleep(0.1)
    return letters


async def stream_bytes(redis: Redis, stream: str) -> int:
    return int(await redis.execute_command("MEMORY", "USAGE", stream, "SAMPLES", "0"))


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m by_framework dead-letter ...`` run as an operator would."""
    where = ("--redis-url", str(settings.redis_url), "--key-prefix", settings.key_prefix)
    command = [sys.executable, "-m", "by_framework", "dead-letter", *args, *where]
    return subprocess.run(
        command, cwd=ROOT, env=process_env(settings), capture_output=True, text=True, timeout=60
    )


async def test_a_10_mb_entry_leaves_a_bounded_dead_letter(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    keys = KeySpace(settings.key_prefix)
    worker = worker_process(settings, "big-worker")
    big = envelope("big-1", "x" * BIG)
    try:
        await wait_online(client, "big-worker")
        await redis.xadd(keys.agent_type_stream("echo"), {b"e": big})
        after = await client.send_message("echo", "s-big", "after")
        assert (await client.wait_for_result(after.message_id, timeout=20)).content == "after"
        ((dead_id, fields),) = await dead_letters(redis, keys.dead_letter_stream(), 1)
        used = await stream_bytes(redis, keys.dead_letter_stream())
    finally:
        stop_all(worker)
    most = bound(settings.dead_letter_entry_bytes)
    print(f"dead-letter stream after a {len(big)}-byte entry: {used} bytes (bound {most})")
    assert b"over the" in fields[b"reason"]
    assert fields[b"size:e"] == b"%d" % len(big)
    assert fields[b"sha256:e"] == hashlib.sha256(big).hexdigest().encode()
    assert big.startswith(fields[b"field:e"]) and len(fields[b"field:e"]) < len(big)
    assert used < most
    shown = cli(settings, "show", dead_id.decode())
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["cut"] == {
        "e": {"size": len(big), "sha256": hashlib.sha256(big).hexdigest()}
    }
    listed = cli(settings, "list")
    assert f"truncated: e: {len(big)} bytes, sha256 " in listed.stdout, listed.stderr
    replayed = cli(settings, "replay", dead_id.decode())
    assert replayed.returncode != 0
    assert "cannot be replayed" in replayed.stderr
    assert await redis.xlen(keys.dead_letter_stream()) == 1  # still there, untouched


async def test_a_padded_command_given_up_on_leaves_a_bounded_dead_letter(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    keys = KeySpace(settings.key_prefix)
    crash = ("tests.agents.CrashAgent", "--max-deliveries", "2")
    env = {"BYAI_DEAD_LETTER_ENTRY_BYTES": "4096"}
    padded = envelope("crash-big", "crash", pad=200_000)
    first = worker_process(settings, "crash-big-1", *crash, env=env)
    await wait_online(client, "crash-big-1")
    await redis.xadd(keys.agent_type_stream("echo"), {b"e": padded})
    assert await asyncio.to_thread(first.wait, 20) == 17  # run 1 killed its worker
    second = worker_process(settings, "crash-big-2", *crash, env=env)
    assert await asyncio.to_thread(second.wait, 20) == 17  # run 2 (reclaimed) killed this one
    third = worker_process(settings, "crash-big-3", *crash, env=env)
    try:
        ((_, fields),) = await dead_letters(redis, keys.dead_letter_stream(), 1)
        used = await stream_bytes(redis, keys.dead_letter_stream())
    finally:
        stop_all(third)
    assert b"gave up after 2 deliveries" in fields[b"reason"]
    assert fields[b"size:e"] == b"%d" % len(padded)
    assert fields[b"sha256:e"] == hashlib.sha256(padded).hexdigest().encode()
    print(f"dead-letter stream after a given-up {len(padded)}-byte command: {used} bytes")
    assert used < bound(4096)
