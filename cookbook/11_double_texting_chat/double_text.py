"""Send the chat a slow message, then a second one while the first runs, once per strategy, and
show what became of each.

python double_text.py
"""

import asyncio
import uuid

from by_framework import (
    GatewayClient,
    MultitaskStrategy,
    SessionBusyError,
    SessionEvent,
    Settings,
    StreamChunkEvent,
)

STRATEGIES: list[MultitaskStrategy] = ["enqueue", "reject", "interrupt", "rollback"]


async def double_text(client: GatewayClient, strategy: MultitaskStrategy) -> None:
    session = f"chat-{strategy}-{uuid.uuid4().hex[:8]}"
    first = await client.send_message("chat", session, "book Lisbon", wait_for_worker=10)
    async for item in client.events(session, timeout=30):  # until the first run holds the turn
        if not isinstance(item, SessionEvent) or not isinstance(item.event, StreamChunkEvent):
            continue
        if item.message_id == first.message_id:
            break
    try:
        second = await client.send_message(
            "chat", session, "make it Porto", multitask_strategy=strategy
        )
    except SessionBusyError as error:
        print(f"{strategy}: second refused: SessionBusyError "
              f"(busy with the first: {error.busy_with == first.message_id})")  # fmt: skip
        second = None
    ran = await client.wait_for_result(first.message_id, timeout=30)
    print(f"{strategy}: first {ran.status.value}: {ran.content}")
    if second is not None:
        ran = await client.wait_for_result(second.message_id, timeout=30)
        print(f"{strategy}: second {ran.status.value}: {ran.content}")


async def main() -> None:
    client = GatewayClient.connect(Settings.resolve())  # REDIS_URL, BYAI_KEY_PREFIX
    try:
        for strategy in STRATEGIES:
            await double_text(client, strategy)
    finally:
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
