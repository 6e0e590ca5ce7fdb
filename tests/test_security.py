"""Redis ACL users, TLS (rediss:// with a private CA and client certificates), wrong credentials."""

import asyncio
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from by_framework import AgentState, GatewayClient, Settings
from tests.support import ROOT, free_port, output_of, spawn, wait_online, worker_process


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A redis-server speaking only TLS, requiring client certificates from its private CA."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test certificates")
    certs = tmp_path / "certs"
    certs.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.crt", "-days", "1", "-subj", "/CN=by-framework test CA", cwd=certs)  # fmt: skip
    (certs / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", f"/CN={name}", cwd=certs)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", "-extfile", "san.cnf",
                 cwd=certs)  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(certs / "server.crt"), "--tls-key-file", str(certs / "server.key"),
         "--tls-ca-cert-file", str(certs / "ca.crt"), "--tls-auth-clients", "yes",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        cwd=certs, stdout=open(tmp_path / "redis.log", "w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        for _ in range(100):
            if _accepts(port):
                break
            subprocess.run(["sleep", "0.05"], check=True)
        else:
            raise RuntimeError((tmp_path / "redis.log").read_text())
        yield f"rediss://127.0.0.1:{port}/0", certs
    finally:
        server.kill()
        server.wait(timeout=10)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


async def test_worker_and_client_over_tls_with_client_certificates(
    tls_redis: tuple[str, Path], settings: Settings
) -> None:
    url, certs = tls_redis
    tls = Settings.model_validate(
        {
            **settings.model_dump(),
            "redis_url": url,
            "redis_ssl_ca_certs": str(certs / "ca.crt"),
            "redis_ssl_certfile": str(certs / "client.crt"),
            "redis_ssl_keyfile": str(certs / "client.key"),
        }
    )
    client = GatewayClient.connect(tls)
    worker = spawn(
        [sys.executable, "-m", "by_framework", "--worker-class", "tests.agents.EchoAgent",
         "--worker-id", "tls-w", "--redis-url", url, "--key-prefix", tls.key_prefix,
         "--redis-ssl-ca-certs", str(certs / "ca.crt"),
         "--redis-ssl-certfile", str(certs / "client.crt"),
         "--redis-ssl-keyfile", str(certs / "client.key")],
        ROOT, {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        await wait_online(client, "tls-w")
        sent = await client.send_message("echo", "s-tls", "over tls")
        result = await client.wait_for_result(sent.message_id, timeout=20)
    finally:
        await client.aclose()
        worker.terminate()
        assert worker.wait(timeout=20) == 0, output_of(worker)
    assert result.content == "over tls"
    # Without the client certificate the server refuses the connection.
    refused = spawn(
        [sys.executable, "-m", "by_framework", "--worker-class", "tests.agents.EchoAgent",
         "--redis-url", url, "--redis-ssl-ca-certs", str(certs / "ca.crt")],
        ROOT, {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert await asyncio.to_thread(refused.wait, 30) == 2
    assert "cannot reach Redis" in output_of(refused)


@pytest.fixture
async def acl_user(redis: Redis, key_prefix: str) -> AsyncIterator[tuple[str, str]]:
    """A Redis user allowed only this test's keys."""
    name, password = f"byf-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    await redis.acl_setuser(
        name, enabled=True, passwords=[f"+{password}"], keys=[f"{key_prefix}:*"],
        commands=["+@all"],
    )  # fmt: skip
    yield name, password
    await redis.acl_deluser(name)


async def test_an_acl_user_limited_to_its_prefix_runs_everything(
    acl_user: tuple[str, str], settings: Settings
) -> None:
    name, password = acl_user
    url = settings.redis_url or ""
    scoped = url.replace("redis://", f"redis://{name}:{password}@", 1)
    own = settings.model_copy(update={"redis_url": scoped})
    client = GatewayClient.connect(own)
    worker = worker_process(own, "acl-w")
    try:
        await wait_online(client, "acl-w")
        sent = await client.send_message("echo", "s-acl", "scoped")
        result = await client.wait_for_result(sent.message_id, timeout=20)
    finally:
        await client.aclose()
        worker.terminate()
        assert worker.wait(timeout=20) == 0, output_of(worker)
    assert result.status is AgentState.COMPLETED and result.content == "scoped"


async def test_wrong_credentials_stop_a_worker_with_a_clear_message(
    acl_user: tuple[str, str], settings: Settings
) -> None:
    name, _ = acl_user
    url = (settings.redis_url or "").replace("redis://", f"redis://{name}:wrong@", 1)
    worker = worker_process(settings.model_copy(update={"redis_url": url}), "acl-bad")
    assert await asyncio.to_thread(worker.wait, 30) == 2
    assert "Redis refused the credentials" in output_of(worker)
