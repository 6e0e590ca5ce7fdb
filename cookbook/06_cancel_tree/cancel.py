"""Start a survey, let its probes stream, then cancel the survey and show the whole tree ended.

python cancel.py
"""

import argparse
import asyncio
import uuid

from by_framework import GatewayClient, Settings, StreamChunkEvent, TaskEndEvent, TaskRecord

PLAN = {"north": ["n1", "n2"], "south": ["s1", "s2"]}
PROBES = sum(len(probes) for probes in PLAN.values())


async def main(session: str) -> None:
    client = GatewayClient.connect(Settings.resolve())  # REDIS_URL, BYAI_KEY_PREFIX
    try:
        root = await client.send_message("survey", session, PLAN, wait_for_worker=10)
        streaming: set[str] = set()  # probes that sent a reading
        ended: set[str] = set()
        tree: set[str] = set()  # every task of the session, once cancelled
        async for item in client.events(session, timeout=60):
            if isinstance(item.event, TaskEndEvent):
                ended.add(item.message_id)
            elif isinstance(item.event, StreamChunkEvent) and not tree:
                print(item.event.content)
                streaming.add(item.message_id)
                if len(streaming) == PROBES:  # the whole tree runs: cancel its root
                    report = await client.cancel_task(root.message_id, session, "operator stop")
                    print(f"cancel: {report.cancelled} ended at once, "
                          f"{len(report.stopping)} being stopped by their workers")  # fmt: skip
                    tree = {task.message_id for task in await client.list_session_tasks(session)}
            if tree and tree <= ended:
                break
        show(await client.list_session_tasks(session), root.message_id)
    finally:
        await client.aclose()


def show(records: list[TaskRecord], root: str) -> None:
    """The task tree, one line per task: agent type, status, the cancel's reason and what the
    task returned."""
    parents = {record.message_id: record.parent_message_id for record in records}

    def depth(message_id: str) -> int:
        return 0 if message_id == root else 1 + depth(parents[message_id] or root)

    for record in sorted(records, key=lambda r: (depth(r.message_id), r.created_at)):
        said = record.result.content if record.result is not None else None
        indent = "  " * depth(record.message_id)
        print(f"{indent}{record.agent_type} {record.status.value} ({record.error}): {said}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--session", default=f"survey-{uuid.uuid4().hex[:8]}")
    asyncio.run(main(parser.parse_args().session))
