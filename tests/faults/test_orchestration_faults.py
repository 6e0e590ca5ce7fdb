"""Workers die (SIGKILL) around agents calling agents: parents re-run and replay their journal,
children re-run once reclaimed, and every task still ends exactly once with the right reply.

Every worker is a real process started through the CLI; what a user would see is counted on
the session stream: RUNNING state events (one per run) and result events (one per ended run).
"""

import asyncio
import collections
import subprocess
import time

import pytest

from by_framework import (
    AgentState,
    GatewayClient,
    Settings,
    StateChangeEvent,
    TaskRecord,
    TaskResultEvent,
)
from tests.support import eventually, output_of, wait_online, worker_process

ORCHESTRA = "tests.agents.OrchestraAgent"  # planner: {"op": "call"} calls an agent, waits
ECHO = "tests.agents.EchoAgent"  # echo: {"sleep": s} sleeps s seconds, answers its content
FANOUT = "tests.fault_agents.FanoutParent"  # fault-fanout: a group over fault-child-a/-b
SLOW_CHILD = "tests.fault_agents.SlowChild"  # fault-child-a, fault-child-b: sleep, answer


# Processes


async def start(
    client: GatewayClient, settings: Settings, *workers: tuple[str, str, tuple[str, ...]]
) -> dict[str, subprocess.Popen[str]]:
    """Worker processes (worker id, class, extra CLI arguments), all online on return."""
    processes: dict[str, subprocess.Popen[str]] = {}
    try:
        for worker_id, worker_class, extra in workers:
            processes[worker_id] = worker_process(settings, worker_id, worker_class, *extra)
        await asyncio.gather(*(wait_online(client, worker_id) for worker_id in processes))
    except BaseException:
        stop_all(processes)
        raise
    return processes


def kill(process: subprocess.Popen[str]) -> None:
    process.kill()  # SIGKILL: no shutdown, no hand-back, no deregistration
    process.wait(timeout=10)


def stop_all(processes: dict[str, subprocess.Popen[str]]) -> dict[str, int]:
    """Stop every process still running (SIGTERM, then SIGKILL past a deadline); exit codes."""
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    codes = {}
    for worker_id, process in processes.items():
        try:
            codes[worker_id] = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            codes[worker_id] = process.wait(timeout=10)
    return codes


def assert_clean_exits(
    processes: dict[str, subprocess.Popen[str]], codes: dict[str, int], killed: set[str]
) -> None:
    for worker_id, code in codes.items():
        expected = -9 if worker_id in killed else 0
        assert code == expected, f"{worker_id} exited {code}:\n{output_of(processes[worker_id])}"


# Observation


async def record(client: GatewayClient, message_id: str) -> TaskRecord:
    task = await client.get_task(message_id)
    assert task is not None, f"no record of {message_id}"
    return task


def states(task: TaskRecord) -> list[str]:
    return [state.value for state, _ in task.timeline]


def _stream_position(stream_id: str) -> tuple[int, int]:
    millis, _, seq = stream_id.partition("-")
    return int(millis), int(seq or 0)


class Tally:
    """Per task of one session: runs (RUNNING state events written when a run begins; a task
    going on after waiting for its sub-calls says "running" with a detail, not counted) and
    result events, as a user reading the session stream sees them."""

    def __init__(self) -> None:
        self.runs: collections.Counter[str] = collections.Counter()
        self.results: collections.Counter[str] = collections.Counter()

    @classmethod
    async def of(cls, client: GatewayClient, session_id: str) -> "Tally":
        tally = cls()
        last = _stream_position(await client.last_event_id(session_id))
        try:
            async with asyncio.timeout(5):
                async for item in client.events(session_id):
                    if isinstance(item.event, TaskResultEvent):
                        tally.results[item.message_id] += 1
                    elif item.event == StateChangeEvent(state="running"):
                        tally.runs[item.message_id] += 1
                    if _stream_position(item.stream_id) >= last:
                        break
        except TimeoutError:
            pass  # the stream's last entry was a repeat the reader skips: all was read
        return tally

    def counts(self, label: str, message_ids: list[str]) -> dict[str, int]:
        counts = {
            "sent": len(message_ids),
            "completed": sum(1 for m in message_ids if self.results[m] >= 1),
            "lost": sum(1 for m in message_ids if self.results[m] == 0),
            "duplicated": sum(1 for m in message_ids if self.results[m] > 1),
            "rerun": sum(1 for m in message_ids if self.runs[m] > 1),
            "runs": sum(self.runs[m] for m in message_ids),
        }
        print(f"fault tally ({label}):", counts)
        return counts


