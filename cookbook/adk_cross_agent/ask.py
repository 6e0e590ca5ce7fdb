"""Ask the concierge, print what it streams, then its answer."""

import asyncio
import sys

from by_framework import GatewayClient, Settings, StreamChunkEvent, TaskResultEvent


async def main(message: str) -> None:
    client = GatewayClient.connect(Settings.resolve())
    try:
        after = await client.last_event_id("cookbook-adk")
        sent = await client.send_message("concierge", "cookbook-adk", message, wait_for_worker=30)
        async for item in client.events("cookbook-adk", after, until_message_id=sent.message_id):
            event = item.event
            if isinstance(event, StreamChunkEvent):
                print(f"[{item.agent_type} {event.kind}] {event.content}")
            elif isinstance(event, TaskResultEvent) and item.message_id == sent.message_id:
                print(f"answer:\n{event.result.content}")
    finally:
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "agents from three frameworks work together"))
