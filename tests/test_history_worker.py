"""Workers record each task's turns in the session history, and tasks read it through
``context.history``: in this process, in worker processes, with the backend chosen by env var."""

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from by_framework_history_postgres import PostgresHistoryStore

from by_framework import (
    AgentState,
    ConfigurationError,
    GatewayClient,
    MemoryHistoryStore,
    Settings,
    WorkerRunner,
)
from by_framework.history import backends, recorder
from by_framework.ports import HistoryMessage
from by_framework.redis.engine import RedisEngine
from tests.history_agents import HistoryAgent
from tests.support import output_of, running_worker, wait_online, worker_process


def turns(messages: list[HistoryMessage]) -> list[tuple[str, str, Any]]:
    return [(m.role, m.metadata["kind"], m.content) for m in messages]


async def test_a_task_records_its_message_and_result_and_sees_the_session_so_far(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(HistoryAgent(), settings) as runner:
        first = await client.send_message("historian", "s-chat", "hello")
        one = await client.wait_for_result(first.message_id, timeout=10)
        second = await client.send_message("historian", "s-chat", {"text": "and again"})
        two = await client.wait_for_result(second.message_id, timeout=10)
        history = (await runner.history.list("s-chat")).messages
    assert one.content["seen"] == [["user", "message", first.message_id]]
    assert two.content["seen"] == [
        ["user", "message", first.message_id],
        ["assistant", "result", first.message_id],
        ["user", "message", second.message_id],
    ]
    assert turns(history) == [
        ("user", "message", "hello"),
        ("assistant", "result", one.content),
        ("user", "message", {"text": "and again"}),
        ("assistant", "result", two.content),
    ]
    result = history[1]
    assert result.key == f"{first.message_id}:0:result"
    assert result.metadata == {
        "message_id": first.message_id,
        "agent_type": "historian",
        "kind": "result",
        "run": 0,
        "status": "completed",
    }


async def test_the_question_and_the_answer_of_ask_user_are_turns_too(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(HistoryAgent(), settings) as runner:
        sent = await client.send_message("historian", "s-ask", "ask")
        waiting = await client.wait_for_result(sent.message_id, timeout=10)
        assert waiting.status is AgentState.WAITING_USER
        await client.resume(sent.message_id, "s-ask", "blue", reply_data={"via": "web"})
        answered = await client.wait_for_result(sent.message_id, timeout=10)
        history = (await runner.history.list("s-ask")).messages
    assert turns(history) == [
        ("user", "message", "ask"),
        ("assistant", "ask_user", "Favourite colour?"),
        ("user", "resume", "blue"),
        ("assistant", "result", answered.content),
    ]
    assert [m.metadata["run"] for m in history] == [0, 0, 1, 1]
    assert history[1].metadata["ask_user"]["options"] == ["red", "blue"]
    assert history[2].metadata["reply_data"] == {"via": "web"}
    assert answered.content["seen"][-1] == ["user", "resume", sent.message_id]


async def test_a_sub_call_is_recorded_with_its_caller_as_the_role(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(HistoryAgent(), settings) as runner:
        sent = await client.send_message("historian", "s-sub", {"call": "inner"})
        result = await client.wait_for_result(sent.message_id, timeout=10)
        history = (await runner.history.list("s-sub")).messages
    child = result.content["seen"][1][2]
    assert turns(history)[:3] == [
        ("user", "message", {"call": "inner"}),
        ("historian", "message", "inner"),  # the calling agent speaks to the callee
        ("assistant", "result", result.content["reply"]),
    ]
    assert history[1].metadata["parent_message_id"] == sent.message_id
    assert history[1].metadata["message_id"] == child
    assert turns(history)[3] == ("assistant", "result", result.content)


async def test_a_failed_task_records_its_error(client: GatewayClient, settings: Settings) -> None:
    async with running_worker(HistoryAgent(), settings) as runner:
        sent = await client.send_message("historian", "s-fail", "fail")
        await client.wait_for_result(sent.message_id, timeout=10)
        history = (await runner.history.list("s-fail")).messages
    assert history[-1].metadata["status"] == "failed"
    assert history[-1].metadata["error"] == "RuntimeError: asked to fail"


class _Broken(MemoryHistoryStore):
    def __init__(self, hang: bool) -> None:
        super().__init__()
        self.hang = hang

    async def append(self, *args: Any, **kwargs: Any) -> HistoryMessage:
        if self.hang:
            await asyncio.Event().wait()
        raise ConnectionError("history database is down")


@pytest.mark.parametrize("hang", [False, True], ids=["failing", "hanging"])
async def test_a_history_store_in_trouble_never_fails_a_task(
    client: GatewayClient,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    hang: bool,
) -> None:
    monkeypatch.setitem(backends.BUILT_IN, "broken", lambda url: _Broken(hang))
    monkeypatch.setattr(recorder, "APPEND_TIMEOUT", 0.2)
    caplog.set_level(logging.WARNING, "by_framework.history")
    async with running_worker(HistoryAgent(), settings, history_url="broken://"):
        sent = await client.send_message("historian", "s-down", "hello")
        result = await client.wait_for_result(sent.message_id, timeout=10)
    assert result.status is AgentState.COMPLETED
    problem = "no answer in 0.2s" if hang else "ConnectionError: history database is down"
    lines = [r.getMessage() for r in caplog.records if r.name == "by_framework.history"]
    assert [line.endswith(problem) for line in lines] == [True, True]
    assert "the message of task" in lines[0]
    assert "the result of task" in lines[1]


async def test_a_backend_that_is_not_installed_stops_the_worker_before_it_starts(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backends, "entry_points", lambda group: [])
    pg = settings.model_copy(update={"history_url": "postgresql://app@db/agents"})
    engine = RedisEngine.connect(pg)
    try:
        with pytest.raises(
            ConfigurationError, match=r"pip install \./history/postgres \(in a clone"
        ):
            WorkerRunner(HistoryAgent(), engine, pg)
    finally:
        await engine.aclose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("cassandra://db", "no history backend serves cassandra://"),
        (
            "postgresql://postgres:s3cr3t@127.0.0.1:1/test",
            "the history store postgresql://postgres:***@127.0.0.1:1/test did not start",
        ),
    ],
    ids=["unknown", "unreachable"],
)
async def test_a_worker_process_with_a_history_it_cannot_use_exits_at_start_up(
    settings: Settings, url: str, message: str
) -> None:
    worker = worker_process(
        settings, "w-no-history", "tests.history_agents.HistoryAgent", env={"BYF_HISTORY_URL": url}
    )
    code = await asyncio.to_thread(worker.wait, 20)
    output = output_of(worker)
    assert code == 2, output
    assert f"by-framework: configuration error: {message}" in output
    assert "s3cr3t" not in output


# The same worker code, switched between memory and PostgreSQL by BYF_HISTORY_URL alone.


async def test_the_env_var_alone_chooses_where_workers_keep_history(
    client: GatewayClient, settings: Settings, history_url: str
) -> None:
    env = {"BYF_HISTORY_URL": history_url}
    agent = "tests.history_agents.HistoryAgent"
    workers = [worker_process(settings, w, agent, env=env) for w in ("h-one", "h-two")]
    try:
        await asyncio.gather(*(wait_online(client, w) for w in ("h-one", "h-two")))
        first = await client.send_message("historian", "s-env", "hi", target_worker_id="h-one")
        await client.wait_for_result(first.message_id, timeout=10)
        second = await client.send_message("historian", "s-env", "hi", target_worker_id="h-two")
        result = await client.wait_for_result(second.message_id, timeout=10)
    finally:
        for worker in workers:
            worker.terminate()
        codes = [await asyncio.to_thread(worker.wait, 20) for worker in workers]
        assert codes == [0, 0], [output_of(w) for w in workers]
    mine = ["user", "message", second.message_id]
    if history_url == "memory://":  # each process keeps its own: h-two never saw the first turn
        assert result.content["seen"] == [mine]
        return
    assert result.content["seen"] == [  # one history, whichever worker ran the turn
        ["user", "message", first.message_id],
        ["assistant", "result", first.message_id],
        mine,
    ]
    store = PostgresHistoryStore.from_url(history_url)
    await store.start()
    try:
        rows = (await store.list("s-env")).messages
    finally:
        await store.aclose()
    assert [(m.role, m.metadata["message_id"]) for m in rows] == [
        ("user", first.message_id),
        ("assistant", first.message_id),
        ("user", second.message_id),
        ("assistant", second.message_id),
    ]
    assert rows[3].content == result.content


async def test_a_task_re_run_after_its_worker_died_records_each_turn_once(
    client: GatewayClient,
    settings: Settings,
    postgres_url: str,
    history_schema: str,
    tmp_path: Path,
) -> None:
    url = f"{postgres_url}?schema={history_schema}"
    agent = "tests.history_agents.HistoryAgent"
    doomed = worker_process(settings, "h-doomed", agent, env={"BYF_HISTORY_URL": url})
    try:
        await wait_online(client, "h-doomed")
        marker = tmp_path / "crashed"
        sent = await client.send_message("historian", "s-crash", {"crash_once": str(marker)})
        assert await asyncio.to_thread(doomed.wait, 20) == 17  # died mid-task
        survivor = worker_process(settings, "h-survivor", agent, env={"BYF_HISTORY_URL": url})
        try:
            result = await client.wait_for_result(sent.message_id, timeout=20)  # reclaimed
        finally:
            survivor.terminate()
            assert await asyncio.to_thread(survivor.wait, 20) == 0, output_of(survivor)
    finally:
        if doomed.poll() is None:
            doomed.kill()
    assert result.status is AgentState.COMPLETED
    assert result.content["seen"] == [["user", "message", sent.message_id]]  # not twice
    store = PostgresHistoryStore.from_url(url)
    await store.start()
    try:
        history = (await store.list("s-crash")).messages
    finally:
        await store.aclose()
    assert [(m.role, m.metadata["kind"]) for m in history] == [
        ("user", "message"),
        ("assistant", "result"),
    ]
