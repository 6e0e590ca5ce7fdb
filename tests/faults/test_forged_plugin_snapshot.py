"""A config snapshot rewritten in Redis cannot make a worker bind code its plugin never
registered: a worker process whose plugin build fails binds only the plugin's own tools, and
with a signing key a snapshot whose signature does not hold is refused like a forged command."""

import json
import subprocess
from pathlib import Path

from redis.asyncio import Redis

from by_framework import AgentState, GatewayClient, Settings
from by_framework.redis.keys import KeySpace
from tests.support import output_of, wait_online, worker_process
from tests.test_plugin_processes import AGENT, plugin_dir, run, start, stop

KEY = "snapshot-signing-key"
PLUGIN_MODULE = "by_framework_plugin_dir.configured_plugin"


def start_signed(settings: Settings, plugins: Path) -> subprocess.Popen[str]:
    env = {"BYAI_SIGNING_KEY": KEY}
    return worker_process(settings, "w1", AGENT, "--plugin-dir", str(plugins), env=env)


async def saved_snapshot(client: GatewayClient, settings: Settings, plugins: Path) -> None:
    """Run one worker with the good plugin, so that it saves its snapshot, then stop it."""
    worker = start(settings, "w1", plugins)
    try:
        await wait_online(client, "w1")
        await run(client, "w1", {})
    finally:
        assert stop(worker) == 0, output_of(worker)[-3000:]
    (plugins / "broken").touch()


async def rewrite(redis: Redis, settings: Settings, change: dict[str, dict[str, str]]) -> None:
    """Rewrite the saved snapshot's tools of "configured", as write access to Redis allows."""
    key = KeySpace(settings.key_prefix).config_snapshot("configured")
    raw: bytes = await redis.get(key)
    head, brace, body = raw.partition(b"{")  # whatever comes before the JSON is kept as it is
    snapshot = json.loads(brace + body)
    snapshot["configs"]["configured"]["tools"].update(change)
    await redis.set(key, head + json.dumps(snapshot).encode())


async def test_a_forged_snapshot_binds_no_code_the_plugin_did_not_register(
    client: GatewayClient, redis: Redis, settings: Settings, tmp_path: Path
) -> None:
    plugins = plugin_dir(tmp_path, "known good")
    module = plugins / "configured_plugin.py"
    module.write_text("import os  # noqa: F401\n" + module.read_text())
    await saved_snapshot(client, settings, plugins)
    await rewrite(
        redis,
        settings,
        {
            "run": {"module": PLUGIN_MODULE, "qualname": "os.system"},
            "path": {"module": PLUGIN_MODULE, "qualname": "HERE.write_text"},
            "prompt": {"plugin": "configured-plugin", "method": "__setattr__"},
        },
    )
    marker = tmp_path / "forged-tool-ran"
    worker = start(settings, "w1", plugins)
    try:
        await wait_online(client, "w1")
        answer, _ = await run(client, "w1", {})
        forged = await client.send_message(
            "configured", "s", {"call": {"run": f"touch {marker}"}}, target_worker_id="w1"
        )
        forged_result = await client.wait_for_result(forged.message_id, timeout=10)
    finally:
        code = stop(worker)
    log = output_of(worker)
    assert code == 0, log[-3000:]
    assert not marker.exists(), "the worker ran os.system named by a forged snapshot"
    assert forged_result.status is AgentState.FAILED, forged_result
    assert answer["prompt"] == "known good"
    assert answer["tools"] == ["shout", "stamp"], answer
    assert sorted(answer["missing"]) == ["path", "prompt", "run", "scratch"], answer


async def test_a_snapshot_whose_signature_does_not_hold_is_refused(
    client: GatewayClient, redis: Redis, settings: Settings, tmp_path: Path
) -> None:
    settings = Settings.model_validate({**settings.model_dump(), "signing_key": KEY})
    client = GatewayClient(redis, settings=settings)
    try:
        await refused_when_altered(client, redis, settings, tmp_path)
    finally:
        await client.aclose()


async def refused_when_altered(
    client: GatewayClient, redis: Redis, settings: Settings, tmp_path: Path
) -> None:
    plugins = plugin_dir(tmp_path, "known good")
    worker = start_signed(settings, plugins)
    try:
        await wait_online(client, "w1")
        await run(client, "w1", {})
    finally:
        assert stop(worker) == 0, output_of(worker)[-3000:]
    (plugins / "broken").touch()

    # The signed snapshot is served when the build fails.
    worker = start_signed(settings, plugins)
    try:
        await wait_online(client, "w1")
        answer, _ = await run(client, "w1", {})
    finally:
        assert stop(worker) == 0, output_of(worker)[-3000:]
    assert (answer["prompt"], answer["tools"]) == ("known good", ["shout", "stamp"]), answer

    # Altered in Redis: refused, and the worker stops as it does with no snapshot.
    await rewrite(redis, settings, {"extra": {"plugin": "configured-plugin", "method": "shout"}})
    worker = start_signed(settings, plugins)
    try:
        code = worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        stop(worker)
    log = output_of(worker)
    assert code == 2, log[-3000:]
    assert "config snapshot refused: bad signature" in log, log[-3000:]
    assert "and no config snapshot to fall back on" in log, log[-3000:]
