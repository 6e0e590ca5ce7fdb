"""Redis loses the control streams and consumer groups under running worker processes: a restart
with the data gone (SHUTDOWN NOSAVE), a FLUSHALL, a DEL of one control stream. Workers recreate
their streams and groups, register again and go on serving; the client that saw the fault sends
its next task at once, and that send waits for a worker to be back rather than failing."""

import asyncio
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from by_framework import AgentState, GatewayClient, NoOnlineWorkerError, Settings
from by_framework.redis.keys import KeySpace
from tests.faults.test_reclaim import stop_all
from tests.faults.test_redis_outages import durable_redis, outage_client
from tests.support import DurableRedis, output_of, wait_online, worker_process

__all__ = ["durable_redis", "outage_client"]  # fixtures, used by name

SHOWCASE = "tests.agents.ShowcaseAgent"  # serves "showcase", and "showcase-b" that nobody uses
WORKERS = ("lost-0", "lost-1")
WAIT_FOR_WORKER = 20.0
Worker = subprocess.Popen[str]


@pytest.fixture
def workers(outage_client: tuple[GatewayClient, Settings]) -> Iterator[list[Worker]]:
    _, settings = outage_client
    processes = [worker_process(settings, worker_id, SHOWCASE) for worker_id in WORKERS]
    yield processes
    stop_all(*processes)


async def served_after(
    client: GatewayClient, workers: list[Worker], fault: Callable[[], Awaitable[None]]
) -> None:
    """A task completes before the fault and one sent right after it; the workers survive it
    and are online again."""
    for worker_id in WORKERS:
        await wait_online(client, worker_id)
    before = await client.send_message("showcase", "s-lost", {"sleep": 0})
    await client.wait_for_result(before.message_id, timeout=10)
    await fault()
    after = await client.send_message(
        "showcase", "s-lost", {"sleep": 0}, wait_for_worker=WAIT_FOR_WORKER
    )
    result = await client.wait_for_result(after.message_id, timeout=20)
    assert result.content == {"sleep": 0}
    for worker in workers:
        assert worker.poll() is None, f"a worker exited:\n{output_of(worker)}"
    for worker_id in WORKERS:
        await wait_online(client, worker_id, timeout=10)
    assert all(worker.poll() is None for worker in workers)


async def running(client: GatewayClient, message_id: str) -> None:
    async with asyncio.timeout(10):
        while (record := await client.get_task(message_id)) is None or record.worker_id is None:
            await asyncio.sleep(0.05)


async def test_a_restart_that_lost_every_key(
    outage_client: tuple[GatewayClient, Settings],
    durable_redis: DurableRedis,
    workers: list[Worker],
    tmp_path: Path,
) -> None:
    client, settings = outage_client

    async def restart_empty() -> None:
        admin = Redis.from_url(durable_redis.url)
        await admin.shutdown(nosave=True)
        await admin.aclose()
        assert durable_redis.process is not None
        durable_redis.process.wait(timeout=10)
        durable_redis.directory = tmp_path / "emptied"  # the old AOF stays behind
        durable_redis.directory.mkdir()
        durable_redis.start()
        registry = KeySpace(settings.key_prefix).session_registry("s-lost")
        admin = Redis.from_url(durable_redis.url)
        assert not await admin.exists(registry), "the restart kept the data"
        await admin.aclose()

    await served_after(client, workers, restart_empty)


async def test_flushall(
    outage_client: tuple[GatewayClient, Settings],
    durable_redis: DurableRedis,
    workers: list[Worker],
) -> None:
    client, _ = outage_client

    async def flushall() -> None:
        admin = Redis.from_url(durable_redis.url)
        await admin.flushall()
        await admin.aclose()

    await served_after(client, workers, flushall)


@pytest.mark.parametrize("agent_type", ["showcase", "showcase-b"])
async def test_a_deleted_control_stream(
    outage_client: tuple[GatewayClient, Settings],
    durable_redis: DurableRedis,
    workers: list[Worker],
    agent_type: str,
) -> None:
    client, settings = outage_client

    async def delete_stream() -> None:
        admin = Redis.from_url(durable_redis.url)
        stream = KeySpace(settings.key_prefix).agent_type_stream(agent_type)
        assert await admin.delete(stream) == 1
        await admin.aclose()
        await asyncio.sleep(0.5)  # the workers' blocked reads are cut off meanwhile

    await served_after(client, workers, delete_stream)


async def test_no_worker_back_within_the_wait_is_a_clear_error(
    outage_client: tuple[GatewayClient, Settings],
) -> None:
    client, _ = outage_client
    with pytest.raises(NoOnlineWorkerError, match=r"'showcase'.*waited 0\.3s"):
        await client.send_message("showcase", "s-none", "hi", wait_for_worker=0.3)


async def test_a_deleted_notice_stream(
    outage_client: tuple[GatewayClient, Settings],
    durable_redis: DurableRedis,
    workers: list[Worker],
) -> None:
    """The notice loop makes its stream again: a cancel still reaches the task it stops."""
    client, settings = outage_client
    for worker_id in WORKERS:
        await wait_online(client, worker_id)
    admin = Redis.from_url(durable_redis.url)
    assert await admin.delete(KeySpace(settings.key_prefix).worker_notices(WORKERS[0])) == 1
    await admin.aclose()
    sent = await client.send_message(
        "showcase", "s-notice", {"sleep": 60}, target_worker_id=WORKERS[0]
    )
    await running(client, sent.message_id)
    await client.cancel_task(sent.message_id, "s-notice", mode="force")
    result = await client.wait_for_result(sent.message_id, timeout=10)
    assert result.status is AgentState.CANCELLED
    assert all(worker.poll() is None for worker in workers)
