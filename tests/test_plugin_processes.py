"""Plugins in real worker processes: hot reload across workers while tasks run, failed reloads,
and start-up with a broken plugin (recovered from the config snapshot, or a clean exit)."""

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

from by_framework import AgentState, GatewayClient, Settings
from tests.support import output_of, wait_online, worker_process

FIXTURES = Path(__file__).resolve().parent / "plugin_fixtures"
AGENT = "tests.plugin_fixtures.agents.ConfiguredAgent"
PLUGIN_ERROR = "plugin configured-plugin: register_agent_configs raised RuntimeError"


def plugin_dir(tmp_path: Path, prompt: str) -> Path:
    """A plugin directory holding a copy of the configured plugin and its prompt file."""
    directory = tmp_path / "plugins"
    directory.mkdir()
    shutil.copy(FIXTURES / "configured_plugin.py", directory / "configured_plugin.py")
    (directory / "prompt.txt").write_text(prompt)
    return directory


def start(settings: Settings, worker_id: str, plugins: Path, *extra: str) -> subprocess.Popen[str]:
    return worker_process(settings, worker_id, AGENT, "--plugin-dir", str(plugins), *extra)


def stop(process: subprocess.Popen[str], timeout: float = 15) -> int:
    if process.poll() is None:
        process.terminate()
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"worker did not stop:\n{output_of(process)[-3000:]}") from None


async def run(
    client: GatewayClient, worker_id: str, content: dict[str, Any], timeout: float = 10
) -> tuple[dict[str, Any], int | None]:
    """Run a task on one worker: its answer, and the config version its record holds."""
    sent = await client.send_message("configured", "s", content, target_worker_id=worker_id)
    result = await client.wait_for_result(sent.message_id, timeout=timeout)
    assert result.status is AgentState.COMPLETED, result
    record = await client.get_task(sent.message_id)
    assert record is not None
    return result.content, record.config_version


