"""Bad configuration, through the real command line: every subcommand given a URL without a
scheme, an unreachable Redis, a refused password, a broken TLS setup, a bad worker class, a bad
history or checkpointer URL ends within seconds with exit status 2 and one line that names the
setting, never a traceback or a hang."""

import asyncio
import os
import socket
import subprocess
import sys

import pytest
from redis.asyncio import Redis

from by_framework import Settings
from tests.conftest import CORE_ONLY
from tests.faults.test_redis_outages import durable_redis  # noqa: F401
from tests.support import ROOT, DurableRedis, output_of, spawn

WAIT = 15.0
"""Seconds a command may take to give up; each gives up in a few."""

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PASSWORD = "s3cret-of-the-test"
WRONG_PASSWORD = "not-the-password-42"
PG_BASE = os.environ.get("BYF_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BAD_PG_URLS = [
    "postgresql://postgres@127.0.0.1:{closed_port}/test",
    PG_BASE.rsplit("/", 1)[0] + "/byf_no_such_database",
]
"""PostgreSQL URLs that cannot work: a port nothing listens on (a ``closed_port()`` picked when
the test runs, so that every pytest-xdist worker collects the same test ids), a database that
does not exist."""
BAD_PG_IDS = ["unreachable", "no-such-database"]

COMMANDS = {
    "worker": ["--worker-class", "tests.agents.EchoAgent", "--worker-id", "bad-config"],
    "dev": ["dev", "--worker-class", "tests.agents.EchoAgent", "--worker-id", "bad-config"],
    "send": ["send", "echo", "hi", "--session", "bad-config"],
    "tail": ["tail", "bad-config"],
    "dead-letter": ["dead-letter", "list"],
    "demo": ["demo"],
}


def closed_port() -> int:
    """A loopback port that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def failure(args: list[str], env: dict[str, str] = ENV) -> list[str]:
    """The output lines of ``python -m by_framework ARGS``, which must exit 2 within WAIT
    seconds, without a traceback, its last line the by-framework error."""
    process = spawn([sys.executable, "-m", "by_framework", *args], ROOT, env)
    try:
        code = await asyncio.to_thread(process.wait, WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"{args} still ran after {WAIT:g}s:\n{output_of(process)}") from None
    output = output_of(process)
    assert code == 2, output
    assert "Traceback" not in output, output
    lines = output.splitlines()
    assert lines and lines[-1].startswith("by-framework: "), output
    return lines


async def one_line(args: list[str], env: dict[str, str] = ENV) -> str:
    lines = await failure(args, env)
    assert len(lines) == 1, "\n".join(lines)
    return lines[0]


def with_redis(command: str, url: str, settings: Settings, *extra: str) -> list[str]:
    return [*COMMANDS[command], "--redis-url", url, "--key-prefix", settings.key_prefix, *extra]


@pytest.mark.parametrize("command", COMMANDS)
async def test_redis_url_without_a_scheme(command: str, settings: Settings) -> None:
    line = await one_line(with_redis(command, "localhost:6379", settings))
    assert "redis_url" in line and "redis://localhost:6379" in line, line


@pytest.mark.parametrize("command", COMMANDS)
async def test_unreachable_redis(command: str, settings: Settings) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    line = await one_line(with_redis(command, url, settings))
    assert "cannot reach Redis" in line and "redis_url" in line, line


@pytest.fixture
async def guarded_redis(durable_redis: DurableRedis) -> DurableRedis:  # noqa: F811
    """The test's own redis-server, with a password."""
    redis = Redis.from_url(durable_redis.url)
    await redis.config_set("requirepass", PASSWORD)
    await redis.aclose()
    return durable_redis


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("password", [None, WRONG_PASSWORD])
async def test_refused_password(
    command: str, password: str | None, guarded_redis: DurableRedis, settings: Settings
) -> None:
    url = guarded_redis.url
    if password is not None:
        url = url.replace("redis://", f"redis://:{password}@")
    line = await one_line(with_redis(command, url, settings))
    assert "refused the credentials" in line and "redis_password" in line, line
    assert WRONG_PASSWORD not in line


@pytest.mark.parametrize("command", ["worker", "tail"])
async def test_tls_to_a_plain_server(
    command: str,
    durable_redis: DurableRedis,  # noqa: F811
    settings: Settings,
) -> None:
    url = durable_redis.url.replace("redis://", "rediss://")
    line = await one_line(with_redis(command, url, settings))
    assert "cannot reach Redis" in line and "TLS" in line, line


@pytest.mark.parametrize("command", ["worker", "send"])
async def test_missing_tls_file(command: str, settings: Settings) -> None:
    args = ["--redis-ssl-ca-certs", "/nonexistent/ca.pem"]
    line = await one_line(with_redis(command, "rediss://127.0.0.1:6380/0", settings, *args))
    assert "redis_ssl_ca_certs" in line and "/nonexistent/ca.pem" in line, line


@pytest.mark.parametrize("worker_class", ["nodots", "tests.agents.Nope", "tests.no_such.Agent"])
async def test_bad_worker_class(worker_class: str, settings: Settings) -> None:
    args = ["--worker-class", worker_class, "--redis-url", str(settings.redis_url)]
    line = await one_line(args)
    assert "--worker-class" in line and repr(worker_class) in line, line


@pytest.mark.parametrize("command", ["worker", "tail"])
async def test_bad_setting_value_is_one_line_without_secrets(
    command: str, settings: Settings
) -> None:
    env = {**ENV, "BYAI_REDIS_PORT": "abc", "BYAI_REDIS_PASSWORD": PASSWORD}
    env.pop("REDIS_URL", None)
    line = await one_line([*COMMANDS[command], "--key-prefix", settings.key_prefix], env)
    assert "redis_port" in line and "BYAI_REDIS_PORT" in line, line
    assert PASSWORD not in line


@pytest.mark.skipif(CORE_ONLY, reason="the PostgreSQL history package is not installed there")
@pytest.mark.parametrize("history_url", BAD_PG_URLS, ids=BAD_PG_IDS)
async def test_bad_history_url(history_url: str, settings: Settings) -> None:
    history_url = history_url.format(closed_port=closed_port())
    args = with_redis("worker", str(settings.redis_url), settings, "--history-url", history_url)
    line = (await failure(args))[-1]
    assert "history_url" in line and "BYF_HISTORY_URL" in line, line


@pytest.mark.skipif(CORE_ONLY, reason="the LangGraph adapter is not installed in the core run")
@pytest.mark.parametrize("checkpointer_url", BAD_PG_URLS, ids=BAD_PG_IDS)
async def test_bad_langgraph_checkpointer_url(checkpointer_url: str, settings: Settings) -> None:
    checkpointer_url = checkpointer_url.format(closed_port=closed_port())
    env = {**ENV, "BYAI_LANGGRAPH_CHECKPOINTER_URL": checkpointer_url}
    args = ["--worker-class", "tests.adapters.langgraph.graphs.ChatWorker", "--worker-id", "lg-bad"]
    line = (await failure([*args, "--redis-url", str(settings.redis_url),
                           "--key-prefix", settings.key_prefix], env))[-1]  # fmt: skip
    assert "checkpointer_url" in line and "BYAI_LANGGRAPH_CHECKPOINTER_URL" in line, line
