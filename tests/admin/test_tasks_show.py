"""``tasks show``: a task's record, and the tree of its sub-tasks with their statuses."""

from by_framework import AgentState, GatewayClient, Settings
from tests.admin.support import run_cli, stop
from tests.support import wait_online, worker_process


async def test_tasks_show_prints_the_record_and_the_tree_of_a_parent_with_children(
    client: GatewayClient, settings: Settings
) -> None:
    worker = worker_process(settings, "ts-1", "tests.agents.OrchestraAgent")
    try:
        await wait_online(client, "ts-1")
        fanout = {"op": "fanout", "n": 2, "targets": ["helper"]}
        chain = {"op": "chain", "via": ["helper", "asker"]}
        parent = await client.send_message("planner", "ts-s", fanout)
        nested = await client.send_message("planner", "ts-s", chain)
        for sent in (parent, nested):
            result = await client.wait_for_result(sent.message_id, timeout=30)
            assert result.status is AgentState.COMPLETED
    finally:
        stop(worker)
    record = await client.get_task(parent.message_id)
    assert record is not None
    first, second = record.children

    code, output = await run_cli(settings, "tasks", "show", parent.message_id)
    assert code == 0, output
    head, tree = output.split("\ntree:\n")
    fields = dict(line.split(None, 1) for line in head.splitlines() if line.strip())
    assert fields["task"] == parent.message_id
    assert fields["status"] == "completed"
    assert fields["worker"] == "ts-1"
    assert fields["session"] == "ts-s"
    assert fields["timeline"].startswith("queued +0.000s -> running +")
    assert '"status": "completed"' in fields["result"]
    lines = tree.splitlines()
    assert lines[0].startswith(f"{parent.message_id} planner completed in ")
    assert lines[1].startswith(f"├── {first} helper completed")
    assert lines[2].startswith(f"└── {second} helper completed")
    assert len(lines) == 3

    code, output = await run_cli(settings, "tasks", "show", nested.message_id)
    assert code == 0, output
    lines = output.split("\ntree:\n")[1].splitlines()
    assert lines[0].startswith(f"{nested.message_id} planner completed")
    assert lines[1].startswith("└── ") and " helper completed" in lines[1]
    assert lines[2].startswith("    └── ") and " asker completed" in lines[2]
    assert len(lines) == 3

    code, output = await run_cli(settings, "tasks", "show", "no-such-task")
    assert code == 1
    assert output == (
        "by-framework: no task 'no-such-task': never sent, or its record is older than record_ttl\n"
    )
