# send_task.py
import asyncio

from by_framework import ByaiGatewayClient, WorkerRegistry, close_redis, init_redis


async def main():
    redis = init_redis(host="localhost", port=6379)
    registry = WorkerRegistry(redis_client=redis)
    client = ByaiGatewayClient(redis_client=redis, registry=registry)
    resp = await client.send_message(
        target_agent_type="my_agent",
        session_id="quickstart",
        content="Hello!",
        wait_for_worker=10,  # seconds for my_agent.py's worker to come online
    )
    print(f"Sent: {resp.message_id}")
    result = await client.wait_for_result(resp.message_id, timeout=30)
    print(result.content)
    await close_redis()


asyncio.run(main())
