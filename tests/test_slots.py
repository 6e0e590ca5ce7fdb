"""Every script and multi-key command stays in one hash slot (what Redis Cluster demands), proven
on standalone Redis: a workload touching every path runs while MONITOR, on a connection of the
test's own, records each command carrying the test's key prefix; then every script's KEYS, every
command a script ran, every multi-key command and every MULTI ... EXEC block must hash to one
slot (``redis.crc.key_slot``; each command's keys as Redis itself finds them, COMMAND GETKEYS)."""

import asyncio
import contextlib
import json
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.crc import key_slot
from redis.exceptions import ResponseError

from by_framework import AgentState, GatewayClient, Settings
from by_framework.protocol.codec import ENTRY_FIELD
from by_framework.redis.dead_letter import REQUEUE_FAILED, DeadLetters
from by_framework.redis.discovery import ServiceRegistry
from by_framework.redis.keys import KeySpace
from by_framework.redis.scripts import ALL_SCRIPTS
from tests.agents import EchoAgent, OrchestraAgent
from tests.support import (
    eventually,
    final_result,
    output_of,
    running_worker,
    wait_online,
    worker_process,
)
from tests.test_dead_letter import ForgivingAgent

READ_BY_TRANSPORT = {b"XREAD", b"XREADGROUP"}
"""Blocking reads of several streams: the transport reads them per slot on a cluster
(connection.py, feed.py); a script or a write never joins slots."""

EVERY_PATH = {
    "online", "claim", "begin", "finish", "release_run", "requeue", "give_up", "dispatch",
    "set_waiting", "cancel_tree", "resume", "renew", "trim_consumed", "heartbeat",
    "prune_members", "release_lock", "take_token", "claim_session", "requeue_failed",
    "add_schedule", "take_due", "settle_firing", "remove_schedule",
}  # fmt: skip
"""The scripts the workload must have run, so that the check covers them."""

_LINE = re.compile(rb"^\d+\.\d+ \[\d+ ([^\]]*)\] (.*)$", re.DOTALL)
_ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|.)", re.DOTALL)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b"}


