"""Plugins in a worker on the real Redis: the spec's example, hooks, loading, configs."""

import logging
import sys
import textwrap
from pathlib import Path

import pytest

from by_framework import (
    AgentState,
    GatewayClient,
    PluginManifest,
    PluginRegistry,
    Settings,
)
from by_framework.errors import ConfigurationError
from by_framework.plugins import collect_plugins
from by_framework.redis.engine import RedisEngine
from by_framework.worker.runner import WorkerRunner
from tests.plugins_support import (
    RaisingHookPlugin,
    SlowHookPlugin,
    WeatherAgent,
    WeatherPlugin,
)
from tests.support import eventually, running_worker


async def test_the_spec_weather_plugin_serves_configs_and_every_hook_fires_in_order(
    client: GatewayClient, settings: Settings
) -> None:
    plugin = WeatherPlugin()
    async with running_worker(WeatherAgent(), settings, plugins=[plugin], cancel_grace_seconds=0):
        # a task's end hook runs once its outcome is recorded, so after its caller may see it:
        # each task's hook is waited for before the next send, or the order would be a race
        asked = await client.send_message("weather_agent", "s-weather", "Paris")
        result = await client.wait_for_result(asked.message_id, timeout=10)
        await _until_hooked(plugin, "on_task_complete", asked.message_id)
        calling = await client.send_message("forecaster", "s-weather", "ask weather_agent")
        await client.wait_for_result(calling.message_id, timeout=10)
        await _until_hooked(plugin, "on_task_complete", calling.message_id)
        failing = await client.send_message("weather_agent", "s-weather", "fail")
        await client.wait_for_result(failing.message_id, timeout=10)
        await _until_hooked(plugin, "on_task_error", failing.message_id)
        slow = await client.send_message("weather_agent", "s-weather", {"sleep": 30})
        await _until_running(client, slow.message_id)
        await client.cancel_task(slow.message_id, "s-weather", reason="enough")
        await client.wait_for_result(slow.message_id, timeout=10)
    assert result.content == {
        "weather": {"city": "Paris", "temp": 22, "condition": "sunny"},
        "prompt": "You are a weather assistant.",
        "version": 1,
        "unknown": None,
    }
    record = await client.get_task(asked.message_id)
    assert record is not None and record.config_version == 1
    child = (await client.get_task(calling.message_id)).children[0]  # type: ignore[union-attr]
    assert plugin.calls == [
        ("on_worker_startup",),
        ("on_task_start", asked.message_id),
        ("on_task_complete", asked.message_id, "completed"),
        ("on_task_start", calling.message_id),
        ("on_call_agent_start", calling.message_id, "weather_agent", "Paris"),
        ("on_task_start", child),
        ("on_task_complete", child, "completed"),
        ("on_call_agent_complete", calling.message_id, "weather_agent", result.content),
        ("on_task_complete", calling.message_id, "completed"),
        ("on_task_start", failing.message_id),
        ("on_task_error", failing.message_id, "RuntimeError('no weather today')"),
        ("on_task_start", slow.message_id),
        ("on_task_cancel", slow.message_id, "enough"),
        ("on_worker_shutdown",),
    ]


async def test_slow_and_raising_hooks_never_fail_a_task_and_are_counted(
    client: GatewayClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    plugins = [SlowHookPlugin(), RaisingHookPlugin(), WeatherPlugin()]
    async with running_worker(
        WeatherAgent(), settings, plugins=plugins, plugin_hook_timeout_seconds=0.2
    ) as runner:
        sent = [await client.send_message("weather_agent", "s-hooks", "Rome") for _ in range(3)]
        results = [await client.wait_for_result(s.message_id, timeout=10) for s in sent]
        stats = runner.plugins.hooks.stats
    assert {r.status for r in results} == {AgentState.COMPLETED}
    assert stats["slow", "on_task_start", "timeout"] == 3
    assert stats["raising", "on_task_complete", "failure"] == 3
    assert stats["weather", "on_task_complete", "success"] == 3
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("plugin ")]
    assert "plugin slow on_task_start: success 0, failure 0, timeout 3" in summary
    assert "plugin raising on_task_complete: success 0, failure 3, timeout 0" in summary


