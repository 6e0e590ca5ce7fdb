"""The gateway's API against a real gateway process, real workers and the real Redis."""

import asyncio

import httpx

from by_framework import GatewayClient, Settings
from by_framework.gateway import GatewaySettings, create_app
from tests.gateway.conftest import read_until_end, sse_frames

SLOW = "tests.gateway.agents.SlowStreamAgent"


async def test_send_then_follow_to_the_end(start_gateway, start_worker, client: GatewayClient):
    await start_worker(client, "tests.agents.EchoAgent")
    gateway = await start_gateway("--insecure")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        sent = await http.post(
            "/v1/sessions/s1/messages", json={"agent_type": "echo", "content": "hi"}
        )
        assert sent.status_code == 202, sent.text
        message_id = sent.json()["message_id"]
        assert sent.json()["session_id"] == "s1"
        frames = await read_until_end(http, f"/v1/sessions/s1/events?until={message_id}")
        assert [f.event for f in frames] == ["state", "chunk", "result", "end"]
        assert frames[1].data["event"]["content"] == "echo: hi"
        assert {f.data["message_id"] for f in frames} == {message_id}
        assert [f.data["seq"] for f in frames] == [0, 1, 2, 3]
        assert all(f.id for f in frames)

        task = (await http.get(f"/v1/tasks/{message_id}")).json()
        assert task["status"] == "completed"
        assert task["user_code"] == "anonymous"
        result = await http.get(f"/v1/tasks/{message_id}/result", params={"wait": 5})
        assert result.status_code == 200
        assert result.json()["content"] == "hi"
        tasks = (await http.get("/v1/sessions/s1/tasks")).json()
        assert [node["message_id"] for node in tasks["tree"]] == [message_id]
        agents = (await http.get("/v1/agents")).json()
        assert agents == {"agents": [{"agent_type": "echo", "workers": 1}]}


async def test_reconnect_with_last_event_id_sees_every_event_once(
    start_gateway, start_worker, client: GatewayClient
):
    await start_worker(client, SLOW)
    gateway = await start_gateway("--insecure")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as http:
        sent = await http.post(
            "/v1/sessions/s2/messages",
            json={"agent_type": "slow", "content": {"chunks": 8, "delay": 0.05}},
        )
        message_id = sent.json()["message_id"]
        url = f"/v1/sessions/s2/events?until={message_id}"
        first: list = []
        async with http.stream("GET", url) as response:
            async for frame in sse_frames(response):
                if frame.event == "chunk":
                    first.append(frame)
                if len(first) == 3:
                    break  # the client goes away mid-stream
        rest = await read_until_end(http, url, headers={"Last-Event-ID": first[-1].id})
        chunks = [f.data["event"]["content"] for f in first + rest if f.event == "chunk"]
        assert chunks == [str(i) for i in range(8)]
        assert rest[-1].event == "end"
        # ?after= does the same for a client that keeps the id itself
        again = await read_until_end(http, f"{url}&after={first[-1].id}")
        assert [f.id for f in again] == [f.id for f in rest]


async def test_ask_user_answered_through_another_gateway(
    start_gateway, start_worker, client: GatewayClient
):
    await start_worker(client, "tests.agents.OrchestraAgent")
    one = await start_gateway("--insecure")
    two = await start_gateway("--insecure")
    async with httpx.AsyncClient(timeout=20) as http:
        sent = await http.post(
            f"{one.url}/v1/sessions/s3/messages",
            json={"agent_type": "asker", "content": {"op": "ask", "prompt": "sure?"}},
        )
        message_id = sent.json()["message_id"]
        url = f"/v1/sessions/s3/events?until={message_id}"
        asked = await read_until_end(http, one.url + url)
        assert [f.data["event"]["prompt"] for f in asked if f.event == "ask_user"] == ["sure?"]
        assert asked[-1].data["event"]["status"] == "waiting_user"
        waiting = await http.get(f"{two.url}/v1/tasks/{message_id}/result?wait=0")
        assert waiting.json()["status"] == "waiting_user"

        resumed = await http.post(
            f"{two.url}/v1/tasks/{message_id}/resume", json={"content": "yes"}
        )
        assert resumed.status_code == 202, resumed.text
        after = asked[-1].id
        ended = await read_until_end(http, f"{two.url}{url}&after={after}")
        result = next(f for f in ended if f.event == "result")
        assert result.data["event"]["result"]["content"]["answer"] == "yes"
        again = await http.post(f"{one.url}/v1/tasks/{message_id}/resume", json={"content": "x"})
        assert again.status_code == 409


