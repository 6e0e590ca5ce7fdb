"""The span of one run of a task: opened by the runner, parent of the task's sub-call spans.

A span still open when the delivery's handler ends (the task was handed back at shutdown, or
Redis was lost while settling it) is ended then, as ``interrupted``.
"""

import asyncio

from by_framework.protocol import AgentState, AgentTaskResult, MessageHeader
from by_framework.tracing.port import AttributeValue
from by_framework.tracing.tracer import Span, Tracer


def start_task_span(
    tracer: Tracer, header: MessageHeader, command_type: str, run: int, worker_id: str
) -> Span:
    attributes: dict[str, AttributeValue] = {
        "byf.agent_type": header.target_agent_type,
        "byf.session_id": header.session_id,
        "byf.message_id": header.message_id,
        "byf.trace_id": header.trace_id,
        "byf.command": command_type,
        "byf.run": run,
        "byf.worker_id": worker_id,
        "session.id": header.session_id,
    }
    if header.parent_message_id:
        attributes["byf.parent_message_id"] = header.parent_message_id
    if header.source_agent_type:
        attributes["byf.source_agent_type"] = header.source_agent_type
    if header.task_group_id:
        attributes["byf.task_group_id"] = header.task_group_id
    if header.user_code:
        attributes["user.id"] = header.user_code
    span = tracer.start(
        "task", f"task {header.target_agent_type}", header.trace_id, header.parent_span_id,
        attributes,
    )  # fmt: skip
    handler = asyncio.current_task()
    if handler is not None:
        handler.add_done_callback(lambda _: _interrupted(span))
    return span


def end_task_span(span: Span, result: AgentTaskResult, recorded: bool) -> None:
    """End with the task's outcome; ``recorded`` False: another worker took the task over."""
    attributes: dict[str, str | bool] = {"byf.status": result.status.value}
    if not recorded:
        attributes["byf.taken_over"] = True
    if result.error:
        attributes["byf.error"] = result.error
    span.set(attributes)
    span.end(result.error if result.status is AgentState.FAILED else None)


def _interrupted(span: Span) -> None:
    if not span.ended:
        span.set({"byf.status": "interrupted"})
        span.end()
