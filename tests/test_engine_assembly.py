"""The one place an engine is assembled (``by_framework.engine``), and the client and worker
running on an engine they are given."""

import asyncio
import os
import signal

import pytest
from redis.asyncio import Redis

from by_framework import GatewayClient, Settings, WorkerRegistry
from by_framework.engine import connect_engine
from by_framework.worker.run import serve_worker
from tests.agents import EchoAgent
from tests.support import running_worker


async def test_an_engine_is_made_from_a_url_or_the_host_fields(settings: Settings) -> None:
    by_host = settings.model_copy(update={"redis_url": None, "redis_host": "127.0.0.1"})
    for made in (settings, by_host):
        engine = connect_engine(made)
        try:
            await engine.start()
            await engine.ping()
            assert engine.settings is made
        finally:
            await engine.aclose()


async def test_a_client_runs_on_the_engine_it_is_given(settings: Settings) -> None:
    client = GatewayClient(engine=connect_engine(settings))
    try:
        async with running_worker(EchoAgent(), settings, worker_id="echo-given"):
            sent = await client.send_message("echo", "s-given", "hi")
            result = await client.wait_for_result(sent.message_id, timeout=10)
            assert await client.registry.all_online() == ["echo-given"]
    finally:
        await client.aclose()
    assert result.content == "hi"


async def test_the_older_client_form_takes_the_prefix_of_its_registry(
    redis: Redis, settings: Settings
) -> None:
    registry = WorkerRegistry(redis, settings.key_prefix)
    client = GatewayClient(redis, registry)
    async with running_worker(EchoAgent(), settings, worker_id="echo-older"):
        sent = await client.send_message("echo", "s-older", "hi")
        result = await client.wait_for_result(sent.message_id, timeout=10)
    await client.aclose()
    assert result.content == "hi"
    assert client.registry is registry
    assert await redis.ping()  # a client from init_redis stays the caller's to close


def test_a_client_needs_an_engine_or_a_redis_client() -> None:
    with pytest.raises(TypeError, match="engine or a redis_client"):
        GatewayClient()


async def test_a_worker_serves_on_the_engine_it_is_given(settings: Settings) -> None:
    worker_settings = settings.model_copy(update={"worker_id": "echo-served"})
    serving = asyncio.create_task(
        serve_worker(EchoAgent(), worker_settings, engine=connect_engine(worker_settings))
    )
    client = GatewayClient.connect(settings)
    try:
        sent = await client.send_message("echo", "s-served", "hi", wait_for_worker=10)
        result = await client.wait_for_result(sent.message_id, timeout=10)
        os.kill(os.getpid(), signal.SIGTERM)  # serve_worker's own handler stops it
        await asyncio.wait_for(serving, 10)
        assert await client.registry.all_online() == []
    finally:
        serving.cancel()
        await client.aclose()
    assert result.content == "hi"
