"""The numbered cookbook recipes (04 to 11), each run as its README runs it: its worker processes
through the CLI and its client scripts, against the real Redis; each test checks what the recipe
shows, not only that it ran."""

import asyncio
import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from by_framework import AgentState, GatewayClient, Settings
from tests.support import ROOT, output_of, process_env, spawn, wait_online

COOKBOOK = ROOT / "cookbook"


@contextlib.asynccontextmanager
async def workers(
    client: GatewayClient, recipe: Path, env: dict[str, str], *specs: tuple[str, str, str]
) -> AsyncIterator[None]:
    """Worker processes started as the README starts them (``worker id, module.Class, extra
    CLI arguments``); stopped with SIGTERM at the end, each exiting 0."""
    processes: dict[str, subprocess.Popen[str]] = {}
    for worker_id, worker_class, extra in specs:
        command = [sys.executable, "-m", "by_framework", "--worker-class", worker_class,
                   "--worker-id", worker_id, *extra.split()]  # fmt: skip
        processes[worker_id] = spawn(command, recipe, env)
    try:
        await asyncio.gather(*(wait_online(client, worker_id) for worker_id in processes))
        yield
    finally:
        for process in processes.values():
            process.terminate()
        codes = {w: await asyncio.to_thread(p.wait, 20) for w, p in processes.items()}
        assert set(codes.values()) == {0}, {w: output_of(p)[-3000:] for w, p in processes.items()}


async def script(
    recipe: Path, env: dict[str, str], *args: str, stdin: str | None = None
) -> list[str]:
    """Run one of the recipe's client scripts to its end; the lines it printed."""
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, *args], cwd=recipe, env=env, input=stdin,
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout.splitlines()


def start_tail(recipe: Path, env: dict[str, str], session: str, out: Path) -> subprocess.Popen[str]:
    """``python -m by_framework tail SESSION``, its output going to ``out``, which the test reads
    by path while it runs (a read of ``spawn``'s file would move the writer's offset too)."""
    with out.open("w") as file:
        command = [sys.executable, "-m", "by_framework", "tail", session]
        return subprocess.Popen(
            command, cwd=recipe, env=env, stdout=file, stderr=subprocess.STDOUT, text=True
        )


async def test_scatter_gather_research_team(client: GatewayClient, settings: Settings) -> None:
    recipe = COOKBOOK / "04_scatter_gather"
    env = process_env(settings)
    team = [
        ("researcher-1", "researcher.ResearcherAgent", ""),
        ("researcher-2", "researcher.ResearcherAgent", ""),
        ("lead-1", "lead.LeadAgent", ""),
    ]
    topics = ["redis streams", "consumer groups", "time travel"]
    async with workers(client, recipe, env, *team):
        lines = await script(recipe, env, "ask.py", *topics, "--session", "research")

    assert lines[-5:] == [
        "answer (completed):",
        "2 of 3 topics researched:",
        "- redis streams: append-only logs; an entry stays pending until it is acknowledged",
        "- consumer groups: each entry goes to one consumer of the group: replicas share the load",
        "- time travel: failed (LookupError: no sources on 'time travel')",
    ]
    assert lines[0] == "[lead] sending 3 researchers"
    assert sorted(lines[1:-5]) == sorted(
        [*(f"[researcher] looking up {t!r}" for t in topics), *["[researcher] completed"] * 2,
         "[researcher] failed"]
    )  # fmt: skip
    tasks = await client.list_session_tasks("research")
    (lead,) = [task for task in tasks if task.agent_type == "lead"]
    researchers = [task for task in tasks if task.agent_type == "researcher"]
    assert lead.status is AgentState.COMPLETED
    assert sorted(lead.children) == sorted(r.message_id for r in researchers)
    assert all(r.parent_message_id == lead.message_id for r in researchers)
    assert sorted((r.status, r.error) for r in researchers) == [
        (AgentState.COMPLETED, None),
        (AgentState.COMPLETED, None),
        (AgentState.FAILED, "LookupError: no sources on 'time travel'"),
    ]


