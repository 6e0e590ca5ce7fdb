"""Give the research team some topics; print what every agent streams, then the lead's answer.

python ask.py "redis streams" "consumer groups" "time travel"
"""

import argparse
import asyncio
import uuid

from by_framework import GatewayClient, Settings, StreamChunkEvent, TaskEndEvent


async def main(topics: list[str], session: str) -> None:
    client = GatewayClient.connect(Settings.resolve())  # REDIS_URL, BYAI_KEY_PREFIX
    try:
        sent = await client.send_message("lead", session, topics, wait_for_worker=10)
        async for item in client.events(session, until_message_id=sent.message_id, timeout=60):
            event = item.event
            if isinstance(event, StreamChunkEvent) and event.kind == "reasoning":
                print(f"[{item.agent_type}] {event.content}")
            elif isinstance(event, TaskEndEvent) and item.message_id != sent.message_id:
                print(f"[{item.agent_type}] {event.status}")
        result = await client.wait_for_result(sent.message_id)
        print(f"answer ({result.status}):")
        print(result.content)
    finally:
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topics", nargs="+")
    parser.add_argument("--session", default=f"research-{uuid.uuid4().hex[:8]}")
    args = parser.parse_args()
    asyncio.run(main(args.topics, args.session))
