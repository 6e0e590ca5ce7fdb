"""Workers and clients whose connections speak RESP3 (``?protocol=3``): the reads that take raw
replies (a worker's fetch and notices, a client's follower) see the same entries as in RESP2, and
so do the reads redis-py parses in another shape under RESP3 (XREAD: a map)."""

from redis.asyncio import Redis

from by_framework import AgentState, GatewayClient, Settings, StateChangeEvent
from by_framework.engine import connect_engine
from by_framework.ports import ReloadAck
from tests.agents import EchoAgent, OrchestraAgent
from tests.support import running_worker, task_events


def on_resp3(settings: Settings) -> Settings:
    url = settings.redis_url or ""
    return settings.model_copy(
        update={"redis_url": url + ("&" if "?" in url else "?") + "protocol=3"}
    )


async def test_a_task_with_a_sub_call_runs_on_resp3_connections(settings: Settings) -> None:
    resp3 = on_resp3(settings)
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


async def test_reload_answers_are_read_on_resp3_connections(settings: Settings) -> None:
    engine = connect_engine(on_resp3(settings))
    try:
        store = engine.plugin_store
        after = await store.last_answer_id()
        answer = ReloadAck("reload-1", "w1", "ok", version_before=1, version_after=2)
        await store.answer(ReloadAck("reload-0", "w1", "ok", 0, 1))  # an older reload's
        await store.answer(answer)
        assert await store.answers("reload-1", after, {"w1"}, timeout=5) == {"w1": answer}
        assert await store.last_answer_id() != after
    finally:
        await engine.aclose()