async def test_human_approval_ask_user_then_resume(
    client: GatewayClient, settings: Settings
) -> None:
    recipe = COOKBOOK / "05_human_approval"
    env = process_env(settings)
    async with workers(client, recipe, env, ("deployer-1", "deployer.DeployerAgent", "")):
        approved = await script(
            recipe, env, "approve.py", "v1.4.2", "--answer", "yes", "--approver", "alice"
        )
        refused = await script(
            recipe, env, "approve.py", "v1.5.0", "--approver", "bob", stdin="no\n"
        )

    assert approved == [
        "[deployer] plan: roll v1.4.2 out to web-1, web-2, web-3",
        "task waiting_user",
        "Deploy v1.4.2 to production? [yes/no] yes",
        "[deployer] web-1: v1.4.2 up",
        "[deployer] web-2: v1.4.2 up",
        "[deployer] web-3: v1.4.2 up",
        "completed: v1.4.2 deployed, approved by alice",
    ]
    assert refused == [  # the question was asked on the terminal (input's prompt has no newline)
        "[deployer] plan: roll v1.5.0 out to web-1, web-2, web-3",
        "task waiting_user",
        "Deploy v1.5.0 to production? [yes/no] completed: v1.5.0 not deployed: bob said no",
    ]


async def test_cancel_a_running_tree(client: GatewayClient, settings: Settings) -> None:
    recipe = COOKBOOK / "06_cancel_tree"
    env = process_env(settings)
    async with workers(client, recipe, env, ("surveyor-1", "survey.SurveyWorker", "")):
        lines = await script(recipe, env, "cancel.py", "--session", "survey")

    tree = lines[lines.index("cancel: 0 ended at once, 7 being stopped by their workers") + 1 :]
    assert tree[:3] == [
        "survey cancelled (operator stop): 0 of 2 calls answered",
        "  region cancelled (operator stop): 0 of 2 calls answered",
        "  region cancelled (operator stop): 0 of 2 calls answered",
    ]
    probes = sorted(re.sub(r"after \d+$", "after N", line) for line in tree[3:])
    assert probes == [f"    probe cancelled (operator stop): {p}: stopped after N" for p in
                      ("n1", "n2", "s1", "s2")]  # fmt: skip
    tasks = await client.list_session_tasks("survey")
    assert len(tasks) == 7 and {t.status for t in tasks} == {AgentState.CANCELLED}
    last = await client.last_event_id("survey")
    cancelled = set()  # tasks with a "cancelled" state event on the session stream
    async for item in client.events("survey"):
        if item.event.type == "state" and item.event.state == "cancelled":  # type: ignore[union-attr]
            cancelled.add(item.message_id)
        if item.stream_id == last:
            break
    assert cancelled == {task.message_id for task in tasks}


async def test_hot_reloaded_plugin(
    client: GatewayClient, settings: Settings, tmp_path: Path
) -> None:
    recipe = tmp_path / "08_hot_reload_plugin"  # a copy: the test edits its greeting file
    shutil.copytree(COOKBOOK / "08_hot_reload_plugin", recipe)
    env = process_env(settings)
    greeter = ("greeter-1", "greeter.GreeterAgent", "--plugin-dir plugins")
    async with workers(client, recipe, env, greeter):
        before = await script(recipe, env, "greet.py", "Ada")
        (recipe / "plugins" / "greeting.txt").write_text("Good evening, {name}. Welcome back.\n")
        reloaded = await script(recipe, env, "reload.py", "evening greeting")
        after = await script(recipe, env, "greet.py", "Ada")

    assert before == ["Hello, Ada! (config v1) [record: config v1]"]
    assert reloaded == ["greeter-1: ok, config v1 -> v2"]
    assert after == ["Good evening, Ada. Welcome back. (config v2) [record: config v2]"]


