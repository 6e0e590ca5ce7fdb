"""The engine port holds: outside ``by_framework/redis/`` and ``by_framework/engine.py`` (the one
place an engine is assembled), no module imports the Redis engine or redis-py, except the few
that must (the public ``init_redis``, ``WorkerRegistry`` and ``ServiceRegistry``, and the CLI's
embedded Redis)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    ROOT / "by_framework",
    ROOT / "adapters/langgraph/by_framework_langgraph",
    ROOT / "adapters/adk/by_framework_adk",
    ROOT / "history/postgres/by_framework_history_postgres",
    ROOT / "tracing/langfuse/by_framework_trace_langfuse",
    ROOT / "tracing/phoenix/by_framework_trace_phoenix",
]
ENGINE_SIDE = [ROOT / "by_framework/redis", ROOT / "by_framework/engine.py"]
ALLOWED = {
    "by_framework/__init__.py": {
        "by_framework.redis.connection",  # init_redis / close_redis
        "by_framework.redis.discovery",  # ServiceRegistry
        "by_framework.redis.registry",  # WorkerRegistry
    },
    "by_framework/cli/main.py": {"by_framework.redis.embedded"},
    "by_framework/cli/options.py": {"by_framework.redis.embedded"},
}


def imported_modules(path: Path) -> set[str]:
    """Every module the file imports, at any depth (inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def is_engine_side(path: Path) -> bool:
    return any(path == side or side in path.parents for side in ENGINE_SIDE)


def redis_imports(modules: set[str]) -> set[str]:
    return {
        name
        for name in modules
        if name == "redis"
        or name.startswith("redis.")
        or name == "by_framework.redis"
        or (name.startswith("by_framework.redis.") and name.count(".") == 2)
    }


MODULES = sorted(
    path for package in PACKAGES for path in package.rglob("*.py") if not is_engine_side(path)
)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_engine_side_imports_redis(path: Path) -> None:
    allowed = ALLOWED.get(str(path.relative_to(ROOT)), set())
    assert redis_imports(imported_modules(path)) <= allowed


def test_the_walk_sees_the_modules_and_their_imports() -> None:
    assert len(MODULES) > 100
    engine = imported_modules(ROOT / "by_framework/engine.py")
    assert "by_framework.redis.engine" in redis_imports(engine)
    client = ROOT / "by_framework/client/gateway.py"
    assert client in MODULES and "by_framework.engine" in imported_modules(client)


BACKEND_API = {"by_framework", "by_framework.backends", "by_framework.backends.otel"}
EXTENSION_MODULES = sorted(path for package in PACKAGES[1:] for path in package.rglob("*.py"))


def core_modules_imported(path: Path) -> set[str]:
    """The modules of the core (``by_framework`` and under) the file imports from."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module]
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
            else []
        )
        found.update(n for n in names if n == "by_framework" or n.startswith("by_framework."))
    return found


@pytest.mark.parametrize("path", EXTENSION_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_extension_packages_import_the_public_and_backend_api_only(path: Path) -> None:
    """An extension package sees the core through ``by_framework`` and ``by_framework.backends``
    (the API its pin to one minor version holds), never an internal module."""
    assert core_modules_imported(path) <= BACKEND_API


def test_the_extension_walk_sees_backend_imports() -> None:
    store = ROOT / "history/postgres/by_framework_history_postgres/store.py"
    assert store in EXTENSION_MODULES
    assert core_modules_imported(store) == {"by_framework.backends"}
    assert "by_framework.worker.context" in core_modules_imported(
        ROOT / "by_framework/worker/runner.py"
    )
