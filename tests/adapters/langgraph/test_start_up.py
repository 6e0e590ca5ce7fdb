"""What a LangGraph worker refuses at start: something that is not a compiled graph, and a
PostgreSQL checkpointer it cannot reach. Each stops it at once with a line that says what to fix,
never a traceback from deep inside LangGraph or a connection pool's 30 s of retries."""

import asyncio
import subprocess
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
from by_framework_langgraph import LangGraphWorker, serve_graph
from by_framework_langgraph.worker import CHECKPOINTER_URL_ENV, STORE_URL_ENV
from langchain_core.prompts import ChatPromptTemplate

from by_framework import Settings
from tests.adapters.langgraph import graphs
from tests.adapters.langgraph.conftest import PG_URL
from tests.support import free_port, output_of, worker_process

NOT_A_GRAPH = r"graph must be a compiled LangGraph graph .*; got RunnableSequence$"


def _chain() -> Any:
    """A LangChain chain (``prompt | model``): it streams, but it is no graph."""
    prompt = ChatPromptTemplate.from_messages([("user", "{question}")])
    return prompt | graphs.ScriptedModel(script=graphs.chat_script)


def test_serve_graph_refuses_a_chain_before_it_connects_to_anything() -> None:
    with pytest.raises(TypeError, match=NOT_A_GRAPH):
        serve_graph(_chain(), "lg-chain", redis_url="redis://127.0.0.1:1")  # no Redis there


async def test_a_builder_that_returns_a_chain_is_refused_at_start_up() -> None:
    worker = LangGraphWorker(lambda checkpointer: _chain(), "lg-chain")
    with pytest.raises(TypeError, match=NOT_A_GRAPH):
        await worker.on_startup()


async def _the_one_line(
    settings: Settings,
    url: str,
    env: dict[str, str] | None = None,
    option: str = "checkpointer_url",
) -> str:
    """Starts a worker process on checkpointer ``url`` (or on ``env``); asserts that it exits
    with status 2 within 10 s and says so in one line naming ``option``, with no traceback and
    no warning; returns the line."""
    worker = worker_process(
        settings,
        "lg-no-checkpointer",
        f"{graphs.__name__}.ChatWorker",
        env=env or {CHECKPOINTER_URL_ENV: url},
    )
    started = time.monotonic()
    try:
        code = await asyncio.to_thread(worker.wait, 10)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        raise AssertionError(f"still running after 10 s:\n{output_of(worker)}") from None
    output = output_of(worker)
    print(f"exit {code} after {time.monotonic() - started:.1f}s:\n{output}")  # shown on failure
    assert code == 2, output
    assert "Traceback" not in output and "WARNING" not in output, output
    (line,) = [line for line in output.splitlines() if option in line]
    return line


async def test_a_closed_port_stops_the_worker_process_with_one_line(settings: Settings) -> None:
    port = free_port()
    line = await _the_one_line(settings, f"postgresql://postgres:s3cr3t@127.0.0.1:{port}/test")
    assert line.startswith(
        "by-framework: configuration error: checkpointer_url "
        f"postgresql://postgres:***@127.0.0.1:{port}/test ({CHECKPOINTER_URL_ENV}): "
        "cannot connect to PostgreSQL (connection failed:"
    )
    assert "Connection refused" in line


async def test_a_missing_database_stops_the_worker_process_with_one_line(
    settings: Settings,
) -> None:
    database = f"byf_lg_missing_{uuid.uuid4().hex[:12]}"
    line = await _the_one_line(settings, urlsplit(PG_URL)._replace(path=f"/{database}").geturl())
    assert "configuration error: checkpointer_url postgresql://" in line
    assert f'database "{database}" does not exist' in line


async def test_an_unreachable_store_stops_the_worker_process_with_one_line(
    settings: Settings, checkpointer_url: str
) -> None:
    port = free_port()
    url = f"postgresql://postgres:s3cr3t@127.0.0.1:{port}/test"
    env = {CHECKPOINTER_URL_ENV: checkpointer_url, STORE_URL_ENV: url}
    line = await _the_one_line(settings, url, env, option="store_url")
    assert line.startswith(
        "by-framework: configuration error: store_url "
        f"postgresql://postgres:***@127.0.0.1:{port}/test ({STORE_URL_ENV}): "
        "cannot connect to PostgreSQL (connection failed:"
    )
    assert "Connection refused" in line