async def test_plugins_load_from_a_configurator_a_directory_and_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_dir = tmp_path / "my_plugins"
    plugin_dir.mkdir()
    (plugin_dir / "alpha.py").write_text(
        textwrap.dedent("""
        from by_framework import Plugin, PluginManifest

        class Alpha(Plugin):
            def __init__(self):
                super().__init__(PluginManifest(plugin_id="alpha", version="1"))
    """)
    )
    (plugin_dir / "_private.py").write_text("raise RuntimeError('never imported')\n")
    (plugin_dir / "sub").mkdir()
    (plugin_dir / "sub" / "beta.py").write_text("raise RuntimeError('never imported')\n")
    site = tmp_path / "site"
    (site / "gamma_pkg").mkdir(parents=True)
    (site / "gamma_pkg" / "__init__.py").write_text(
        textwrap.dedent("""
        from by_framework import Plugin, PluginManifest

        def make():
            return Plugin(PluginManifest(plugin_id="gamma", version="2"))
    """)
    )
    dist = site / "gamma_pkg-2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gamma-pkg\nVersion: 2\n")
    (dist / "entry_points.txt").write_text("[by_framework.plugins]\ngamma = gamma_pkg:make\n")
    monkeypatch.syspath_prepend(str(site))

    async def configure(registry: PluginRegistry) -> None:
        registry.register_bundle(WeatherPlugin())

    plugins = await collect_plugins([SlowHookPlugin()], configure, plugin_dir)
    assert [p.plugin_id for p in plugins] == ["slow", "weather", "alpha", "gamma"]
    without = await collect_plugins(None, None, plugin_dir, entry_points=False)
    assert [p.plugin_id for p in without] == ["alpha"]
    with pytest.raises(ValueError, match="plugin id 'slow' is registered twice"):
        await collect_plugins([SlowHookPlugin(), SlowHookPlugin()], entry_points=False)
    (plugin_dir / "broken.py").write_text("import no_such_module\n")
    with pytest.raises(ConfigurationError, match=r"broken.py failed to import: ModuleNotFound"):
        await collect_plugins(None, None, plugin_dir, entry_points=False)
    with pytest.raises(ConfigurationError, match="is not a directory"):
        await collect_plugins(None, None, tmp_path / "nowhere", entry_points=False)
    assert "gamma_pkg" in sys.modules


async def test_a_worker_whose_plugins_fail_with_no_snapshot_does_not_start(
    settings: Settings,
) -> None:
    class Broken(WeatherPlugin):
        async def register_agent_configs(self, ctx):  # type: ignore[no-untyped-def]
            raise RuntimeError("config server down")

    runner = WorkerRunner(
        WeatherAgent(), RedisEngine.connect(settings), settings, plugins=[Broken()]
    )
    with pytest.raises(ConfigurationError, match=r"config server down.*no config snapshot"):
        await runner.run()


def test_bad_manifests_and_configs_say_what_is_wrong() -> None:
    from by_framework import AgentConfig

    with pytest.raises(ValueError, match="plugin_id"):
        PluginManifest(plugin_id="", version="1")
    with pytest.raises(TypeError, match="tools maps names to callables"):
        AgentConfig(agent_id="a", tools={"x": "not callable"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="agent_id must be a non-empty string"):
        AgentConfig(agent_id=" ")


async def _until_running(client: GatewayClient, message_id: str) -> None:
    async def running() -> bool:
        record = await client.get_task(message_id)
        return record is not None and record.status == "running"

    await eventually(running, timeout=10, interval=0.02, what=f"{message_id} running")


async def _until_hooked(plugin: WeatherPlugin, hook: str, message_id: str) -> None:
    async def called() -> bool:
        return any(call[:2] == (hook, message_id) for call in plugin.calls)

    await eventually(called, timeout=10, interval=0.01, what=f"{hook} of {message_id}")
