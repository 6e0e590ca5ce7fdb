"""Workers and clients whose connections speak RESP3 (``?protocol=3``): the reads that take raw
replies (a worker's fetch and notices, a client's follower) see the same entries as in RESP2."""

from redis.asyncio import Redis

from by_framework import AgentState, GatewayClient, Settings, StateChangeEvent
from tests.agents import EchoAgent, OrchestraAgent
from tests.support import running_worker, task_events


async def test_a_task_with_a_sub_call_runs_on_resp3_connections(settings: Settings) -> None:
    url = settings.redis_url or ""
    resp3 = settings.model_copy(
        update={"redis_url": url + ("&" if "?" in url else "?") + "protocol=3"}
    )
    redis = Redis.from_url(resp3.redis_url or "")
    client = GatewayClient(redis, settings=resp3)
    assert (await redis.execute_command("HELLO"))[b"proto"] == 3
    try:
        async with (
            running_worker(OrchestraAgent(), resp3, worker_id="orchestra-3"),
            running_worker(EchoAgent(), resp3, worker_id="echo-3"),
        ):
            sent = await client.send_message(
                "planner", "s-resp3", {"op": "call", "target": "echo", "content": "hi"}
            )
            result = await client.wait_for_result(sent.message_id, timeout=10)
            events = await task_events(client, "s-resp3", sent.message_id)
    finally:
        await client.aclose()
        await redis.aclose()
    assert result.status is AgentState.COMPLETED
    assert result.content == {"reply": "hi", "status": "completed"}
    states = [e.state for e in events if isinstance(e, StateChangeEvent)]
    assert states == ["running", "waiting_reply", "running"]  # woken by a notice
