"""Scheduled and recurring runs, on real worker processes and the real Redis: each tick's task is
sent once whatever the number of workers, one of them killed; a tick taken by a worker that died
is taken over after its lease and still sent once."""

import asyncio
import itertools
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from by_framework import (
    AgentState,
    GatewayClient,
    InvalidContentError,
    InvalidMessageError,
    InvalidScheduleError,
    Schedule,
    SendResponse,
    Settings,
)
from by_framework.protocol import AskAgentCommand, MessageHeader, encode_command
from by_framework.protocol.schedules import tick_message_id
from by_framework.scheduling import firer
from by_framework.scheduling.firer import ScheduleFirer
from tests.agents import EchoAgent
from tests.faults.test_reclaim import kill, stop_all, tally
from tests.support import (
    ROOT,
    eventually,
    output_of,
    running_worker,
    wait_all,
    wait_online,
    worker_process,
)


async def test_a_cron_fires_each_tick_once_across_three_workers_one_killed(
    client: GatewayClient, settings: Settings
) -> None:
    workers = [worker_process(settings, f"cron-{n}") for n in range(3)]
    try:
        for n in range(3):
            await wait_online(client, f"cron-{n}")
        made = await client.schedule_cron("* * * * * *", "echo", "s-cron", {"tick": True})
        await asyncio.sleep(3)
        kill(workers[0])
        await asyncio.sleep(3)
        assert await client.cancel_schedule(made.schedule_id)
        cancelled_at = time.time()
        tasks = await client.list_session_tasks("s-cron")
        sends = [SendResponse(t.message_id, "s-cron", t.trace_id or "") for t in tasks]
        await wait_all(client, sends)
    finally:
        stop_all(*workers[1:])
    ticks = sorted(t.metadata["scheduled_for"] for t in tasks)
    assert len(ticks) >= 4, ticks  # one a second for six seconds, on a slow machine
    assert ticks == sorted(set(ticks))  # no tick twice
    # None skipped, but one the killed worker held when it died: that one waits for its lease.
    gaps = [b - a for a, b in itertools.pairwise(ticks) if b - a != 1]
    assert gaps in ([], [2]), ticks
    assert {t.message_id for t in tasks} == {tick_message_id(made.schedule_id, t) for t in ticks}
    assert all(t.metadata["schedule_id"] == made.schedule_id for t in tasks)
    counts = await tally(client, sends)
    assert counts["duplicated"] == counts["rerun"] == counts["lost"] == 0, counts
    await asyncio.sleep(1.5)  # a cancelled schedule sends nothing more
    later = await client.list_session_tasks("s-cron")
    assert all(t.created_at <= cancelled_at + 0.5 for t in later), later
    assert await client.list_schedules() == []


async def test_a_tick_taken_by_a_worker_that_died_is_sent_once_by_another(
    client: GatewayClient, settings: Settings
) -> None:
    schedules = client.engine.schedules
    made = await client.schedule("echo", "s-taken", "once", at=time.time())
    # A worker takes the tick with a short lease, sends its task, and dies before settling.
    (taken,) = await schedules.take_due(time.time(), 1.0, 16)
    assert taken.schedule.schedule_id == made.schedule_id
    assert await schedules.take_due(time.time(), 1.0, 16) == []  # held by the first taker
    header = MessageHeader(
        message_id=tick_message_id(made.schedule_id, taken.tick),
        session_id="s-taken",
        target_agent_type="echo",
    )
    envelope = encode_command(header, AskAgentCommand(content="once"))
    async with running_worker(EchoAgent(), settings):
        await client.engine.control.send(header, envelope, None, send_id=f"tick-{taken.tick}")
        # The worker's firer takes the tick over once the lease ran out: the same task.
        await eventually(lambda: _gone(client), what="the one-time schedule to be settled")
        result = await client.wait_for_result(header.message_id, timeout=10)
        assert result.status is AgentState.COMPLETED
    tasks = await client.list_session_tasks("s-taken")
    assert [t.message_id for t in tasks] == [header.message_id]
    counts = await tally(client, [SendResponse(header.message_id, "s-taken", "")])
    assert counts == {"sent": 1, "completed": 1, "lost": 0, "duplicated": 0, "rerun": 0}
    assert not await schedules.settle(taken, None, taken.schedule.state, fired=True)  # too late


async def _gone(client: GatewayClient) -> bool:
    return await client.list_schedules() == []