# The tests


@pytest.mark.parametrize(
    "child_sleep",
    [
        pytest.param(3.0, id="child-outlives-the-dead-parent-run"),
        pytest.param(0.5, id="child-ends-while-the-parent-is-orphaned"),
    ],
)
async def test_sigkill_the_parents_worker_while_its_child_runs(
    client: GatewayClient, settings: Settings, child_sleep: float
) -> None:
    """The parent re-runs on the other parent worker and replays its journaled call: it gets the
    child's reply, and the child is neither dispatched nor run again."""
    processes = await start(
        client,
        settings,
        ("parent-a", ORCHESTRA, ()),
        ("parent-b", ORCHESTRA, ()),
        ("child-c", ECHO, ()),
    )
    killed: set[str] = set()
    try:
        question = {"sleep": child_sleep, "tag": "parent-kill"}
        sent = await client.send_message(
            "planner", "s-parent-kill", {"op": "call", "target": "echo", "content": question}
        )

        async def parent_waits() -> TaskRecord | None:
            task = await record(client, sent.message_id)
            return task if task.status is AgentState.WAITING_REPLY and task.children else None

        waiting = await eventually(parent_waits, what="the parent to wait for its child")
        (child_id,) = waiting.children

        async def child_started() -> bool:
            return (await record(client, child_id)).status is not AgentState.QUEUED

        await eventually(child_started, what="the child to start")
        victim = waiting.worker_id
        assert victim in {"parent-a", "parent-b"}
        kill(processes[victim])
        killed.add(victim)
        killed_at = time.monotonic()
        result = await client.wait_for_result(sent.message_id, timeout=30)
        ended_in = time.monotonic() - killed_at
    finally:
        codes = stop_all(processes)
    assert_clean_exits(processes, codes, killed)

    survivor = ({"parent-a", "parent-b"} - killed).pop()
    parent = await record(client, sent.message_id)
    child = await record(client, child_id)
    tally = await Tally.of(client, "s-parent-kill")
    parent_counts = tally.counts("parent", [sent.message_id])
    child_counts = tally.counts("child", [child_id])
    print(
        f"killed {victim}; parent ended on {parent.worker_id} {ended_in:.2f}s later; "
        f"parent timeline {states(parent)}; child timeline {states(child)}"
    )

    assert result.status is AgentState.COMPLETED, result
    assert result.content == {"reply": question, "status": "completed"}
    assert parent.worker_id == survivor
    assert parent.delivery_count == 2
    assert parent.children == [child_id], "the re-run dispatched its call again"
    assert (tally.runs[sent.message_id], tally.results[sent.message_id]) == (2, 1)
    assert child.status is AgentState.COMPLETED and child.worker_id == "child-c"
    assert child.delivery_count == 1
    assert states(child) == ["queued", "running", "completed"]
    assert (tally.runs[child_id], tally.results[child_id]) == (1, 1), "the child ran again"
    assert (parent_counts["lost"], parent_counts["duplicated"]) == (0, 0)
    assert (child_counts["lost"], child_counts["duplicated"]) == (0, 0)


async def test_sigkill_the_childs_worker_while_it_runs(
    client: GatewayClient, settings: Settings
) -> None:
    """The child is reclaimed and re-run on the other child worker; the parent, which never
    moved, gets exactly one reply and runs once."""
    processes = await start(
        client,
        settings,
        ("orchestra", ORCHESTRA, ()),
        ("child-1", ECHO, ()),
        ("child-2", ECHO, ()),
    )
    killed: set[str] = set()
    try:
        question = {"sleep": 2.0, "tag": "child-kill"}
        sent = await client.send_message(
            "planner", "s-child-kill", {"op": "call", "target": "echo", "content": question}
        )

        async def running_child() -> TaskRecord | None:
            parent = await record(client, sent.message_id)
            if not parent.children:
                return None
            child = await record(client, parent.children[0])
            return child if child.status is AgentState.RUNNING else None

        child = await eventually(running_child, what="the child to run")
        victim = child.worker_id
        assert victim in {"child-1", "child-2"}
        kill(processes[victim])
        killed.add(victim)
        result = await client.wait_for_result(sent.message_id, timeout=30)
    finally:
        codes = stop_all(processes)
    assert_clean_exits(processes, codes, killed)

    survivor = ({"child-1", "child-2"} - killed).pop()
    parent = await record(client, sent.message_id)
    child = await record(client, child.message_id)
    tally = await Tally.of(client, "s-child-kill")
    parent_counts = tally.counts("parent", [sent.message_id])
    child_counts = tally.counts("child", [child.message_id])
    print(
        f"killed {victim}; child re-ran on {child.worker_id}; "
        f"parent timeline {states(parent)}; child timeline {states(child)}"
    )

    assert result.status is AgentState.COMPLETED, result
    assert result.content == {"reply": question, "status": "completed"}
    assert parent.worker_id == "orchestra" and parent.delivery_count == 1
    assert parent.children == [child.message_id]
    assert (tally.runs[sent.message_id], tally.results[sent.message_id]) == (1, 1)
    assert child.status is AgentState.COMPLETED and child.worker_id == survivor
    assert child.delivery_count == 2
    assert (tally.runs[child.message_id], tally.results[child.message_id]) == (2, 1)
    assert (parent_counts["lost"], parent_counts["duplicated"], parent_counts["rerun"]) == (0, 0, 0)
    assert (child_counts["lost"], child_counts["duplicated"], child_counts["rerun"]) == (0, 0, 1)


