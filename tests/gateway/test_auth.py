"""Access control: bearer tokens (API keys, JWTs), sessions reachable by their owner only."""

import subprocess
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from by_framework import GatewayClient, Settings
from by_framework.errors import ConfigurationError
from by_framework.gateway import GatewaySettings
from by_framework.worker.run import EXIT_CONFIG
from tests.gateway.conftest import gateway_command, read_until_end
from tests.support import ROOT, free_port, process_env

SECRET = "test-secret-of-32-bytes-or-more!!"
AUTH = {
    "BYAI_GATEWAY_JWT_SECRET": SECRET,
    "BYAI_GATEWAY_API_KEYS": "billing:key-billing,ops:key-ops",
    "BYAI_GATEWAY_ADMIN_KEYS": "ops",
}


def token(sub: str, seconds: float = 60, key: str = SECRET, **claims: object) -> str:
    payload = {"sub": sub, "exp": int(time.time() + seconds), **claims}
    return jwt.encode(payload, key, "HS256" if isinstance(key, str) else "RS256")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def test_tokens_and_session_owners(start_gateway, start_worker, client: GatewayClient):
    await start_worker(client, "tests.agents.EchoAgent")
    gateway = await start_gateway(**AUTH)
    alice, bob = bearer(token("alice")), bearer(token("bob"))
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        body = {"agent_type": "echo", "content": "mine"}
        assert (await http.post("/v1/sessions/a1/messages", json=body)).status_code == 401
        sent = await http.post("/v1/sessions/a1/messages", json=body, headers=alice)
        assert sent.status_code == 202, sent.text
        message_id = sent.json()["message_id"]
        events = f"/v1/sessions/a1/events?until={message_id}"
        frames = await read_until_end(http, events, alice)
        assert frames[-1].event == "end"
        record = await client.get_task(message_id)
        assert record is not None and record.user_code == "alice"

        # Bob sees nothing of it: 404 everywhere, as if it did not exist.
        for method, url in (
            ("GET", events),
            ("GET", "/v1/sessions/a1/tasks"),
            ("GET", f"/v1/tasks/{message_id}"),
            ("GET", f"/v1/tasks/{message_id}/result?wait=0"),
            ("POST", f"/v1/tasks/{message_id}/resume"),
            ("POST", f"/v1/tasks/{message_id}/cancel"),
            ("POST", "/v1/sessions/a1/cancel"),
            ("POST", "/v1/sessions/a1/messages"),
        ):
            json = body if url.endswith("messages") else {}
            answer = await http.request(method, url, headers=bob, json=json)
            assert answer.status_code == 404, (method, url, answer.text)
        assert (await http.get("/v1/tasks/unknown", headers=bob)).status_code == 404

        # Admins read every session: a JWT with the admin scope, an API key named admin.
        admin = bearer(token("carol", scope="openid by:admin"))
        assert (await http.get(f"/v1/tasks/{message_id}", headers=admin)).status_code == 200
        ops = bearer("key-ops")
        assert len(await read_until_end(http, events, ops)) == len(frames)
        # ... not send to it
        sent_by_ops = await http.post("/v1/sessions/a1/messages", json=body, headers=ops)
        assert sent_by_ops.status_code == 404
        # A service's API key is an ordinary user: its own sessions only.
        billing = bearer("key-billing")
        assert (await http.get("/v1/sessions/a1/tasks", headers=billing)).status_code == 404
        own = await http.post("/v1/sessions/b1/messages", json=body, headers=billing)
        assert own.status_code == 202
        record = await client.get_task(own.json()["message_id"])
        assert record is not None and record.user_code == "billing"
        # EventSource cannot send headers: the token as a query parameter.
        by_query = f"{events}&access_token={token('alice')}"
        assert len(await read_until_end(http, by_query)) == len(frames)


async def test_bad_tokens_are_401(start_gateway):
    gateway = await start_gateway(**AUTH)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for value in (
            token("alice", seconds=-10),  # expired
            token("alice", key="another-secret-of-32-bytes-or-more"),  # forged
            jwt.encode({"sub": "alice"}, SECRET, "HS256"),  # no exp
            jwt.encode({"exp": int(time.time() + 60)}, SECRET, "HS256"),  # no sub
            "key-nobody",
        ):
            answer = await http.get("/v1/agents", headers=bearer(value))
            assert answer.status_code == 401, value
            assert answer.headers["www-authenticate"] == "Bearer"
        basic = await http.get("/v1/agents", headers={"Authorization": "Basic eDp5"})
        assert basic.status_code == 401


async def test_rs256_issuer_audience(start_gateway, tmp_path: Path):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "key.pem").write_bytes(pem)
    gateway = await start_gateway(
        BYAI_GATEWAY_JWT_PUBLIC_KEY=str(tmp_path / "key.pem"),
        BYAI_GATEWAY_JWT_ISSUER="https://idp.example",
        BYAI_GATEWAY_JWT_AUDIENCE="by-gateway",
    )
    good = token("alice", key=private, iss="https://idp.example", aud="by-gateway")
    wrong_aud = token("alice", key=private, iss="https://idp.example", aud="other")
    hs = token("alice", iss="https://idp.example", aud="by-gateway")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert (await http.get("/v1/agents", headers=bearer(good))).status_code == 200
        assert (await http.get("/v1/agents", headers=bearer(wrong_aud))).status_code == 401
        assert (await http.get("/v1/agents", headers=bearer(hs))).status_code == 401


async def test_rate_limit_per_caller(start_gateway):
    gateway = await start_gateway("--rate", "0.01", "--burst", "2", **AUTH)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        alice = bearer(token("alice"))
        answers = [await http.get("/v1/agents", headers=alice) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert int(answers[2].headers["retry-after"]) > 0
        # another caller has a bucket of its own
        assert (await http.get("/v1/agents", headers=bearer("key-billing"))).status_code == 200


def test_refuses_a_public_host_without_auth(settings: Settings):
    command = gateway_command(free_port(), host="0.0.0.0")
    done = subprocess.run(
        command, cwd=ROOT, env=process_env(settings), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == EXIT_CONFIG
    assert "no auth configured" in done.stderr and "--insecure" in done.stderr


def test_settings_from_flags_then_env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BYAI_GATEWAY_API_KEYS", "svc:k1, ops:k2")
    monkeypatch.setenv("BYAI_GATEWAY_RATE", "5")
    monkeypatch.setenv("BYAI_GATEWAY_CORS_ORIGINS", "https://a.example,https://b.example")
    resolved = GatewaySettings.resolve(rate=7.0, burst=None)
    assert resolved.api_keys == {"svc": "k1", "ops": "k2"}
    assert resolved.rate == 7.0 and resolved.burst == 40
    assert resolved.cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("BYAI_GATEWAY_API_KEYS", "no-colon")
    with pytest.raises(ConfigurationError, match=r"BYAI_GATEWAY_API_KEYS.*subject:token"):
        GatewaySettings.resolve()
    monkeypatch.delenv("BYAI_GATEWAY_API_KEYS")
    monkeypatch.setenv("BYAI_GATEWAY_JWT_PUBLIC_KEY", "/no/such/key.pem")
    with pytest.raises(ConfigurationError, match="neither PEM text nor the path"):
        GatewaySettings.resolve()
