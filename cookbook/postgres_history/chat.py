"""Tell the notebook agent a few things, one turn at a time, in one session; print its replies,
then the session's transcript as the history store has it (a shared store only).

    python chat.py "buy milk" "call mom" "water the plants"
    python chat.py --via notebook-1,notebook-2 ...   # turns go to these workers in turn
"""

import argparse
import asyncio
import uuid

from by_framework import GatewayClient, SessionHistory, Settings, open_history_store


async def main(lines: list[str], via: list[str] | None) -> None:
    settings = Settings.resolve()  # REDIS_URL, BYAI_KEY_PREFIX, BYF_HISTORY_URL
    session = f"notebook-{uuid.uuid4().hex[:8]}"
    client = GatewayClient.connect(settings)
    try:
        for turn, line in enumerate(lines):
            worker = via[turn % len(via)] if via else None
            sent = await client.send_message(
                "notebook", session, line, target_worker_id=worker, wait_for_worker=10
            )
            result = await client.wait_for_result(sent.message_id, timeout=30)
            print(f"{worker or 'agent'}: {result.content}")
    finally:
        await client.aclose()
    if settings.history_url.startswith("memory://"):
        print("(memory:// history lives inside each worker process: no transcript to read here)")
        return
    store = open_history_store(settings.history_url)
    await store.start()
    try:
        async for message in SessionHistory(store, session):
            print(f"[{message.position}] {message.role}: {message.content}")
    finally:
        await store.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lines", nargs="+")
    parser.add_argument("--via", help="comma-separated worker ids to send the turns to, in turn")
    args = parser.parse_args()
    asyncio.run(main(args.lines, args.via.split(",") if args.via else None))
