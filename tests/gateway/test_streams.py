"""SSE followers across a gateway restart, and no follower left behind by a client gone."""

import asyncio

import httpx
import pytest
import uvicorn

from by_framework import GatewayClient, Settings, StreamChunkEvent
from by_framework.gateway import GatewaySettings, create_app
from by_framework.gateway.sse import event_frame
from by_framework.protocol import SessionEvent
from tests.gateway.conftest import read_until_end, sse_frames
from tests.support import free_port, redis_7, write_chunks

SLOW = "tests.gateway.agents.SlowStreamAgent"


async def test_gateway_restart_mid_stream(start_gateway, start_worker, client: GatewayClient):
    await start_worker(client, SLOW)
    port = free_port()
    first = await start_gateway("--insecure", port=port)
    async with httpx.AsyncClient(base_url=first.url, timeout=20) as http:
        sent = await http.post(
            "/v1/sessions/r1/messages",
            json={"agent_type": "slow", "content": {"chunks": 10, "delay": 0.05}},
        )
        url = f"/v1/sessions/r1/events?until={sent.json()['message_id']}"
        seen = []
        try:
            async with http.stream("GET", url) as response:
                async for frame in sse_frames(response):
                    seen.append(frame)
                    if frame.event == "chunk" and len(seen) >= 3:
                        first.stop()  # killed mid-stream
        except httpx.TransportError:
            pass
        await start_gateway("--insecure", port=port)  # its replacement, at the same address
        rest = await read_until_end(http, url, headers={"Last-Event-ID": seen[-1].id})
    frames = seen + rest
    assert len({f.id for f in frames}) == len(frames)
    chunks = [f.data["event"]["content"] for f in frames if f.event == "chunk"]
    assert chunks == [str(i) for i in range(10)]
    assert frames[-1].event == "end"


async def test_a_client_gone_ends_its_follower(settings: Settings, client: GatewayClient):
    """The real app on a real uvicorn server in this loop, so that its followers can be counted."""
    app = create_app(settings, GatewaySettings(heartbeat_seconds=0.1))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

            def followers() -> int:
                return app.state.gateway.client.engine.events.followers

            async def follow_then_leave(session_id: str) -> None:
                async with http.stream("GET", f"/v1/sessions/{session_id}/events") as response:
                    async for frame in sse_frames(response):
                        assert frame.comment == "keep-alive"
                        assert followers() >= 1  # it is read for while it is connected
                        return

            await asyncio.gather(*(follow_then_leave(f"idle-{i}") for i in range(5)))
            async with asyncio.timeout(10):
                while followers():
                    await asyncio.sleep(0.05)
    finally:
        server.should_exit = True
        await serving


async def test_trimmed_events_come_as_a_gap_event(start_gateway, redis, settings: Settings):
    if not await redis_7(redis):
        pytest.skip("Redis < 7 does not count what it trimmed: a reader from 0-0 sees no gap")
    capped = settings.model_copy(update={"data_stream_maxlen": 1})
    await write_chunks(redis, capped, "t1", *(str(i) for i in range(300)))
    gateway = await start_gateway("--insecure")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as http:
        frames = []
        async with http.stream("GET", "/v1/sessions/t1/events") as response:
            async for frame in sse_frames(response):
                frames.append(frame)
                if frame.event == "chunk" and frame.data["event"]["content"] == "299":
                    break
    gap = frames[0]
    assert gap.event == "gap" and gap.id is None
    assert gap.data["after"] == "0-0" and gap.data["trimmed"] > 0
    assert "trimmed" in gap.data["message"]
    assert gap.data["before"] == frames[1].id


def test_an_event_is_framed_once_and_only_as_itself():
    def chunk(stream_id: str, text: str) -> SessionEvent:
        return SessionEvent(
            v=1, message_id="m", agent_type="echo", seq=1, ts=0.0, stream_id=stream_id,
            event=StreamChunkEvent(content=text),
        )  # fmt: skip

    first = chunk("1-1", "a")
    assert event_frame(first) is event_frame(first)  # the second follower's is the first's
    twin = chunk("1-1", "a")
    assert event_frame(twin) == event_frame(first) and event_frame(twin) is not event_frame(first)
    other = chunk("1-2", "b")
    assert b"id: 1-2\n" in event_frame(other) and b'"b"' in event_frame(other)