async def test_fanout_of_20_over_2_agent_types_survives_a_child_worker_sigkill(
    client: GatewayClient, settings: Settings
) -> None:
    """One of two child workers dies with children in hand: its children re-run on the other,
    the group still counts down to zero once per child, and the parent collects 20 of 20."""
    n, targets = 20, ["fault-child-a", "fault-child-b"]
    kids = ("kid-1", "kid-2")
    small = ("--max-concurrency", "2")  # children spread over both workers, a few at a time
    processes = await start(
        client,
        settings,
        ("fanout", FANOUT, ()),
        (kids[0], SLOW_CHILD, small),
        (kids[1], SLOW_CHILD, small),
    )
    killed: set[str] = set()
    session = "s-fanout-kill"
    try:
        sent = await client.send_message(
            "fault-fanout", session, {"n": n, "targets": targets, "child_sleep": 0.5}
        )

        async def victim_in_the_middle() -> str | None:
            """A child worker holding a child that started just now, once a few have ended."""
            children = [
                task
                for task in await client.list_session_tasks(session)
                if task.parent_message_id == sent.message_id
            ]
            if sum(task.status is AgentState.COMPLETED for task in children) < 4:
                return None
            fresh = time.time() - 0.2  # at least 0.3 s of its 0.5 s left: it is cut short
            for task in children:
                started = task.started_at or 0
                if task.status is AgentState.RUNNING and started > fresh:
                    return task.worker_id
            return None

        victim = await eventually(victim_in_the_middle, what="a child worker mid-fan-out")
        assert victim in kids
        kill(processes[victim])
        killed.add(victim)
        result = await client.wait_for_result(sent.message_id, timeout=40)
    finally:
        codes = stop_all(processes)
    assert_clean_exits(processes, codes, killed)

    parent = await record(client, sent.message_id)
    ids = parent.children
    tally = await Tally.of(client, session)
    child_counts = tally.counts("children", ids)
    parent_counts = tally.counts("parent", [sent.message_id])
    children = [await record(client, child_id) for child_id in ids]
    rerun = [child for child in children if child.delivery_count > 1]
    print(f"killed {victim}; children re-run elsewhere: {len(rerun)}")

    assert result.status is AgentState.COMPLETED, result
    assert len(ids) == n and len(set(ids)) == n
    assert result.content["ids"] == ids
    results = result.content["results"]
    assert list(results) == ids, "results are not in dispatch order"
    for index, child_id in enumerate(ids):
        assert results[child_id]["status"] == "completed", results[child_id]
        assert results[child_id]["content"] == {"i": index, "agent": targets[index % 2]}
    assert all(child.status is AgentState.COMPLETED for child in children)
    assert all(child.delivery_count in {1, 2} for child in children)
    assert rerun and all(child.worker_id != victim for child in rerun)
    assert {tally.results[child_id] for child_id in ids} == {1}, "a child has 0 or 2+ results"
    completed, lost, duplicated = (child_counts[k] for k in ("completed", "lost", "duplicated"))
    assert (completed, lost, duplicated) == (n, 0, 0)
    assert child_counts["rerun"] == len(rerun)
    assert (tally.runs[sent.message_id], tally.results[sent.message_id]) == (1, 1)
    assert parent.delivery_count == 1 and parent_counts["duplicated"] == 0