async def test_a_one_time_schedule_waits_for_a_worker_of_its_agent_type_and_says_why(
    client: GatewayClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(firer, "RETRY_S", 0.5)
    async with running_worker(EchoAgent(), settings):
        made = await client.schedule("nobody-serves-this", "s-wait", "hi", at=time.time())

        async def why() -> str | None:
            (listed,) = await client.list_schedules()
            return listed.state.last_error

        error = await eventually(why, what="the schedule to say why it has not fired")
        assert "no online worker serves agent type 'nobody-serves-this'" in error
        assert await client.list_session_tasks("s-wait") == []
        (listed,) = await client.list_schedules()
        assert listed.state.fired == 0 and listed.next_at is not None
        assert listed.pending_tick == round(made.at * 1000) / 1000  # sent for that tick, later
        assert await client.cancel_schedule(made.schedule_id)
        assert not await client.cancel_schedule(made.schedule_id)


async def test_a_one_time_schedule_fires_at_its_time_then_is_gone(
    client: GatewayClient, settings: Settings
) -> None:
    at = datetime.now(UTC) + timedelta(seconds=1.5)
    made = await client.schedule(
        "echo", "s-once", {"report": "daily"}, at=at, user_code="u-1", metadata={"k": "v"}
    )
    assert made.at == pytest.approx(at.timestamp()) and made.next_at == made.at
    (listed,) = await client.list_schedules()
    assert listed.model_dump(exclude={"state"}) == made.model_dump(exclude={"state"})
    async with running_worker(EchoAgent(), settings):
        await asyncio.sleep(0.5)
        assert await client.list_session_tasks("s-once") == []  # not yet
        await eventually(lambda: _gone(client), what="the schedule to fire")
        (task,) = await client.list_session_tasks("s-once")
        result = await client.wait_for_result(task.message_id, timeout=10)
    assert result.content == {"report": "daily"}
    assert task.created_at >= at.timestamp()
    assert task.user_code == "u-1"
    assert task.metadata == {"k": "v", "schedule_id": made.schedule_id,
                             "scheduled_for": round(at.timestamp() * 1000) / 1000}  # fmt: skip


async def test_bad_schedules_are_refused_and_nothing_is_stored(client: GatewayClient) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    refused = [
        (InvalidScheduleError, "in the past",
         client.schedule("echo", "s", "x", at=datetime.now(UTC) - timedelta(minutes=1))),
        (InvalidScheduleError, "give a time zone",
         client.schedule("echo", "s", "x", at=datetime.now() + timedelta(hours=1))),
        (InvalidScheduleError, "minute 61",
         client.schedule_cron("61 * * * *", "echo", "s", "x")),
        (InvalidScheduleError, "Mars/Olympus",
         client.schedule_cron("0 9 * * *", "echo", "s", "x", timezone="Mars/Olympus")),
        (InvalidMessageError, "session_id 'a b'", client.schedule("echo", "a b", "x", at=soon)),
        (InvalidMessageError, "target_agent_type", client.schedule("", "s", "x", at=soon)),
        (InvalidContentError, r"content\['at'\] is of type datetime",
         client.schedule("echo", "s", {"at": soon}, at=soon)),
    ]  # fmt: skip
    for error, message, call in refused:
        with pytest.raises(error, match=message):
            await call
    assert await client.list_schedules() == []


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "by_framework", "schedule", *args,
         "--redis-url", str(settings.redis_url), "--key-prefix", settings.key_prefix],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def test_the_schedule_command_adds_lists_and_removes(
    client: GatewayClient, settings: Settings
) -> None:
    added = await asyncio.to_thread(
        _cli, settings, "add", "echo", '{"report": 1}', "--session", "s-cli",
        "--cron", "0 9 * * 1-5", "--timezone", "Europe/Paris",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    made = json.loads(added.stdout)
    (listed,) = await client.list_schedules()
    assert listed.schedule_id == made["schedule_id"]
    assert (listed.cron, listed.timezone, listed.content) == ("0 9 * * 1-5", "Europe/Paris",
                                                             {"report": 1})  # fmt: skip
    next_at = datetime.fromtimestamp(listed.next_at or 0, UTC)
    assert made["next_at"] == next_at.isoformat(timespec="seconds")
    assert next_at.weekday() < 5 and next_at.minute == 0 and next_at.hour in (7, 8)

    once = await asyncio.to_thread(
        _cli, settings, "add", "echo", "hi", "--session", "s-cli", "--at", "2099-01-01T00:00:00Z"
    )
    assert once.returncode == 0, once.stderr
    table = await asyncio.to_thread(_cli, settings, "list")
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "AGENT", "TYPE", "SESSION", "WHEN", "NEXT", "FIRED",
                                "LAST", "TASK", "LAST", "ERROR"]  # fmt: skip
    assert made["schedule_id"] in lines[1] and "0 9 * * 1-5 (Europe/Paris)" in lines[1]
    assert "once at 2099-01-01T00:00:00+00:00" in lines[2]
    as_json = await asyncio.to_thread(_cli, settings, "list", "--json")
    assert [json.loads(line)["session_id"] for line in as_json.stdout.splitlines()] == [
        "s-cli", "s-cli"
    ]  # fmt: skip

    removed = await asyncio.to_thread(_cli, settings, "remove", made["schedule_id"])
    assert removed.stdout == f"removed schedule {made['schedule_id']}\n"
    again = await asyncio.to_thread(_cli, settings, "remove", made["schedule_id"])
    assert again.returncode == 1 and f"no schedule '{made['schedule_id']}'" in again.stderr
    bad = await asyncio.to_thread(
        _cli, settings, "add", "echo", "x", "--session", "s-cli", "--at", "tomorrow"
    )
    assert bad.returncode == 1
    assert bad.stderr == "by-framework: --at 'tomorrow' is not an ISO 8601 time " \
        "(e.g. 2027-01-04T09:00:00+01:00)\n"  # fmt: skip
    assert len(await client.list_schedules()) == 1


