"""The gateway's /metrics: requests by route template and status, SSE followers and events
delivered, on a real gateway process with a real worker behind it."""

import asyncio

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from by_framework import GatewayClient
from by_framework.gateway.metrics import UNMATCHED
from tests.gateway.conftest import read_until_end

REQUESTS = "byai_gateway_requests_total"
MESSAGES = "/v1/sessions/{session_id}/messages"
EVENTS = "/v1/sessions/{session_id}/events"
TASK = "/v1/tasks/{message_id}"


async def scrape(http: httpx.AsyncClient) -> dict[str, Metric]:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def requests(families: dict[str, Metric]) -> dict[tuple[str, str], float]:
    """(route, status) -> requests answered."""
    return {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["byai_gateway_requests"].samples
        if s.name == REQUESTS
    }


def single(families: dict[str, Metric], family: str, sample: str) -> float:
    (value,) = [s.value for s in families[family].samples if s.name == sample]
    return value


async def test_requests_are_counted_by_route_template_and_status(
    start_gateway, start_worker, client: GatewayClient
) -> None:
    await start_worker(client, "tests.agents.EchoAgent")
    gateway = await start_gateway("--insecure")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as http:
        sent = await http.post(
            "/v1/sessions/metered-s1/messages", json={"agent_type": "echo", "content": "hi"}
        )
        assert sent.status_code == 202, sent.text
        message_id = sent.json()["message_id"]
        frames = await read_until_end(http, f"/v1/sessions/metered-s1/events?until={message_id}")
        assert [f.event for f in frames] == ["state", "chunk", "result", "end"]
        assert (await http.get(f"/v1/tasks/{message_id}")).status_code == 200
        assert (await http.get("/v1/tasks/no-such-task")).status_code == 404
        assert (await http.get("/v2/nothing/here")).status_code == 404

        expected = {
            (MESSAGES, "202"): 1,
            (EVENTS, "200"): 1,
            (TASK, "200"): 1,
            (TASK, "404"): 1,
            (UNMATCHED, "404"): 1,
        }
        async with asyncio.timeout(10):  # a streamed response is counted once it has ended
            while True:
                families = await scrape(http)
                counted = requests(families)
                followers = single(
                    families, "byai_gateway_sse_followers", "byai_gateway_sse_followers"
                )
                if expected.items() <= counted.items() and followers == 0:
                    break
                await asyncio.sleep(0.05)
        delivered = "byai_gateway_sse_events_delivered"
        assert single(families, delivered, f"{delivered}_total") == len(frames)

        assert counted["/openapi.json", "200"] >= 1  # a FastAPI route: the gateway fixture asks
        routes = {route for route, _ in counted}
        assert routes <= {MESSAGES, EVENTS, TASK, UNMATCHED, "/metrics", "/openapi.json"}, routes
        for family in families.values():
            for sample in family.samples:
                values = " ".join(sample.labels.values())
                assert "metered-s1" not in values and message_id not in values, sample
                assert "no-such-task" not in values and "/v2/" not in values, sample
