"""The dashboard's JSON and SSE endpoints, over HTTP to a real dashboard process (and to a
gateway that mounts it), with real worker processes."""

import asyncio
import sys
import time
from typing import Any

import httpx
import jwt

from by_framework import AgentState, GatewayClient, Settings
from by_framework.ports import Delivery
from by_framework.worker.run import EXIT_CONFIG
from tests.dashboard.conftest import ADMIN, API_KEYS, VIEWER
from tests.gateway.conftest import Gateway as GatewayProcess
from tests.gateway.conftest import gateway_command, sse_frames, wait_serving
from tests.support import ROOT, free_port, output_of, process_env, spawn, wait_all

JWT_SECRET = "dashboard-test-secret-of-32-bytes!"
ROUTES = [
    ("GET", "/api/whoami"),
    ("GET", "/api/fleet"),
    ("GET", "/api/fleet/events"),
    ("POST", "/api/workers/w1/drain"),
    ("GET", "/api/sessions/s1"),
    ("GET", "/api/sessions/s1/events"),
    ("GET", "/api/tasks/m1"),
    ("POST", "/api/tasks/m1/resume"),
    ("GET", "/api/dead-letters"),
    ("GET", "/api/dead-letters/1-1"),
    ("POST", "/api/dead-letters/1-1/replay"),
    ("DELETE", "/api/dead-letters/1-1"),
]
WRITES = [(method, path) for method, path in ROUTES if method != "GET"]


def bearer_jwt(subject: str, **claims: object) -> dict[str, str]:
    payload = {"sub": subject, "exp": int(time.time() + 60), **claims}
    return {"Authorization": f"Bearer {jwt.encode(payload, JWT_SECRET, 'HS256')}"}


async def first_frame(http: httpx.AsyncClient, path: str, **headers: str) -> Any:
    """The first event frame of an SSE response."""
    async with http.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        async for frame in sse_frames(response):
            if frame.event is not None:
                return frame
    raise AssertionError(f"{path} ended without an event")


