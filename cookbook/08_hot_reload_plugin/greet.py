"""Greet someone; print the answer and the config version the task's record holds.

python greet.py Ada
"""

import asyncio
import sys

from by_framework import GatewayClient, Settings


async def main(name: str) -> None:
    client = GatewayClient.connect(Settings.resolve())  # REDIS_URL, BYAI_KEY_PREFIX
    try:
        sent = await client.send_message("greeter", "greetings", name, wait_for_worker=10)
        result = await client.wait_for_result(sent.message_id, timeout=30)
        record = await client.get_task(sent.message_id)
        assert record is not None
        print(f"{result.content} [record: config v{record.config_version}]")
    finally:
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
