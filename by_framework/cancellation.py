"""Cancelling task trees: the one procedure clients and workers share."""

from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from by_framework.ports import CancelReport, Orchestration
from by_framework.protocol import CancelTaskCommand, MessageHeader, encode_command


async def cancel_tasks(
    orchestration: Orchestration,
    session_id: str,
    message_ids: Sequence[str],
    reason: str,
    mode: Literal["graceful", "force"],
    *,
    skip_worker: str | None = None,
    absent: Sequence[str] = (),
) -> CancelReport:
    """Cancel the tasks and their sub-calls, breadth-first: what is queued, waiting for the user
    or orphaned ends CANCELLED at once; each worker running a part of the trees gets one
    ``CancelTaskCommand`` (no cascade) naming its tasks. ``skip_worker``: the calling worker,
    which stops its own tasks itself. ``absent``: workers known not to run the tasks their
    records name them for (a worker told to stop a run it does not hold): those end at once."""
    report = await orchestration.cancel_tree(session_id, message_ids, reason, absent)
    by_worker: defaultdict[str, list[str]] = defaultdict(list)
    for message_id, worker_id in report.stopping.items():
        if worker_id != skip_worker:
            by_worker[worker_id].append(message_id)
    for worker_id, ids in by_worker.items():
        header = MessageHeader(session_id=session_id, target_agent_type=f"worker:{worker_id}")
        command = CancelTaskCommand(message_ids=ids, reason=reason, mode=mode, cascade=False)
        await orchestration.send_to_worker(worker_id, encode_command(header, command))
    return report