async def test_cancel_a_running_task_and_a_session(
    start_gateway, start_worker, client: GatewayClient
):
    await start_worker(client, SLOW)
    gateway = await start_gateway("--insecure")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as http:
        content = {"chunks": 200, "delay": 0.05}
        sent = await http.post(
            "/v1/sessions/s4/messages", json={"agent_type": "slow", "content": content}
        )
        message_id = sent.json()["message_id"]
        async with http.stream("GET", f"/v1/sessions/s4/events?until={message_id}") as response:
            async for frame in sse_frames(response):
                if frame.event == "chunk" and frame.data["seq"] == 1:
                    cancel = await http.post(
                        f"/v1/tasks/{message_id}/cancel", json={"mode": "graceful"}
                    )
                    assert cancel.status_code == 200, cancel.text
                    assert message_id in cancel.json()["stopping"]
                if frame.event == "end":
                    assert frame.data["event"]["status"] == "cancelled"
        queued = await http.post(
            "/v1/sessions/s4/messages", json={"agent_type": "slow", "content": content}
        )
        report = await http.post("/v1/sessions/s4/cancel")
        assert report.status_code == 200
        record = await client.get_task(queued.json()["message_id"])
        assert record is not None
        await asyncio.wait_for(_ended(client, record.message_id), 10)


async def _ended(client: GatewayClient, message_id: str) -> None:
    while True:
        record = await client.get_task(message_id)
        if record is not None and record.status.is_terminal:
            assert record.status.value == "cancelled"
            return
        await asyncio.sleep(0.05)


async def test_bad_bodies_and_no_worker(start_gateway, start_worker, client: GatewayClient):
    gateway = await start_gateway("--insecure", "--max-body-bytes", "1000")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        url = "/v1/sessions/s5/messages"
        big = {"agent_type": "echo", "content": "x" * 2000}
        assert (await http.post(url, json=big)).status_code == 413

        async def chunked():  # no Content-Length: counted as read
            for _ in range(5):
                yield b"x" * 400

        assert (await http.post(url, content=chunked())).status_code == 413
        malformed = await http.post(url, content=b'{"agent_type": "echo"', headers=_json())
        assert malformed.status_code == 422
        missing = await http.post(url, json={"content": "hi"})
        assert missing.status_code == 422
        assert missing.json()["detail"][0]["loc"] == ["body", "agent_type"]
        blank = await http.post(url, json={"agent_type": " ", "content": "hi"})
        assert blank.status_code == 422
        assert "target_agent_type" in blank.json()["detail"]
        bad_id = await http.post(
            "/v1/sessions/%20/messages", json={"agent_type": "echo", "content": 1}
        )
        assert bad_id.status_code == 422
        assert "session_id" in bad_id.json()["detail"]

        none = await http.post(url, json={"agent_type": "echo", "content": "hi"})
        assert none.status_code == 503
        assert "no online worker serves agent type 'echo'" in none.json()["detail"]
        assert (await http.get("/v1/tasks/nope")).status_code == 404
        bad_after = await http.get("/v1/sessions/s5/events?after=yesterday")
        assert bad_after.status_code == 422


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}


async def test_cors_allows_the_configured_origins_only(settings: Settings):
    app = create_app(settings, GatewaySettings(cors_origins="https://app.example"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        for origin, allowed in (("https://app.example", True), ("https://evil.example", False)):
            preflight = await http.options(
                "/v1/sessions/s1/messages",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type",
                },
            )
            assert (preflight.headers.get("access-control-allow-origin") == origin) is allowed
