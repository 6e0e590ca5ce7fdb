"""The packages as a user gets them: every package of this repository built into a wheel, the
wheels installed into a fresh virtual environment from the built files alone, and the README's
quick start run on what was installed, not on this checkout.

The wheels are installed without their dependencies, which the fresh environment reads from the
project's own .venv (a ``.pth`` line after its own site-packages): resolving redis-py, pydantic,
LangGraph, ADK and the OpenTelemetry stack afresh would take minutes. What the test proves is
what the wheels hold and how they install: the packages, their data files, their entry points,
the license, and that the installed core serves the quick start.
"""

import asyncio
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from by_framework import Settings
from tests.support import ROOT, output_of, spawn
from tests.test_cookbook import QUICKSTART, on_localhost_6379

__all__ = ["on_localhost_6379"]  # a fixture, used by name
pytestmark = pytest.mark.xdist_group("packaging")  # one process builds the wheels, once

PACKAGES = {  # directory in this repository -> its import package
    ".": "by_framework",
    "adapters/langgraph": "by_framework_langgraph",
    "adapters/adk": "by_framework_adk",
    "history/postgres": "by_framework_history_postgres",
    "tracing/langfuse": "by_framework_trace_langfuse",
    "tracing/phoenix": "by_framework_trace_phoenix",
}
CORE_FILES = ("pyproject.toml", "README.md", "LICENSE", "by_framework")
SOURCE_JUNK = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")


def sources(to: Path) -> list[Path]:
    """A copy of each package's sources (a build writes into its project directory, and the
    checkout stays as it is), in PACKAGES' order."""
    for name in CORE_FILES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, to / name, **({"ignore": SOURCE_JUNK} if name == "by_framework" else {}))
    for directory in PACKAGES:
        if directory != ".":
            shutil.copytree(ROOT / directory, to / directory, ignore=SOURCE_JUNK)
    return [to / directory for directory in PACKAGES]


def run(command: list[str], cwd: Path) -> str:
    """Its output; the command must succeed. It runs with ``clean_env()``: nothing of this
    checkout on its path, where pip would take a package for installed already."""
    done = subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a fresh virtual environment holding the six wheels, built and installed
    from the built files only."""
    root = tmp_path_factory.mktemp("packaging")
    (root / "src").mkdir()
    projects = sources(root / "src")
    wheels = root / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
         *map(str, projects)], root / "src")  # fmt: skip
    built = sorted(wheels.glob("*.whl"))
    assert [wheel.name.split("-")[0] for wheel in built] == sorted(PACKAGES.values())
    venv.EnvBuilder(with_pip=False).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index",
         "--no-deps", *map(str, built)], root)  # fmt: skip
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                    root).strip())  # fmt: skip
    (site / "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def clean_env(**extra: str) -> dict[str, str]:
    """This machine's environment without the project on the path or any by-framework
    configuration: the installed packages are all the fresh environment has of this project."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONPATH" and k != "REDIS_URL" and not k.startswith(("BYAI_", "BYF_"))
    }
    env.update(extra)
    return env


def test_the_wheels_hold_every_package_with_its_files_and_entry_points(
    installed: Path, tmp_path: Path
) -> None:
    probe = """
import importlib, importlib.metadata as md, sys
for name in sys.argv[1:]:
    print(name, importlib.import_module(name).__file__)
for group in ("by_framework.history", "by_framework.tracing", "console_scripts"):
    for ep in md.entry_points(group=group):
        if ep.dist.name.startswith("by-framework"):
            print(group, ep.name, ep.value, ep.dist.locate_file(""))
core = md.distribution("by-framework")
print("license", [str(f) for f in core.files if f.name == "LICENSE"])
print("static", len([f for f in core.files if "dashboard/static" in str(f)]))
"""
    lines = run([str(installed), "-c", probe, *PACKAGES.values()], tmp_path)
    venv_dir = str(installed.parent.parent)
    found = dict(line.split(" ", 1) for line in lines.splitlines()[: len(PACKAGES)])
    assert found.keys() == set(PACKAGES.values())
    assert all(path.startswith(venv_dir) for path in found.values()), found
    entries = [line.split() for line in lines.splitlines()[len(PACKAGES) : -2]]
    assert {(group, name) for group, name, *_ in entries} == {
        ("by_framework.history", "postgresql"),
        ("by_framework.history", "postgres"),
        ("by_framework.tracing", "langfuse"),
        ("by_framework.tracing", "phoenix"),
        ("console_scripts", "by-framework"),
    }
    assert all(where.startswith(venv_dir) for *_, where in entries), entries
    assert lines.splitlines()[-2] == "license ['by_framework-0.1.0.dist-info/licenses/LICENSE']"
    static = ROOT / "by_framework" / "dashboard" / "static"
    assert lines.splitlines()[-1] == f"static {len(list(static.iterdir()))}"


async def test_the_quick_start_runs_on_the_installed_wheels(
    on_localhost_6379: None, installed: Path, settings: Settings, tmp_path: Path
) -> None:
    """The README's two files (cookbook/01), in a directory of their own, the worker and the
    client started together as a user pastes them."""
    for name in ("my_agent.py", "send_task.py"):
        shutil.copy(QUICKSTART / name, tmp_path / name)
    env = clean_env(BYAI_KEY_PREFIX=settings.key_prefix)
    worker = spawn([str(installed), "my_agent.py"], tmp_path, env)
    try:
        sent = await asyncio.to_thread(
            subprocess.run, [str(installed), "send_task.py"], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        worker.terminate()
        code = await asyncio.to_thread(worker.wait, 20)
    assert code == 0, output_of(worker)
    assert sent.returncode == 0, sent.stderr
    lines = sent.stdout.splitlines()
    assert lines[0].startswith("Sent: ") and lines[1:] == ["Hello from your agent!"]
