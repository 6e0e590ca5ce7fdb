"""Schedule the reporter on a cron, show the schedule, print its first reports, then cancel it.

python schedule_report.py                      # every 2 seconds, three reports
python schedule_report.py --cron "0 9 * * *" --timezone Europe/Paris --reports 1   # the daily one
"""

import argparse
import asyncio
import uuid

from by_framework import GatewayClient, SessionEvent, Settings, TaskEndEvent


async def main(cron: str, timezone: str, reports: int, session: str) -> None:
    client = GatewayClient.connect(Settings.resolve())  # REDIS_URL, BYAI_KEY_PREFIX
    try:
        start = await client.last_event_id(session)  # only the reports of this schedule
        made = await client.schedule_cron(
            cron, "reporter", session, {"report": "daily"}, timezone=timezone
        )
        for each in await client.list_schedules():
            if each.schedule_id == made.schedule_id:
                print(f"scheduled: reporter, {each.cron!r} in {each.timezone}")
        seen = 0
        async for item in client.events(session, start, timeout=3600):
            if isinstance(item, SessionEvent) and isinstance(item.event, TaskEndEvent):
                record = await client.get_task(item.message_id)
                if record is not None and record.result is not None:
                    print(record.result.content)
                seen += 1
                if seen == reports:
                    break
        print(f"cancelled: {await client.cancel_schedule(made.schedule_id)}")
        left = [s for s in await client.list_schedules() if s.schedule_id == made.schedule_id]
        print(f"still scheduled: {len(left)}")
    finally:
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cron", default="*/2 * * * * *", help="six fields: seconds first")
    parser.add_argument("--timezone", default="UTC")
    parser.add_argument("--reports", type=int, default=3)
    parser.add_argument("--session", default=f"reports-{uuid.uuid4().hex[:8]}")
    args = parser.parse_args()
    asyncio.run(main(args.cron, args.timezone, args.reports, args.session))