async def test_a_killed_worker_mid_schedule_leaves_nothing_stuck(
    client: GatewayClient, settings: Settings
) -> None:
    """SIGKILL of the only worker while a cron runs: the schedule is still there, and a new
    worker goes on with it from now (the ticks missed meanwhile are not made up)."""
    first = worker_process(settings, "lone")
    await wait_online(client, "lone")
    made = await client.schedule_cron("* * * * * *", "echo", "s-lone", "tick")
    await eventually(lambda: _fired(client, "s-lone", 2), what="two ticks")
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL, output_of(first)
    await asyncio.sleep(2.5)
    second = worker_process(settings, "lone-2")
    try:
        await wait_online(client, "lone-2")
        before = len(await client.list_session_tasks("s-lone"))
        await eventually(lambda: _fired(client, "s-lone", before + 2), what="ticks again")
    finally:
        await client.cancel_schedule(made.schedule_id)
        stop_all(second)
    ticks = sorted(t.metadata["scheduled_for"] for t in await client.list_session_tasks("s-lone"))
    assert ticks == sorted(set(ticks))


async def _fired(client: GatewayClient, session_id: str, count: int) -> bool:
    return len(await client.list_session_tasks(session_id)) >= count


async def test_the_firer_fires_what_is_due_in_batches(
    client: GatewayClient, settings: Settings
) -> None:
    """More schedules due at once than one take holds: all fire in one pass."""
    async with running_worker(EchoAgent(), settings):
        now = time.time()
        for n in range(firer.BATCH + 4):
            await client.schedule("echo", f"s-batch-{n % 3}", n, at=now)
        await eventually(lambda: _gone(client), what="every schedule to fire")
        assert await ScheduleFirer(client.engine, 1.0).fire_due() == 0
        tasks = [t for n in range(3) for t in await client.list_session_tasks(f"s-batch-{n}")]
    assert len(tasks) == firer.BATCH + 4


async def test_a_schedule_that_cannot_be_fired_stops_no_other(
    client: GatewayClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored cron this version cannot read (written by hand, or by another version): logged,
    left for its lease, and every other schedule still fires."""
    broken = Schedule(
        schedule_id="broken", target_agent_type="echo", session_id="s-broken",
        cron="every tuesday", created_at=time.time(),
    )  # fmt: skip
    await client.engine.schedules.add(broken, time.time())
    async with running_worker(EchoAgent(), settings):
        for n in range(2):
            await client.schedule("echo", "s-fine", n, at=time.time())
            await eventually(lambda n=n: _fired(client, "s-fine", n + 1), what=f"schedule {n}")
    assert "schedule broken could not be fired" in caplog.text
    (left,) = await client.list_schedules()
    assert left.schedule_id == "broken" and left.pending_tick is not None