def _unescape(text: bytes) -> bytes:
    """An argument as MONITOR quotes it (sdscatrepr) back to its bytes."""

    def one(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code.startswith(b"x") and len(code) == 3:
            return bytes([int(code[1:], 16)])
        return _ESCAPES.get(code, code)

    return _ESCAPE.sub(one, text)


@dataclass
class Command:
    client: str
    args: list[bytes]
    run_by_script: list["Command"] = field(default_factory=list)

    @property
    def name(self) -> bytes:
        return self.args[0].upper()

    def __str__(self) -> str:
        return " ".join(arg[:80].decode(errors="replace") for arg in self.args[:8])


class Monitor:
    """MONITOR on a connection of its own: the commands (and what each script ran) that carry
    ``marker`` in an argument."""

    def __init__(self, redis: Redis, marker: str) -> None:
        self._connection = Connection(**redis.connection_pool.connection_kwargs)
        self._marker = marker.encode()
        self.commands: list[Command] = []
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "Monitor":
        await self._connection.connect()
        await self._connection.send_command("MONITOR")
        assert await self._connection.read_response() in (b"OK", "OK")
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._reader is not None
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._connection.disconnect()

    async def caught_up(self, redis: Redis) -> None:
        """Until the monitor has read every command sent before this call: a marked ECHO sent
        last, seen by the reader, says so (a fixed wait missed the last ones on a busy machine)."""
        sentinel = self._marker + uuid.uuid4().hex.encode()
        await redis.execute_command("ECHO", sentinel)
        async with asyncio.timeout(30):
            while not any(sentinel in arg for c in self.commands for arg in c.args):
                await asyncio.sleep(0.01)
        self.commands = [c for c in self.commands if sentinel not in c.args]

    async def _read(self) -> None:
        script: Command | None = None  # the script running now: its commands follow it
        while True:
            line = await self._connection.read_response(disable_decoding=True)
            match = _LINE.match(line)
            if match is None:
                continue
            client, rest = match.groups()
            command = Command(client.decode(), [_unescape(a) for a in _ARG.findall(rest)])
            if client == b"lua":
                if script is not None:
                    script.run_by_script.append(command)
                continue
            script = None
            if command.name in (b"MULTI", b"EXEC") or any(
                self._marker in arg for arg in command.args
            ):
                self.commands.append(command)
                if command.name in (b"EVALSHA", b"EVAL"):
                    script = command


async def _keys_of(redis: Redis, commands: list[Command]) -> list[list[bytes]]:
    """Each command's keys, as Redis finds them (none for a command without keys), read on a
    connection of its own (redis-py's reply parser for COMMAND does not take GETKEYS)."""
    connection = Connection(**redis.connection_pool.connection_kwargs)
    await connection.connect()
    found: list[list[bytes]] = []
    try:
        for start in range(0, len(commands), 500):
            batch = commands[start : start + 500]
            packed = connection.pack_commands(
                [("COMMAND", "GETKEYS", *command.args) for command in batch]
            )
            await connection.send_packed_command(packed)
            for _ in batch:
                try:
                    found.append(list(await connection.read_response(disable_decoding=True)))
                except ResponseError:
                    found.append([])
    finally:
        await connection.disconnect()
    return found


async def cross_slot(redis: Redis, commands: list[Command]) -> list[str]:
    """What joins slots: a script's KEYS or its commands' keys, a multi-key command, a
    transaction; each named with its slots."""
    every = [*commands, *(inner for c in commands for inner in c.run_by_script)]
    found = dict(zip(map(id, every), await _keys_of(redis, every), strict=True))
    problems = []

    def check(what: str, keys: list[bytes]) -> None:
        slots = {key_slot(key) for key in keys}
        if len(slots) > 1:
            problems.append(f"{what}: keys {sorted(k.decode() for k in keys)} in slots {slots}")

    open_transactions: dict[str, list[bytes]] = {}
    for command in commands:
        keys = found[id(command)]
        if command.name in (b"EVALSHA", b"EVAL"):
            inner = [key for c in command.run_by_script for key in found[id(c)]]
            check(f"script {command}", keys + inner)
        elif command.name not in READ_BY_TRANSPORT:
            check(str(command), keys)
        if command.client in open_transactions:
            open_transactions[command.client] += keys
        if command.name == b"MULTI":
            open_transactions[command.client] = []
        elif command.name == b"EXEC":
            check(f"transaction of {command.client}", open_transactions.pop(command.client, []))
    return problems


@contextlib.asynccontextmanager
async def watching(redis: Redis, settings: Settings) -> AsyncIterator[Monitor]:
    async with Monitor(redis, f"{settings.key_prefix}:") as monitor:
        yield monitor
        await monitor.caught_up(redis)


async def test_every_script_and_multi_key_command_stays_in_one_slot(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    """Send, run, sub-calls (one call, one group), ask_user and resume, cancel of a tree,
    hand-back, a malformed entry, give-up to the dead letters and a replay, a plugin reload,
    heartbeats, a rate limit, a session owner, the fleet view, service discovery, schedules."""
    keys = KeySpace(settings.key_prefix)
    async with watching(redis, settings) as monitor:
        async with (
            running_worker(OrchestraAgent(), settings, worker_id="orchestra"),
            running_worker(EchoAgent(), settings, worker_id="echo-1"),
        ):
            echo = await client.send_message("echo", "s-echo", {"sleep": 0})
            call = await client.send_message(
                "planner", "s-call", {"op": "call", "target": "echo", "content": "hi"}
            )
            fanout = await client.send_message(
                "planner", "s-group", {"op": "fanout", "n": 3, "targets": ["helper", "echo"]}
            )
            for sent in (echo, call, fanout):
                assert (await final_result(client, sent.message_id)).status is AgentState.COMPLETED

            asked = await client.send_message("asker", "s-ask", {"op": "ask", "prompt": "go?"})
            waiting = await client.wait_for_result(asked.message_id, timeout=10)
            assert waiting.status is AgentState.WAITING_USER
            await client.resume(asked.message_id, "s-ask", content="yes")
            resumed = await final_result(client, asked.message_id)
            assert resumed.status is AgentState.COMPLETED

            child = {"target": "helper", "content": {"op": "sleep", "seconds": 30}}
            tree = await client.send_message(
                "planner", "s-tree", {"op": "sleep", "seconds": 30, "tree": [child]}
            )
            await _until_running(client, "s-tree", 2)
            report = await client.cancel_task(tree.message_id, "s-tree", reason="stop")
            assert report.stopping
            assert (await final_result(client, tree.message_id)).status is AgentState.CANCELLED

            await redis.xadd(keys.agent_type_stream("echo"), {ENTRY_FIELD: b"{not json"})
            assert (await client.reload_plugins(timeout=5)).answers

            gateway = client.engine
            assert await gateway.owners.claim("s-echo", "ada") == "ada"
            assert await gateway.owners.owner("s-echo") == "ada"
            assert await gateway.rate_limiter.take("ada", 10.0, 5) == 0
            assert (await gateway.fleet.snapshot()).workers

            discovery = ServiceRegistry(redis, settings.key_prefix)
            await discovery.register("search", "node-1", "127.0.0.1:8080")
            assert await discovery.heartbeat("search", "node-1")
            assert [node.node_id for node in await discovery.instances("search")] == ["node-1"]
            assert await discovery.deregister("search", "node-1")

            once = await client.schedule("echo", "s-scheduled", "later", at=time.time())
            await eventually(lambda: _no_schedules(client), what="the schedule to fire")
            (fired,) = await client.list_session_tasks("s-scheduled")
            assert fired.metadata["schedule_id"] == once.schedule_id
            cron = await client.schedule_cron("0 9 * * *", "echo", "s-scheduled", "daily")
            assert await client.cancel_schedule(cron.schedule_id)

        # Hand-back: a worker stopping with a task it cannot finish in time.
        async with running_worker(
            OrchestraAgent(), settings, worker_id="leaving", shutdown_timeout=0.3
        ):
            long = await client.send_message("helper", "s-back", {"op": "sleep", "seconds": 2})
            await _until_running(client, "s-back", 1)
        record = await client.get_task(long.message_id)
        assert record is not None and record.status is AgentState.QUEUED

        # Give-up: a command that kills its worker, reclaimed by one allowed one delivery.
        crash = worker_process(settings, "crash", "tests.agents.CrashAgent")
        try:
            await wait_online(client, "crash")
            poison = await client.send_message("echo", "s-poison", "crash")
            assert await asyncio.to_thread(crash.wait, 20) == 17, output_of(crash)
        finally:
            if crash.poll() is None:
                crash.send_signal(signal.SIGKILL)
                crash.wait(timeout=10)
        dead = DeadLetters(redis, keys, settings.consumer_group)
        async with running_worker(ForgivingAgent(), settings, worker_id="fine", max_deliveries=1):
            failed = await final_result(client, poison.message_id)
            assert failed.status is AgentState.FAILED
            letters = await dead.list()
            given_up = next(letter for letter in letters if letter.message_id == poison.message_id)
            await dead.replay(given_up.id)
            replayed = await final_result(client, poison.message_id)
            assert replayed.status is AgentState.COMPLETED

    names = {command.name for command in monitor.commands}
    assert {b"MULTI", b"XACK", b"XADD", b"XAUTOCLAIM"} <= names, names
    by_sha = {script.sha.encode(): script.name for script in (*ALL_SCRIPTS, REQUEUE_FAILED)}
    ran = {by_sha.get(c.args[1]) for c in monitor.commands if c.name == b"EVALSHA"}
    assert EVERY_PATH <= ran, EVERY_PATH - ran
    assert await cross_slot(redis, monitor.commands) == []


async def test_the_checker_finds_a_script_that_joins_two_slots(
    redis: Redis, settings: Settings
) -> None:
    """The checker itself: a script whose KEYS, and one whose commands, join two slots."""
    one, other = f"{settings.key_prefix}:{{a}}:x", f"{settings.key_prefix}:{{b}}:y"
    async with watching(redis, settings) as monitor:
        await redis.eval("return redis.call('EXISTS', KEYS[1], KEYS[2])", 2, one, other)
        await redis.eval("return redis.call('EXISTS', ARGV[1])", 1, one, other)
        await redis.eval("return redis.call('EXISTS', ARGV[1])", 1, one, one)
    problems = await cross_slot(redis, monitor.commands)
    assert len(problems) == 2, problems
    assert all(json.dumps(other)[1:-1] in problem for problem in problems)


async def _until_running(client: GatewayClient, session_id: str, count: int) -> None:
    async with asyncio.timeout(10):
        while True:
            records = await client.list_session_tasks(session_id)
            running = [r for r in records if r.status is AgentState.RUNNING]
            if len(running) >= count:
                return
            await asyncio.sleep(0.05)


async def _no_schedules(client: GatewayClient) -> bool:
    return await client.list_schedules() == []
