"""The recipe cookbook/langgraph_worker, run as its README says, against the real Redis: one
worker with the graph's state in memory; then two workers sharing the real PostgreSQL, where the
worker that asked the question is stopped before the answer is typed and the other one finishes
the conversation."""

import asyncio
import subprocess
import sys

import pytest

from by_framework import GatewayClient, Settings, StreamChunkEvent
from tests.support import ROOT, output_of, process_env, spawn, wait_online

RECIPE = ROOT / "cookbook" / "langgraph_worker"
QUESTION = "Book a weekend in Oslo? [yes/no] "
ANSWER = "Oslo will be sunny, 21°C this weekend: booked for you (yes)."


def expected(asker: str, finisher: str) -> list[str]:
    return [
        "  [node] model",
        '  [reasoning] calling lookup_weather({"city": "Oslo"})',
        "  [node] tools",
        "  [reasoning] lookup_weather -> sunny, 21°C",
        "  [node] model",
        '  [reasoning] calling book_trip({"city": "Oslo"})',
        "  [node] tools",
        f"({asker} asked; the task waits, no worker holds it)",
        f"{QUESTION}yes",
        "  [node] tools",
        "  [reasoning] book_trip -> booked for you (yes)",
        "  [node] model",
        ANSWER,
        f"completed on {finisher}: {ANSWER}",
    ]


@pytest.fixture
def recipe_env(settings: Settings) -> dict[str, str]:
    return process_env(settings)


async def test_the_langgraph_recipe_on_one_worker_with_its_state_in_memory(
    client: GatewayClient, recipe_env: dict[str, str]
) -> None:
    worker = spawn(
        [sys.executable, "deploy.py"], RECIPE, {**recipe_env, "BYAI_WORKER_ID": "trip-1"}
    )
    try:
        await wait_online(client, "trip-1", 30)
        asked = await asyncio.to_thread(
            subprocess.run, [sys.executable, "ask.py", "Plan a weekend in Oslo", "--answer", "yes"],
            cwd=RECIPE, env=recipe_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        worker.terminate()
        code = await asyncio.to_thread(worker.wait, 20)
    assert code == 0, output_of(worker)
    assert "keeps its graph state in memory" in output_of(worker)
    assert asked.returncode == 0, asked.stderr
    session, *lines = asked.stdout.splitlines()
    assert lines == expected("trip-1", "trip-1")
    await assert_streamed_word_by_word(client, session.removeprefix("session "))


async def test_the_langgraph_recipe_on_two_workers_sharing_postgresql(
    client: GatewayClient, recipe_env: dict[str, str], checkpointer_url: str
) -> None:
    env = {**recipe_env, "BYAI_LANGGRAPH_CHECKPOINTER_URL": checkpointer_url}
    workers = {
        name: spawn([sys.executable, "deploy.py"], RECIPE, {**env, "BYAI_WORKER_ID": name})
        for name in ("trip-1", "trip-2")
    }
    ask = None
    try:
        await asyncio.gather(*(wait_online(client, name, 30) for name in workers))
        ask = await asyncio.create_subprocess_exec(
            sys.executable, "ask.py", "Plan a weekend in Oslo", cwd=RECIPE, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert ask.stdout is not None and ask.stdin is not None
        lines: list[str] = []
        async with asyncio.timeout(30):
            while not lines or not lines[-1].endswith("no worker holds it)"):
                line = await ask.stdout.readline()
                assert line, (await ask.communicate())[1].decode()  # ask.py ended early
                lines.append(line.decode().rstrip("\n"))
        asker = lines[-1].split()[0].lstrip("(")
        workers[asker].terminate()  # the worker that asked goes away before the answer
        assert await asyncio.to_thread(workers[asker].wait, 20) == 0
        ask.stdin.write(b"yes\n")
        await ask.stdin.drain()
        rest, errors = await asyncio.wait_for(ask.communicate(), 60)
    finally:
        if ask is not None and ask.returncode is None:
            ask.kill()
            await ask.wait()
        for process in workers.values():
            if process.poll() is None:
                process.terminate()
        codes = [await asyncio.to_thread(p.wait, 20) for p in workers.values()]
    assert codes == [0, 0], [output_of(p) for p in workers.values()]
    assert ask is not None and ask.returncode == 0, errors.decode()
    lines += rest.decode().replace(QUESTION, f"{QUESTION}yes\n").splitlines()  # as typed
    session, *lines = lines
    other = ({"trip-1", "trip-2"} - {asker}).pop()
    assert lines == expected(asker, other)  # the state was intact on the other worker
    await assert_streamed_word_by_word(client, session.removeprefix("session "))


async def assert_streamed_word_by_word(client: GatewayClient, session: str) -> None:
    last = await client.last_event_id(session)
    tokens = []
    async for item in client.events(session, timeout=10):
        if isinstance(item.event, StreamChunkEvent) and item.event.kind == "text":
            tokens.append(item.event.content)
        if item.stream_id == last:
            break
    words = ANSWER.split(" ")
    assert tokens == [words[0], *(f" {word}" for word in words[1:])]
