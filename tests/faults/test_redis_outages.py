"""Redis goes away under running workers: connections killed, the server crashed and restarted.
Workers reconnect and carry on; nothing acknowledged is lost, nothing runs to completion twice."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from by_framework import GatewayClient, NoOnlineWorkerError, SendResponse, Settings
from by_framework.engine import connect_engine
from by_framework.worker.runner import WorkerRunner
from tests.agents import EchoAgent
from tests.faults.test_reclaim import stop_all, tally
from tests.support import (
    DurableRedis,
    free_port,
    wait_all,
    wait_online,
    worker_process,
    write_chunks,
)


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[DurableRedis]:
    server = DurableRedis(tmp_path, free_port())
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.crash()


@pytest.fixture
async def outage_client(
    durable_redis: DurableRedis, settings: Settings
) -> AsyncIterator[tuple[GatewayClient, Settings]]:
    own = settings.model_copy(update={"redis_url": durable_redis.url})
    redis = Redis(connection_pool=BlockingConnectionPool.from_url(durable_redis.url, timeout=None))
    client = GatewayClient(redis, settings=own)
    yield client, own
    await client.aclose()
    await redis.aclose()


async def send_retrying(client: GatewayClient, session: str, content: object) -> SendResponse:
    """A client that keeps trying through an outage, as a user's backend would."""
    for _ in range(100):
        try:
            return await client.send_message("echo", session, content)
        except (ConnectionError, OSError, NoOnlineWorkerError, Exception) as exc:
            if not _transient(exc):
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("could not send within 10 s")


def _transient(exc: Exception) -> bool:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, RedisConnectionError | RedisTimeoutError | NoOnlineWorkerError)


async def test_killed_connections_lose_nothing(
    outage_client: tuple[GatewayClient, Settings], durable_redis: DurableRedis
) -> None:
    client, settings = outage_client
    workers = [worker_process(settings, f"ck-{i}") for i in range(2)]
    try:
        for i in range(2):
            await wait_online(client, f"ck-{i}")
        sends = [await send_retrying(client, f"s{i % 5}", {"n": i, "sleep": 0.05})
                 for i in range(200)]  # fmt: skip
        admin = Redis.from_url(durable_redis.url)
        for _ in range(5):  # kill every client connection, workers' included, a few times
            await asyncio.sleep(0.3)
            await admin.client_kill_filter(_type="normal", skipme=True)
        await admin.aclose()
        results = await wait_all(client, sends, timeout=60)
        assert all(w.poll() is None for w in workers), "workers must survive"
    finally:
        stop_all(*workers)
    assert [r.content["n"] for r in results] == list(range(200))
    counts = await tally(client, sends)
    assert (counts["lost"], counts["duplicated"]) == (0, 0)


async def test_a_redis_crash_and_restart_loses_nothing(
    outage_client: tuple[GatewayClient, Settings], durable_redis: DurableRedis
) -> None:
    client, settings = outage_client
    workers = [worker_process(settings, f"rr-{i}") for i in range(2)]
    try:
        for i in range(2):
            await wait_online(client, f"rr-{i}")
        sends = [await send_retrying(client, f"s{i % 5}", {"n": i, "sleep": 1.5})
                 for i in range(100)]  # fmt: skip
        await asyncio.sleep(0.5)  # every task is running
        crashed_at = time.time()
        durable_redis.crash()
        await asyncio.sleep(1.0)  # workers see Redis gone
        durable_redis.start()
        results = await wait_all(client, sends, timeout=60)
        assert all(w.poll() is None for w in workers), "workers must survive"
    finally:
        stop_all(*workers)
    assert [r.content["n"] for r in results] == list(range(100))
    counts = await tally(client, sends)
    assert (counts["lost"], counts["duplicated"]) == (0, 0)
    records = [await client.get_task(s.message_id) for s in sends]
    cut = sum(1 for r in records if r and r.started_at and r.started_at < crashed_at)
    assert cut >= 50, "the crash hit tasks in flight"  # they waited it out and finished


async def test_a_follower_waits_out_a_redis_that_stops_answering(
    durable_redis: DurableRedis, settings: Settings
) -> None:
    """A peer that vanishes without closing the connection (a stopped host, a partition) must
    not hang a follower for ever: the feed's read is bounded by its block time plus the reply
    timeout, then dropped with the reply still owed on it, and made again on a new connection."""
    own = settings.model_copy(update={"redis_url": durable_redis.url})
    redis = Redis.from_url(durable_redis.url, socket_timeout=0.5, client_name="stalled")
    client = GatewayClient(redis, settings=own)
    admin = Redis.from_url(durable_redis.url)

    async def blocked_read() -> list[int]:
        clients = await admin.client_list()
        return [c["id"] for c in clients if c["name"] == "stalled" and "b" in c["flags"]]

    async def two_texts() -> list[str]:
        texts = []
        async for item in client.events("s-stop", timeout=30):
            texts.append(item.event.content)
            if len(texts) == 2:
                return texts
        return texts

    try:
        await write_chunks(admin, own, "s-stop", "a")
        follower = asyncio.create_task(two_texts())
        await asyncio.sleep(0.5)
        stalled = await blocked_read()
        durable_redis.pause(True)
        try:
            await asyncio.sleep(3.5)  # past the read's bound: 2 s of block + 0.5 s for the reply
        finally:
            durable_redis.pause(False)
        await asyncio.sleep(1.0)  # the feed reconnects and reads again
        again = await blocked_read()
        await write_chunks(admin, own, "s-stop", "b")
        assert await follower == ["a", "b"]
    finally:
        await client.aclose()
        await redis.aclose()
        await admin.aclose()
    assert len(stalled) == 1 and len(again) == 1 and stalled != again


async def test_redis_gone_as_a_worker_begins_serving_is_waited_out(
    outage_client: tuple[GatewayClient, Settings], durable_redis: DurableRedis
) -> None:
    """Between a worker's start and its first fetches (of the entries an earlier life of its
    id left pending), Redis goes: the worker waits for it, as it does once serving, rather than
    stopping (CI caught a worker whose Redis crashed just then report itself stopping)."""
    client, settings = outage_client
    own = settings.model_copy(update={"worker_id": "early"})
    runner = WorkerRunner(EchoAgent(), connect_engine(own), own)
    await runner.start()
    durable_redis.crash()
    serving = asyncio.create_task(runner.serve())
    try:
        await asyncio.sleep(1.0)
        assert not serving.done(), "the worker stopped serving"
        durable_redis.start()
        sent = await send_retrying(client, "s-early", {"n": 1})
        assert (await client.wait_for_result(sent.message_id, timeout=30)).content == {"n": 1}
        assert not serving.done()
    finally:
        runner.request_stop()
        await serving
        await runner.shutdown()