async def test_scale_out_several_workers_and_a_live_tail(
    client: GatewayClient, settings: Settings, tmp_path: Path
) -> None:
    recipe = COOKBOOK / "09_scale_out"
    env = process_env(settings, BYAI_WORKER_CONCURRENCY="1")
    resizers = [(f"resizer-{n}", "resizer.ResizerAgent", "") for n in (1, 2, 3)]
    tailed = tmp_path / "tail.jsonl"
    tail = start_tail(recipe, env, "photos", tailed)
    try:
        async with workers(client, recipe, env, *resizers):
            lines = await script(recipe, env, "send_many.py", "--session", "photos", "--count", "9")
        async with asyncio.timeout(30):  # the tail has followed every task to its end
            while tailed.read_text().count('"type": "end"') < 9:
                await asyncio.sleep(0.05)
    finally:
        tail.send_signal(signal.SIGINT)  # Ctrl-C
        assert await asyncio.to_thread(tail.wait, 10) == 0, tailed.read_text()[-3000:]

    ran_by = dict(re.fullmatch(r"(photo-\d\d\.jpg) -> (resizer-\d) \(completed\)", line).groups()
                  for line in lines[:-1])  # fmt: skip
    assert sorted(ran_by) == [f"photo-{n:02}.jpg" for n in range(1, 10)]
    assert len(set(ran_by.values())) > 1, f"one worker ran everything: {lines}"
    tally = {w: list(ran_by.values()).count(w) for w in sorted(set(ran_by.values()))}
    assert lines[-1] == ", ".join(f"{w}: {n}" for w, n in tally.items())

    events = [json.loads(line) for line in tailed.read_text().splitlines()]
    chunks = [e["content"] for e in events if e["type"] == "chunk"]
    assert sorted(chunks) == sorted(f"{w} resizing {photo}" for photo, w in ran_by.items())
    ends = [e for e in events if e["type"] == "end"]
    assert len(ends) == 9 and {e["status"] for e in ends} == {"completed"}


async def test_the_scheduled_report_fires_its_cron_then_is_removed(
    client: GatewayClient, settings: Settings
) -> None:
    recipe = COOKBOOK / "10_scheduled_report"
    env = process_env(settings)
    async with workers(client, recipe, env, ("reporter-1", "reporter.ReporterWorker", "")):
        lines = await script(recipe, env, "schedule_report.py", "--session", "reports")

    report = "daily report: open: 3, closed: 2, urgent and open: 1"
    assert lines == ["scheduled: reporter, '*/2 * * * * *' in UTC", *[report] * 3,
                     "cancelled: True", "still scheduled: 0"]  # fmt: skip
    assert await client.list_schedules() == []
    tasks = [t for t in await client.list_session_tasks("reports") if t.result is not None]
    assert len(tasks) >= 3  # a tick taken just before the cancel may still have been sent
    assert all(t.message_id.startswith("sch-") for t in tasks)
    assert {t.status for t in tasks} == {AgentState.COMPLETED}
    ticks = {t.metadata["scheduled_for"] for t in tasks}
    assert len(ticks) == len(tasks)  # one task per tick


async def test_the_double_texting_chat_shows_each_strategy(
    client: GatewayClient, settings: Settings
) -> None:
    recipe = COOKBOOK / "11_double_texting_chat"
    env = process_env(settings)
    async with workers(client, recipe, env, ("chat-1", "chat.ChatWorker", "")):
        lines = await script(recipe, env, "double_text.py")

    assert lines == [
        "enqueue: first completed: heard: book Lisbon",
        "enqueue: second completed: heard: book Lisbon / make it Porto",
        "reject: second refused: SessionBusyError (busy with the first: True)",
        "reject: first completed: heard: book Lisbon",
        "interrupt: first cancelled: stopped",
        "interrupt: second completed: heard: book Lisbon / make it Porto",
        "rollback: first cancelled: stopped",
        "rollback: second completed: heard: make it Porto",
    ]