async def wait_running(client: GatewayClient, message_ids: list[str], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        for message_id in message_ids:
            while True:
                record = await client.get_task(message_id)
                if record is not None and record.status is AgentState.RUNNING:
                    break
                await asyncio.sleep(0.02)


async def test_hot_reload_across_two_workers_while_tasks_run(
    client: GatewayClient, settings: Settings, tmp_path: Path
) -> None:
    plugins = plugin_dir(tmp_path, "prompt one")
    gate = tmp_path / "gate"
    # Two slots each, both taken by a held task: the reload reaches full workers.
    workers = {w: start(settings, w, plugins, "--max-concurrency", "2") for w in ("wa", "wb")}
    try:
        await asyncio.gather(*(wait_online(client, w) for w in workers))
        first = {w: (await run(client, w, {}))[0]["version"] for w in workers}
        held = {
            w: [
                await client.send_message(
                    "configured", f"held-{w}", {"wait_for": str(gate)}, target_worker_id=w
                )
                for _ in range(2)
            ]
            for w in workers
        }
        await wait_running(client, [s.message_id for sends in held.values() for s in sends])

        (plugins / "prompt.txt").write_text("prompt two")
        report = await client.reload_plugins(reason="prompt two")
        assert report.ok and report.missing == [], report
        assert set(report.answers) == set(workers)
        for w, ack in report.answers.items():
            assert (ack.status, ack.error) == ("ok", None), ack
            assert (ack.version_before, ack.version_after) == (first[w], first[w] + 1), ack
        for sends in held.values():  # the reload did not wait for them
            for sent in sends:
                record = await client.get_task(sent.message_id)
                assert record is not None and record.status is AgentState.RUNNING

        queued = {  # sent while both workers are full: they start after the reload
            w: await client.send_message("configured", f"new-{w}", {}, target_worker_id=w)
            for w in workers
        }
        gate.touch()
        for w in workers:
            for sent in held[w]:
                result = await client.wait_for_result(sent.message_id, timeout=10)
                record = await client.get_task(sent.message_id)
                assert result.content["worker"] == w
                assert result.content["prompt"] == "prompt one"
                assert result.content["version"] == first[w]
                assert record is not None and record.config_version == first[w]
            result = await client.wait_for_result(queued[w].message_id, timeout=10)
            record = await client.get_task(queued[w].message_id)
            assert result.content["prompt"] == "prompt two"
            assert result.content["version"] == first[w] + 1
            assert result.content["skills"] == [
                {"name": "greet", "built_for": "reload: prompt two"}
            ]
            assert record is not None and record.config_version == first[w] + 1

        # Failed reloads, one in register_agent_configs, one in reload: the last good configs stay.
        for text, error in (
            ("fail-build", f"{PLUGIN_ERROR}: prompt.txt asks the build to fail"),
            ("fail-reload", "plugin configured-plugin: reload raised ValueError: "
                            "prompt.txt asks reload to fail"),
        ):  # fmt: skip
            (plugins / "prompt.txt").write_text(text)
            report = await client.reload_plugins(reason=text)
            assert not report.ok and report.missing == [] and set(report.answers) == set(workers)
            for w, ack in report.answers.items():
                assert (ack.status, ack.error) == ("failed", error), ack
                assert (ack.version_before, ack.version_after) == (first[w] + 1, first[w] + 1)
            for w in workers:
                answer, version = await run(client, w, {})
                assert (answer["prompt"], answer["version"]) == ("prompt two", first[w] + 1)
                assert version == first[w] + 1

        # Fixed: the next reload goes on from the last good version.
        (plugins / "prompt.txt").write_text("prompt three")
        report = await client.reload_plugins(reason="fixed")
        assert report.ok, report
        for w in workers:
            ack = report.answers[w]
            assert (ack.version_before, ack.version_after) == (first[w] + 1, first[w] + 2)
            answer, version = await run(client, w, {})
            assert (answer["prompt"], answer["version"], version) == (
                "prompt three",
                first[w] + 2,
                first[w] + 2,
            )
    finally:
        gate.touch()
        codes = {w: stop(p) for w, p in workers.items()}
    assert codes == {"wa": 0, "wb": 0}, {w: output_of(p)[-3000:] for w, p in workers.items()}


async def test_one_config_version_names_one_config_across_workers(
    client: GatewayClient, settings: Settings, tmp_path: Path
) -> None:
    """Workers of one kind with the same plugins: a task's config version tells which configs
    it ran with, whichever worker ran it."""
    plugins = plugin_dir(tmp_path, "prompt one")
    workers = {}
    prompts: dict[int, set[str]] = {}  # config version -> the prompts tasks saw under it
    try:
        for w in ("wa", "wb"):  # one after the other, as a rolling deploy starts them
            workers[w] = start(settings, w, plugins)
            await wait_online(client, w)
        for w in workers:
            answer, _ = await run(client, w, {})
            prompts.setdefault(answer["version"], set()).add(answer["prompt"])
        (plugins / "prompt.txt").write_text("prompt two")
        report = await client.reload_plugins(reason="prompt two")
        for w in workers:
            answer, _ = await run(client, w, {})
            prompts.setdefault(answer["version"], set()).add(answer["prompt"])
    finally:
        for process in workers.values():
            stop(process)
    assert report.ok, report
    versions = {w: (a.version_before, a.version_after) for w, a in report.answers.items()}
    assert all(len(seen) == 1 for seen in prompts.values()), (
        f"one version number names two configs: {prompts}; reload answers {versions}"
    )
    assert len(set(versions.values())) == 1, versions


async def test_restart_with_a_broken_plugin_serves_the_last_known_good_configs(
    client: GatewayClient, settings: Settings, tmp_path: Path
) -> None:
    plugins = plugin_dir(tmp_path, "known good")
    calls = {"call": {"shout": "hi", "stamp": "hi", "scratch": "hi"}}
    worker = start(settings, "w1", plugins)
    try:
        await wait_online(client, "w1")
        answer, version = await run(client, "w1", calls)
    finally:
        assert stop(worker) == 0, output_of(worker)[-3000:]
    assert (answer["prompt"], answer["version"], version) == ("known good", 1, 1)
    assert answer["tools"] == ["scratch", "shout", "stamp"] and answer["missing"] == []
    assert answer["calls"] == {
        "shout": "configured-plugin code-1: HI",
        "stamp": "code-1: hi",
        "scratch": "hi",
    }

    # Broken now; and both the prompt file and the plugin's code changed since the snapshot.
    (plugins / "broken").touch()
    (plugins / "prompt.txt").write_text("never built")
    module = plugins / "configured_plugin.py"
    module.write_text(module.read_text().replace('CODE_TAG = "code-1"', 'CODE_TAG = "code-2"'))
    calls = {"call": {"shout": "hi", "stamp": "hi"}}
    worker = start(settings, "w1", plugins)
    try:
        await wait_online(client, "w1")
        answer, version = await run(client, "w1", calls)
        broken_reload = await client.reload_plugins(reason="still broken")
        after_broken_reload, _ = await run(client, "w1", {})
        (plugins / "broken").unlink()
        fixed_reload = await client.reload_plugins(reason="fixed")
        after_fixed_reload, fixed_version = await run(client, "w1", {})
    finally:
        code = stop(worker)
    log = output_of(worker)
    assert code == 0, log[-3000:]
    # The snapshot's data (prompt, skills, version) bound to the code loaded now; the lambda
    # has no name to bind to, and is left out.
    assert (answer["prompt"], answer["version"], version) == ("known good", 1, 1)
    assert answer["skills"] == [{"name": "greet", "built_for": "startup"}]
    assert answer["tools"] == ["shout", "stamp"] and answer["missing"] == ["scratch"]
    assert answer["calls"] == {"shout": "configured-plugin code-2: HI", "stamp": "code-2: hi"}
    assert (
        f"{PLUGIN_ERROR}: the broken flag is set; serving the last known-good configs (v1)" in log
    ), log[-3000:]
    assert "agent config configured: the code of scratch is gone" in log, log[-3000:]

    ack = broken_reload.answers["w1"]
    assert (ack.status, ack.version_before, ack.version_after) == ("failed", 1, 1), ack
    assert ack.error == f"{PLUGIN_ERROR}: the broken flag is set"
    assert (after_broken_reload["prompt"], after_broken_reload["version"]) == ("known good", 1)
    ack = fixed_reload.answers["w1"]
    assert (ack.status, ack.version_before, ack.version_after) == ("ok", 1, 2), ack
    assert (after_fixed_reload["prompt"], after_fixed_reload["version"]) == ("never built", 2)
    assert after_fixed_reload["missing"] == [] and fixed_version == 2


async def test_a_broken_plugin_without_a_snapshot_stops_the_worker_with_status_2(
    client: GatewayClient, settings: Settings, tmp_path: Path
) -> None:
    plugins = plugin_dir(tmp_path, "never built")
    (plugins / "broken").touch()
    worker = start(settings, "w1", plugins)
    try:
        code = worker.wait(timeout=15)
    finally:
        stop(worker)
    log = output_of(worker)
    assert code == 2, log[-3000:]
    message = (
        f"by-framework: configuration error: {PLUGIN_ERROR}: the broken flag is set; "
        "and no config snapshot to fall back on"
    )
    assert message in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert not await client.registry.is_online("w1"), "a worker that could not start deregisters"
