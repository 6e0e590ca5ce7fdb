"""run_worker: the one call that turns a GatewayWorker into a running worker process."""

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any

from by_framework.common.logger import setup_logging
from by_framework.engine import CREDENTIAL_ERRORS, TRANSIENT_ERRORS, check_engine, connect_engine
from by_framework.errors import ConfigurationError, WorkerIdInUseError
from by_framework.plugins import Plugin, PluginRegistry, collect_plugins
from by_framework.ports import Engine
from by_framework.settings import Settings
from by_framework.worker.base import GatewayWorker
from by_framework.worker.runner import WorkerRunner

log = logging.getLogger("by_framework.worker")

EXIT_CONFIG = 2
EXIT_WORKER_ID_IN_USE = 3
LEFTOVER_WAIT_S = 1.0  # how long tasks still running at exit get to end once cancelled
YOUNGEST_COLLECTION_THRESHOLD = 10_000
"""Net allocations of container objects between collections of the cyclic garbage collector's
youngest generation while ``run_worker`` serves (CPython's default: 700; see
``fewer_collections``)."""


async def serve_worker(
    worker: GatewayWorker,
    settings: Settings,
    plugin_list: Sequence[Plugin] | None = None,
    plugin_configurator: Callable[[PluginRegistry], Any] | None = None,
    engine: Engine | None = None,
) -> None:
    """Run the worker until SIGTERM / SIGINT, then drain and return; on ``engine`` (closed at
    the end), else on a new one made from ``settings``.

    Plugins come from ``plugin_list``, ``plugin_configurator`` (sync or async, given the
    registry), ``settings.plugin_dir`` and, unless ``settings.plugin_entry_points`` is off,
    the ``by_framework.plugins`` entry points."""
    if engine is None:  # a wrong URL or password stops the start here, not a retry loop
        await check_engine(settings)
    plugins = await collect_plugins(
        plugin_list,
        plugin_configurator,
        settings.plugin_dir,
        entry_points=settings.plugin_entry_points,
    )
    runner = WorkerRunner(worker, engine or connect_engine(settings), settings, plugins)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, runner.request_stop)
    try:
        await runner.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def run_worker(
    worker_class: type[GatewayWorker] | GatewayWorker,
    worker_id: str | None = None,
    redis_host: str | None = None,
    redis_port: int | None = None,
    redis_db: int | None = None,
    redis_password: str | None = None,
    redis_username: str | None = None,
    redis_max_connections: int | None = None,
    workspace_dir: str | None = None,
    consumer_group: str | None = None,
    max_concurrency: int | None = None,
    fetch_count: int | None = None,
    plugin_list: list[Plugin] | None = None,
    plugin_configurator: Callable[[PluginRegistry], Any] | None = None,
    plugin_dir: str | None = None,
    plugin_hook_timeout_seconds: float | None = None,
    plugin_log_hook_stats_on_shutdown: bool | None = None,
    *,
    redis_url: str | None = None,
    engine: Engine | None = None,
    **settings: Any,
) -> None:
    """Run a worker (a GatewayWorker class, or a configured instance) until SIGTERM / SIGINT.

    Arguments win over environment variables (``BYAI_*``, ``REDIS_URL``), which win over defaults;
    ``settings`` takes any other field of ``Settings``. ``engine``: run on it (closed at the
    end) instead of one made from the settings' Redis fields. Exits with status 2 on bad
    configuration or unreachable Redis and 3 when another live process holds the worker id.
    """
    try:
        resolved = Settings.resolve(
            worker_id=worker_id,
            redis_url=redis_url,
            redis_host=redis_host,
            redis_port=redis_port,
            redis_db=redis_db,
            redis_password=redis_password,
            redis_username=redis_username,
            redis_max_connections=redis_max_connections,
            workspace_dir=workspace_dir,
            consumer_group=consumer_group,
            max_concurrency=max_concurrency,
            fetch_count=fetch_count,
            plugin_dir=plugin_dir,
            plugin_hook_timeout_seconds=plugin_hook_timeout_seconds,
            plugin_log_hook_stats_on_shutdown=plugin_log_hook_stats_on_shutdown,
            **settings,
        )
        if not logging.getLogger().handlers:  # as the settings say, unless set up already
            setup_logging(resolved.log_level, use_json=resolved.log_format == "json")
        worker = worker_class() if isinstance(worker_class, type) else worker_class
        with fewer_collections():
            _run_to_end(serve_worker(worker, resolved, plugin_list, plugin_configurator, engine))
    except ConfigurationError as exc:
        _fail(EXIT_CONFIG, f"configuration error: {exc}")
    except WorkerIdInUseError as exc:
        _fail(EXIT_WORKER_ID_IN_USE, str(exc))
    except CREDENTIAL_ERRORS as exc:
        _fail(EXIT_CONFIG, f"Redis refused the credentials ({exc}); check redis_username and "
              "redis_password (BYAI_REDIS_USERNAME / BYAI_REDIS_PASSWORD)")  # fmt: skip
    except TRANSIENT_ERRORS as exc:
        _fail(EXIT_CONFIG, f"cannot reach Redis ({exc}); start Redis or set REDIS_URL")


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """The youngest generation's collection threshold raised to ``YOUNGEST_COLLECTION_THRESHOLD``
    for the block (the process ``run_worker`` owns), then put back.

    A worker's objects mostly die by their reference count, yet a no-op task left a few dozen
    alive at any moment, so at the default threshold a collection ran every ~20 tasks, and
    every tenth of those scanned the older generation too: draining queued no-op tasks, raising
    it saved 13 % of the worker's CPU (~19 us a task, docs/performance.md). Raised, one runs
    every few hundred tasks; what cycles the tasks leave waits for it a little longer (at most
    the threshold's worth of objects). A threshold set higher already, or 0 (automatic
    collection off), is left as it is, and so is one that the block changes."""
    youngest, *older = gc.get_threshold()
    if not 0 < youngest < YOUNGEST_COLLECTION_THRESHOLD:
        yield
        return
    gc.set_threshold(YOUNGEST_COLLECTION_THRESHOLD, *older)
    try:
        yield
    finally:
        now, *older_now = gc.get_threshold()
        if now == YOUNGEST_COLLECTION_THRESHOLD:
            gc.set_threshold(youngest, *older_now)


def _run_to_end(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run``, except that tasks still running once ``main`` has returned (a task body
    that ignored its cancel and was left behind) are cancelled and waited for a bounded time,
    not forever as ``asyncio.run`` would: the process exits anyway."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main)
    finally:
        try:
            loop.run_until_complete(_cancel_leftovers())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


async def _cancel_leftovers() -> None:
    leftovers = asyncio.all_tasks() - {asyncio.current_task()}
    for task in leftovers:
        task.cancel()
    if leftovers:
        _, stuck = await asyncio.wait(leftovers, timeout=LEFTOVER_WAIT_S)
        if stuck:
            log.warning("exiting with %d task(s) that ignored their cancel", len(stuck))


def _fail(code: int, message: str) -> None:
    print(f"by-framework: {message}", file=sys.stderr)
    raise SystemExit(code)