async def test_fanout_parent_sigkilled_mid_group_replays_it_without_redispatching(
    client: GatewayClient, settings: Settings
) -> None:
    """The parent's worker dies while its 20 children run: the parent re-runs on the other
    parent worker, finds its group journaled (nothing dispatched again), and collects 20 of 20."""
    n, targets = 20, ["fault-child-a", "fault-child-b"]
    small = ("--max-concurrency", "2")
    processes = await start(
        client,
        settings,
        ("fanout-a", FANOUT, ()),
        ("fanout-b", FANOUT, ()),
        ("kid-1", SLOW_CHILD, small),
        ("kid-2", SLOW_CHILD, small),
    )
    killed: set[str] = set()
    session = "s-fanout-parent-kill"
    try:
        sent = await client.send_message(
            "fault-fanout", session, {"n": n, "targets": targets, "child_sleep": 0.5}
        )

        async def parent_mid_group() -> TaskRecord | None:
            parent = await record(client, sent.message_id)
            if parent.status is not AgentState.WAITING_REPLY:
                return None
            children = [await record(client, child_id) for child_id in parent.children]
            ended = sum(child.status is AgentState.COMPLETED for child in children)
            return parent if 4 <= ended < n - 4 else None

        waiting = await eventually(parent_mid_group, what="the parent mid-group")
        victim = waiting.worker_id
        assert victim in {"fanout-a", "fanout-b"}
        kill(processes[victim])
        killed.add(victim)
        result = await client.wait_for_result(sent.message_id, timeout=40)
    finally:
        codes = stop_all(processes)
    assert_clean_exits(processes, codes, killed)

    survivor = ({"fanout-a", "fanout-b"} - killed).pop()
    parent = await record(client, sent.message_id)
    ids = parent.children
    tally = await Tally.of(client, session)
    child_counts = tally.counts("children", ids)
    parent_counts = tally.counts("parent", [sent.message_id])
    print(f"killed {victim}; parent re-ran on {parent.worker_id}; timeline {states(parent)}")

    assert result.status is AgentState.COMPLETED, result
    assert len(ids) == n, "the re-run dispatched its group again"
    assert result.content["ids"] == ids and list(result.content["results"]) == ids
    for index, child_id in enumerate(ids):
        child_result = result.content["results"][child_id]
        assert child_result["status"] == "completed", child_result
        assert child_result["content"] == {"i": index, "agent": targets[index % 2]}
    completed, lost, duplicated = (child_counts[k] for k in ("completed", "lost", "duplicated"))
    assert (completed, lost, duplicated) == (n, 0, 0)
    assert child_counts["rerun"] == 0 and child_counts["runs"] == n, "a child ran again"
    assert parent.worker_id == survivor and parent.delivery_count == 2
    assert (tally.runs[sent.message_id], tally.results[sent.message_id]) == (2, 1)
    assert parent_counts["duplicated"] == 0


async def test_a_parent_waiting_several_leases_is_never_reclaimed(
    client: GatewayClient, settings: Settings
) -> None:
    """A child runs ~2.7 leases; its parent waits (holding no slot) all along, its lease renewed:
    neither the other parent worker nor the other child worker ever takes anything over."""
    processes = await start(
        client,
        settings,
        ("parent-a", ORCHESTRA, ()),
        ("parent-b", ORCHESTRA, ()),
        ("child-1", ECHO, ()),
        ("child-2", ECHO, ()),
    )
    try:
        question = {"sleep": settings.lease_seconds * 8 / 3, "tag": "long-child"}
        sent = await client.send_message(
            "planner", "s-long-wait", {"op": "call", "target": "echo", "content": question}
        )
        result = await client.wait_for_result(sent.message_id, timeout=30)
    finally:
        codes = stop_all(processes)
    assert_clean_exits(processes, codes, set())

    parent = await record(client, sent.message_id)
    (child_id,) = parent.children
    child = await record(client, child_id)
    tally = await Tally.of(client, "s-long-wait")
    parent_counts = tally.counts("parent", [sent.message_id])
    child_counts = tally.counts("child", [child_id])
    waited = child.finished_at - child.started_at  # type: ignore[operator]
    print(
        f"child ran {waited:.2f}s ({waited / settings.lease_seconds:.1f} leases); "
        f"parent timeline {states(parent)}"
    )

    assert result.status is AgentState.COMPLETED, result
    assert result.content == {"reply": question, "status": "completed"}
    assert waited > 2 * settings.lease_seconds
    assert parent.delivery_count == 1 and child.delivery_count == 1
    assert states(parent) == ["queued", "running", "waiting_reply", "running", "completed"]
    assert states(child) == ["queued", "running", "completed"]
    assert (tally.runs[sent.message_id], tally.results[sent.message_id]) == (1, 1)
    assert (tally.runs[child_id], tally.results[child_id]) == (1, 1)
    assert parent_counts["rerun"] == child_counts["rerun"] == 0
