"""The command line, run as a user runs it: worker flags, send, tail, dev, and its errors."""

import asyncio
import json
import os
import signal
import sys

from by_framework import AgentState, GatewayClient, Settings
from by_framework.settings import reference_table
from tests.agents import ShowcaseAgent
from tests.support import ROOT, output_of, running_worker, spawn, wait_online, worker_process
from tests.test_cookbook import on_localhost_6379


def cli(settings: Settings, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "by_framework", *args,
        "--redis-url", str(settings.redis_url), "--key-prefix", settings.key_prefix,
    ]  # fmt: skip


__all__ = ["on_localhost_6379"]  # a fixture, used by name

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


async def test_tail_until_end_stops_at_the_newest_task(
    client: GatewayClient, settings: Settings
) -> None:
    """An old task ended long ago; a newer one is running: the tail replays both and stops at
    the newer one's end, not the first end it reads. ``--until`` names a task to stop at."""
    async with running_worker(ShowcaseAgent(), settings, worker_id="tail-w"):
        old = await client.send_message("showcase", "tail-s", {"sleep": 0})
        await client.wait_for_result(old.message_id, timeout=10)
        new = await client.send_message("showcase", "tail-s", {"sleep": 1})
        tail = spawn(cli(settings, "tail", "tail-s", "--until-end"), ROOT, ENV)
        lines = [json.loads(line) for line in (await finish(tail)).splitlines()]
    ends = [(line["task"], line["type"]) for line in lines if line["type"] == "end"]
    assert ends == [(old.message_id, "end"), (new.message_id, "end")]
    assert lines[-1]["type"] == "end" and lines[-1]["task"] == new.message_id

    named = spawn(cli(settings, "tail", "tail-s", "--until", old.message_id), ROOT, ENV)
    replayed = [json.loads(line) for line in (await finish(named)).splitlines()]
    assert replayed == lines[: lines.index(next(x for x in lines if x["type"] == "end")) + 1]
    assert {line["task"] for line in replayed} == {old.message_id}


async def test_each_demo_run_has_a_session_of_its_own(settings: Settings) -> None:
    """`make demo` twice: two sessions, and tailing the one a run printed replays that run."""
    outputs = [await finish(spawn(cli(settings, "demo"), ROOT, ENV)) for _ in range(2)]
    sessions = [
        line.split()[1] for output in outputs for line in output.splitlines()
        if line.startswith("session ")
    ]  # fmt: skip
    assert len(sessions) == 2 and sessions[0] != sessions[1]
    assert all(session.startswith("demo-") for session in sessions)
    sent = next(line.split()[2] for line in outputs[1].splitlines() if line.startswith("sent "))
    tail = spawn(cli(settings, "tail", sessions[1], "--until-end"), ROOT, ENV)
    lines = [json.loads(line) for line in (await finish(tail)).splitlines()]
    assert {line["task"] for line in lines} == {sent}
    assert lines[-1]["type"] == "end"


async def test_demo_says_which_redis_it_found(on_localhost_6379: None, settings: Settings) -> None:
    env = {k: v for k, v in ENV.items() if k != "REDIS_URL"}
    env["BYAI_KEY_PREFIX"] = settings.key_prefix
    output = await finish(spawn([sys.executable, "-m", "by_framework", "demo"], ROOT, env))
    assert "by-framework: no Redis configured; using the one answering at " in output
    assert "redis://127.0.0.1:6379/0" in output


async def test_send_waits_for_a_worker_started_after_it(
    client: GatewayClient, settings: Settings
) -> None:
    command = cli(settings, "send", "showcase", "{\"sleep\": 0}", "--session", "late-s",
                  "--wait-for-worker", "30", "--follow")  # fmt: skip
    sender = spawn(command, ROOT, ENV)
    await asyncio.sleep(1)
    assert sender.poll() is None, output_of(sender)  # still waiting: nothing serves "showcase"
    async with running_worker(ShowcaseAgent(), settings, worker_id="late-w"):
        lines = [json.loads(line) for line in (await finish(sender)).splitlines()]
    assert lines[-2]["type"] == "result" and lines[-2]["result"]["content"] == {"sleep": 0}
    assert lines[-1]["type"] == "end"


async def test_config_shows_each_value_and_its_source() -> None:
    env = {
        **{k: v for k, v in ENV.items() if not k.startswith(("BYAI_", "BYF_", "REDIS_"))},
        "BYAI_HEARTBEAT_TTL": "40",
        "REDIS_URL": "redis://app:hunter2@cache.internal:6380/1",
        "BYAI_SIGNING_KEY": "k" * 32,
    }
    shown = spawn([sys.executable, "-m", "by_framework", "config", "--max-concurrency", "3",
                   "--heartbeat-ttl", "45"], ROOT, env)  # fmt: skip
    rows = {line.split()[0]: line.split()[1:] for line in (await finish(shown)).splitlines()}
    assert rows["max_concurrency"] == ["3", "flag", "--max-concurrency"]
    assert rows["heartbeat_ttl"] == ["45.0", "flag", "--heartbeat-ttl"]  # the flag beats the env
    assert rows["redis_url"] == ["redis://app:***@cache.internal:6380/1", "env", "REDIS_URL"]
    assert rows["signing_key"] == ["(set,", "hidden)", "env", "BYAI_SIGNING_KEY"]
    assert rows["fetch_count"] == [str(Settings().fetch_count), "default"]
    assert rows.keys() == {"setting", *Settings.model_fields}
    assert "hunter2" not in output_of(shown) and "k" * 32 not in output_of(shown)

    bad = spawn([sys.executable, "-m", "by_framework", "config", "--heartbeat-ttl", "1"], ROOT, env)
    assert await asyncio.to_thread(bad.wait, 30) == 2
    assert "heartbeat_ttl (1.0) must exceed heartbeat_interval" in output_of(bad)
    reference = spawn([sys.executable, "-m", "by_framework", "config", "--reference"], ROOT, env)
    assert await finish(reference) == reference_table()


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
        assert "no Redis configured or answering on 127.0.0.1:6379; started one at" in output
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
