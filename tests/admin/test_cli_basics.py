"""The command line's frame: help, version, a mistyped command, and ``status`` of a real
worker process with work queued behind it."""

import asyncio
import signal
from importlib.metadata import version

from redis.asyncio import Redis

from by_framework import GatewayClient, Settings
from by_framework.cli.main import SUBCOMMANDS
from by_framework.cli.status import CLEAR
from tests.admin.support import run_cli, start_cli, status_json, stop
from tests.support import eventually, output_of, redis_7, wait_online, worker_process


async def test_help_lists_every_command_and_version_prints_it(settings: Settings) -> None:
    code, output = await run_cli(settings, "--help")
    assert code == 0, output
    for subcommand in SUBCOMMANDS:
        assert f"  {subcommand.name}  " in output, subcommand.name
    assert "--worker-class" in output
    code, output = await run_cli(settings, "--version")
    assert (code, output) == (0, f"by-framework {version('by-framework')}\n")


async def test_a_mistyped_command_gets_the_nearest_one(settings: Settings) -> None:
    code, output = await run_cli(settings, "sned", "echo", "hi")
    assert code == 2
    assert output == "by-framework: unknown command 'sned'; did you mean 'send'?\n"
    code, output = await run_cli(settings, "zzz")
    assert code == 2
    assert "unknown command 'zzz'; the commands are worker, dev," in output


async def test_status_shows_a_worker_its_load_and_the_queue_behind_it(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    # Redis 7 tells the entries not yet delivered (the group's lag); 6.2 only a bound: the
    # stream's length.
    queued = 3 if await redis_7(redis) else None
    worker = worker_process(
        settings, "st-1", "tests.agents.EchoAgent", "--max-concurrency", "1",
        "--shutdown-timeout", "0.5",
    )  # fmt: skip
    try:
        await wait_online(client, "st-1")
        await client.send_message("echo", "st-s", {"sleep": 30})
        for i in range(3):
            await client.send_message("echo", "st-s", {"i": i})

        async def loaded() -> dict | None:  # type: ignore[type-arg]
            document = await status_json(settings)
            (worker,) = document["workers"]
            return document if worker["in_flight"] == 1 else None

        document = await eventually(loaded)
        (shown,) = document["workers"]
        assert shown["worker_id"] == "st-1"
        assert shown["state"] == "running"
        assert shown["agent_types"] == ["echo"]
        assert shown["pid"] == worker.pid
        assert shown["slots"] == 1
        assert 0 <= shown["last_heartbeat_age_seconds"] < 5
        assert shown["uptime_seconds"] > 0
        assert shown["config_version"] is None
        (echo,) = document["agent_types"]
        assert echo == {
            "agent_type": "echo",
            "online_workers": 1,
            "queued": queued,
            "stream_length": 4,
            "pending": 1,
            "oldest_pending_age_seconds": echo["oldest_pending_age_seconds"],
        }
        assert echo["oldest_pending_age_seconds"] >= 0
        assert document["schema"] == 1
        assert document["window_seconds"] == 300
        assert document["tasks"] == {}
        assert document["dead_letters"] == 0

        code, table = await run_cli(settings, "status")
        assert code == 0, table
        row = next(line.split() for line in table.splitlines() if line.startswith("st-1 "))
        assert row[:3] == ["st-1", "running", "echo"]
        assert row[5] == "1/1"
        queue = next(line.split() for line in table.splitlines() if line.startswith("echo "))
        assert queue[:4] == ["echo", "1", "3" if queued else "<=4", "1"]
    finally:
        stop(worker)


async def test_status_counts_ended_tasks_and_watch_redraws_until_ctrl_c(
    client: GatewayClient, settings: Settings
) -> None:
    worker = worker_process(settings, "st-2")
    try:
        await wait_online(client, "st-2")
        for i in range(3):
            sent = await client.send_message("echo", "st-w", {"i": i})
            await client.wait_for_result(sent.message_id)

        async def counted() -> dict | None:  # type: ignore[type-arg]
            document = await status_json(settings, "--window", "1m")
            return document if document["tasks"] == {"completed": 3} else None

        assert (await eventually(counted))["window_seconds"] == 60

        watch = start_cli(settings, "status", "--watch", "0.2")
        await eventually(lambda: _redraws(watch, 2))
        watch.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(watch.wait, 10) == 0
        screens = output_of(watch).split(CLEAR)
        assert "TASKS ENDED (last 5m): completed 3" in screens[1]
        assert "Traceback" not in output_of(watch)
    finally:
        stop(worker)


async def _redraws(process, count: int) -> bool:  # type: ignore[no-untyped-def]
    return output_of(process).count(CLEAR) >= count


async def test_bad_arguments_say_what_is_wrong_without_a_traceback(settings: Settings) -> None:
    code, output = await run_cli(settings, "status", "--window", "2d")
    assert code == 2
    assert "'2d' is not a duration like 30s, 5m or 1h" in output
    code, output = await run_cli(settings, "status", "--redis-url", "redis://127.0.0.1:1/0")
    assert code == 2
    assert "cannot reach Redis" in output
    assert "Traceback" not in output
