"""Give the planner a topic; print the trace id to look for, then the team's answer.

python ask.py "redis streams"
"""

import argparse
import asyncio
import uuid

from by_framework import GatewayClient, Settings


async def main(topic: str, session: str) -> None:
    client = GatewayClient.connect(Settings.resolve())  # REDIS_URL, BYAI_KEY_PREFIX
    try:
        sent = await client.send_message("planner", session, topic, wait_for_worker=30)
        print(f"trace {sent.trace_id}")
        result = await client.wait_for_result(sent.message_id, timeout=60)
        print(f"answer ({result.status.value}):")
        print(result.content)
    finally:
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topic")
    parser.add_argument("--session", default=f"tracing-{uuid.uuid4().hex[:8]}")
    args = parser.parse_args()
    asyncio.run(main(args.topic, args.session))
