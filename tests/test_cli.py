"""The command line, run as a user runs it: worker flags, send, tail, dev, and its errors."""

import asyncio
import json
import os
import signal
import sys

from by_framework import AgentState, GatewayClient, Settings
from tests.support import ROOT, output_of, spawn, wait_online, worker_process


def cli(settings: Settings, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "by_framework", *args,
        "--redis-url", str(settings.redis_url), "--key-prefix", settings.key_prefix,
    ]  # fmt: skip


ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


async def finish(process, timeout: float = 30) -> str:  # type: ignore[no-untyped-def]
    code = await asyncio.to_thread(process.wait, timeout)
    output = output_of(process)
    assert code == 0, output
    return output


async def test_send_follow_and_tail(client: GatewayClient, settings: Settings) -> None:
    worker = worker_process(settings, "cli-w", "tests.agents.ShowcaseAgent")
    try:
        await wait_online(client, "cli-w")
        sender = spawn(cli(settings, "send", "showcase", '{"q": 1}', "--session", "cli-s",
                           "--follow"), ROOT, ENV)  # fmt: skip
        lines = [json.loads(line) for line in (await finish(sender)).splitlines()]
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    message_id = lines[0]["message_id"]
    assert lines[0]["session_id"] == "cli-s"
    assert [line["type"] for line in lines[1:]] == [
        "state", "state", "chunk", "chunk", "chunk", "chunk", "artifact", "result", "end"
    ]  # fmt: skip
    assert {line["task"] for line in lines[1:]} == {message_id}
    record = await client.get_task(message_id)
    assert record is not None and record.status is AgentState.COMPLETED

    tail = spawn(cli(settings, "tail", "cli-s", "--until-end"), ROOT, ENV)
    replayed = [json.loads(line) for line in (await finish(tail)).splitlines()]
    assert replayed == lines[1:]
    resumed = spawn(cli(settings, "tail", "cli-s", "--until-end", "--after",
                        replayed[6]["id"]), ROOT, ENV)  # fmt: skip
    assert [json.loads(line) for line in (await finish(resumed)).splitlines()] == replayed[7:]


async def test_send_without_a_worker_says_so(settings: Settings) -> None:
    command = cli(settings, "send", "nobody", "hi", "--session", "s", "--wait-for-worker", "0.2")
    sender = spawn(command, ROOT, ENV)
    code = await asyncio.to_thread(sender.wait, 30)
    assert code == 1
    assert "no online worker serves agent type 'nobody'" in output_of(sender)
    assert "waited 0.2s for one" in output_of(sender)


async def test_client_commands_without_redis_say_so(settings: Settings) -> None:
    sender = spawn([sys.executable, "-m", "by_framework", "dead-letter", "list", "--redis-url",
                    "redis://127.0.0.1:1/0"], ROOT, ENV)  # fmt: skip
    assert await asyncio.to_thread(sender.wait, 30) == 2
    assert "by-framework: configuration error: cannot reach Redis" in output_of(sender)
    assert "Traceback" not in output_of(sender)


async def test_worker_flags_errors(settings: Settings) -> None:
    missing = spawn(cli(settings, "--worker-class", "tests.agents.Nope", "--worker-id", "x"),
                    ROOT, ENV)  # fmt: skip
    assert await asyncio.to_thread(missing.wait, 30) == 2
    assert "--worker-class 'tests.agents.Nope' cannot be loaded" in output_of(missing)
    bad = spawn(cli(settings, "--worker-class", "tests.agents.EchoAgent", "--heartbeat-ttl", "1",
                    "--heartbeat-interval", "2"), ROOT, ENV)  # fmt: skip
    assert await asyncio.to_thread(bad.wait, 30) == 2
    assert "heartbeat_ttl (1.0) must exceed heartbeat_interval" in output_of(bad)
    unreachable = spawn(
        [sys.executable, "-m", "by_framework", "--worker-class", "tests.agents.EchoAgent",
         "--redis-url", "redis://127.0.0.1:1/0"], ROOT, ENV,
    )  # fmt: skip
    assert await asyncio.to_thread(unreachable.wait, 30) == 2
    assert "cannot reach Redis" in output_of(unreachable)


async def test_dev_starts_an_embedded_redis_when_none_is_configured(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**ENV, "BYAI_KEY_PREFIX": "dev-test"}
    env.pop("REDIS_URL", None)
    # Make the default address look silent, so that `dev` has to start its own Redis.
    dev = spawn(
        [sys.executable, "-c",
         "import by_framework.redis.embedded as e\n"
         "answers = e.redis_answers\n"
         "e.redis_answers = lambda host='127.0.0.1', port=6379, timeout=0.3: "
         "port != 6379 and answers(host, port, timeout)\n"
         "from by_framework.cli import main\n"
         "main(['dev', '--worker-class', 'tests.agents.EchoAgent',"
         " '--heartbeat-interval', '0.2', '--heartbeat-ttl', '1'])"],
        ROOT, env,
    )  # fmt: skip
    try:
        for _ in range(100):
            if "started one at redis://127.0.0.1:" in output_of(dev):
                break
            await asyncio.sleep(0.1)
        output = output_of(dev)
        url = output.split("started one at ")[1].split()[0]
        assert url != "redis://127.0.0.1:6379/0"
        send = spawn([sys.executable, "-m", "by_framework", "send", "echo", '"ping"', "--session",
                      "dev-s", "--follow", "--redis-url", url], ROOT, env)  # fmt: skip
        for _ in range(50):  # the worker registers a moment after Redis is up
            if await asyncio.to_thread(send.wait, 30) == 0:
                break
            await asyncio.sleep(0.2)
            send = spawn(send.args, ROOT, env)
        lines = [json.loads(line) for line in output_of(send).splitlines()]
        assert lines[-2]["result"]["content"] == "ping"
    finally:
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=20) == 0, output_of(dev)