async def test_every_route_wants_a_token_and_only_admins_act(start_dashboard) -> None:
    dashboard = await start_dashboard(**API_KEYS, BYAI_GATEWAY_JWT_SECRET=JWT_SECRET)
    async with httpx.AsyncClient(base_url=dashboard.url) as http:
        for method, path in ROUTES:
            answer = await http.request(method, path, json={})
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
        wrong = await http.get("/api/whoami", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert (await http.get("/api/whoami?access_token=nope")).status_code == 401

        assert (await http.get("/api/whoami", headers=VIEWER)).json() == {
            "subject": "viewer", "admin": False, "auth": True,
        }  # fmt: skip
        assert (await http.get("/api/whoami?access_token=key-ops")).json()["admin"] is True
        scoped = await http.get("/api/whoami", headers=bearer_jwt("carol", scope="by:admin"))
        assert scoped.json() == {"subject": "carol", "admin": True, "auth": True}
        plain = await http.get("/api/whoami", headers=bearer_jwt("dave"))
        assert plain.json()["admin"] is False

        for method, path in WRITES:
            answer = await http.request(method, path, headers=VIEWER, json={"content": "x"})
            assert answer.status_code == 403, (method, path, answer.text)
        # An admin's: unknown ids are 404, an unknown order 422.
        for method, path in WRITES:
            answer = await http.request(method, path, headers=ADMIN, json={"content": "x"})
            assert answer.status_code == 404, (method, path, answer.text)
        explode = await http.post("/api/workers/w1/explode", headers=ADMIN)  # w1: none
        assert explode.status_code == 422
        for path in ("/api/sessions/s1", "/api/tasks/m1", "/api/dead-letters/1-1",
                     "/api/dead-letters/not-an-id"):  # fmt: skip
            answer = await http.get(path, headers=VIEWER)
            assert answer.status_code == 404, (path, answer.text)
        # The pages themselves hold no data: anyone gets them.
        shell = await http.get("/sessions/s1")
        assert shell.status_code == 200 and '<base href="/">' in shell.text
        assert "default-src 'self'" in shell.headers["content-security-policy"]
        assert (await http.get("/static/common.js")).status_code == 200


async def test_fleet_sessions_tasks_and_dead_letters(
    client: GatewayClient, settings: Settings, start_dashboard, start_worker
) -> None:
    worker = await start_worker(client, "w1", "tests.agents.EchoAgent")
    dashboard = await start_dashboard()  # no auth: one user, who may do everything
    sends = [await client.send_message("echo", "s1", {"sleep": 0.02}) for _ in range(3)]
    await wait_all(client, sends)
    async with httpx.AsyncClient(base_url=dashboard.url) as http:
        assert (await http.get("/api/whoami")).json() == {
            "subject": "anonymous", "admin": True, "auth": False,
        }  # fmt: skip

        # The fleet: the status document plus the chart's minutes, with the run times the
        # worker publishes.
        async with asyncio.timeout(10):
            while True:
                fleet = (await http.get("/api/fleet")).json()
                if fleet["tasks"].get("completed") == 3:
                    break
                await asyncio.sleep(0.1)
        (w1,) = fleet["workers"]
        assert (w1["worker_id"], w1["state"], w1["pid"]) == ("w1", "running", worker.pid)
        assert [a["agent_type"] for a in fleet["agent_types"]] == ["echo"]
        assert len(fleet["activity"]) == 15
        now = fleet["activity"][-1]
        assert now["ended"] == {"completed": 3} and now["ended_total"] == 3
        assert 0.02 <= now["mean_run_seconds"] < 5
        frame = await first_frame(http, "/api/fleet/events")
        assert frame.event == "fleet" and frame.data["workers"][0]["worker_id"] == "w1"

        # A session: its tasks and tree; its events, resumable after any of them.
        session = (await http.get("/api/sessions/s1")).json()
        assert [t["message_id"] for t in session["tree"]] == [s.message_id for s in sends]
        assert {t["status"] for t in session["tasks"]} == {"completed"}
        first = await first_frame(http, "/api/sessions/s1/events")
        after_first = await first_frame(http, "/api/sessions/s1/events", **{
            "Last-Event-ID": first.id,
        })  # fmt: skip
        assert after_first.id > first.id
        bad = await http.get("/api/sessions/s1/events", headers={"Last-Event-ID": "x"})
        assert bad.status_code == 422

        # A task by id: record and tree; a resume of a task not waiting is refused.
        task = (await http.get(f"/api/tasks/{sends[0].message_id}")).json()
        assert task["record"]["status"] == "completed" and task["record"]["session_id"] == "s1"
        assert task["tree"] == {
            "message_id": sends[0].message_id, "agent_type": "echo", "status": "completed",
            "children": [],
        }  # fmt: skip
        resumed = await http.post(f"/api/tasks/{sends[0].message_id}/resume", json={})
        assert resumed.status_code == 409 and "not waiting" in resumed.text

        # Dead letters: listed with their reason and head, shown whole, replayed, purged.
        stream = client.engine.control.streams(["echo"], "w1")[0]
        rejected = Delivery(stream, "1-1", {b"e": b"{not json" + b"!" * 400})
        await client.engine.control.reject(rejected, "malformed entry: not JSON", None, None)
        (letter,) = (await http.get("/api/dead-letters")).json()["dead_letters"]
        assert (letter["reason"], letter["stream"]) == ("malformed entry: not JSON", stream)
        assert letter["head"] == "{not json" + "!" * 291 + "…"
        shown = (await http.get(f"/api/dead-letters/{letter['id']}")).json()
        assert shown["fields"] == {"e": "{not json" + "!" * 400} and shown["truncated"] is False
        paged = await http.get(f"/api/dead-letters?count=1&after={letter['id']}")
        assert paged.json() == {"dead_letters": [], "next_after": None}

        replayed = await http.post(f"/api/dead-letters/{letter['id']}/replay")
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["entry_id"] > "1-1"
        # The worker reads it from its queue again, and (still malformed) dead-letters it anew.
        async with asyncio.timeout(10):
            while not (again := (await http.get("/api/dead-letters")).json()["dead_letters"]):
                await asyncio.sleep(0.05)
        assert again[0]["id"] != letter["id"] and again[0]["head"] == letter["head"]
        purged = await http.delete(f"/api/dead-letters/{again[0]['id']}")
        assert purged.json() == {"purged": 1}
        assert (await http.get("/api/dead-letters")).json()["dead_letters"] == []

        # Orders to a worker, confirmed by it.
        drained = await http.post("/api/workers/w1/drain")
        assert drained.status_code == 200 and "w1 is draining" in drained.json()["message"]
        assert (await http.post("/api/workers/w1/resume")).status_code == 200
        record = await client.get_task(sends[0].message_id)
        assert record is not None and record.status is AgentState.COMPLETED


async def test_the_gateway_mounts_it_when_asked(
    client: GatewayClient, settings: Settings, start_worker
) -> None:
    await start_worker(client, "w1", "tests.agents.EchoAgent")
    started: list[GatewayProcess] = []
    try:
        for dashboard in ("true", "false"):
            port = free_port()
            env = process_env(settings, BYAI_GATEWAY_DASHBOARD=dashboard, **API_KEYS)
            process = spawn(gateway_command(port), ROOT, env)
            gateway = GatewayProcess(process, f"http://127.0.0.1:{port}")
            started.append(gateway)
            await wait_serving(gateway)
        mounted, plain = started
        async with httpx.AsyncClient(base_url=mounted.url) as http:
            shell = await http.get("/dashboard/")
            assert shell.status_code == 200 and '<base href="/dashboard/">' in shell.text
            assert (await http.get("/dashboard/static/style.css")).status_code == 200
            assert (await http.get("/dashboard/api/fleet")).status_code == 401
            fleet = await http.get("/dashboard/api/fleet", headers=VIEWER)
            assert [w["worker_id"] for w in fleet.json()["workers"]] == ["w1"]
            refused = await http.post("/dashboard/api/workers/w1/drain", headers=VIEWER)
            assert refused.status_code == 403
            frame = await first_frame(http, "/dashboard/api/fleet/events?access_token=key-ops")
            assert frame.event == "fleet"
            assert (await http.get("/v1/agents", headers=VIEWER)).status_code == 200
            metrics = (await http.get("/metrics")).text
            assert 'route="/dashboard/api/fleet"' in metrics
        async with httpx.AsyncClient(base_url=plain.url) as http:
            assert (await http.get("/dashboard/", headers=VIEWER)).status_code == 404
    finally:
        for gateway in started:
            gateway.stop()


async def test_it_refuses_a_public_host_without_auth(settings: Settings) -> None:
    command = [sys.executable, "-m", "by_framework", "dashboard", "--host", "0.0.0.0"]
    process = spawn(command, ROOT, process_env(settings))
    assert await asyncio.to_thread(process.wait, 30) == EXIT_CONFIG
    assert "is not a loopback address" in output_of(process)
