"""Send many photos to the resizers at once; print which worker resized which, and a tally.

python send_many.py --session photos --count 12
"""

import argparse
import asyncio
from collections import Counter

from by_framework import GatewayClient, Settings, TaskEndEvent


async def main(session: str, count: int) -> None:
    client = GatewayClient.connect(Settings.resolve())  # REDIS_URL, BYAI_KEY_PREFIX
    try:
        after = await client.last_event_id(session)  # only this run's events
        sent = [
            await client.send_message("resizer", session, f"photo-{n:02}.jpg", wait_for_worker=10)
            for n in range(1, count + 1)
        ]
        waiting = {s.message_id for s in sent}
        async for item in client.events(session, after, timeout=120):  # one read for them all
            if isinstance(item.event, TaskEndEvent):
                waiting.discard(item.message_id)
                if not waiting:
                    break
        tally: Counter[str] = Counter()
        for s in sent:
            record = await client.get_task(s.message_id)
            assert record is not None and record.result is not None
            print(f"{record.result.content['photo']} -> {record.worker_id} ({record.status.value})")
            tally[record.worker_id or "?"] += 1
        print(", ".join(f"{worker}: {n}" for worker, n in sorted(tally.items())))
    finally:
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--session", default="photos")
    parser.add_argument("--count", type=int, default=12)
    args = parser.parse_args()
    asyncio.run(main(args.session, args.count))
