"""The agent the benchmark runs in real worker processes."""

import time
from typing import Any

from by_framework import AgentContext, AgentTaskResult, GatewayWorker


class NoopAgent(GatewayWorker):
    """Streams one chunk and completes: what is measured is the engine around it."""

    def get_agent_types(self) -> list[str]:
        return ["bench-noop"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        await context.emit_chunk("x")
        return {"status": "completed"}


class NoopChildAgent(GatewayWorker):
    """A child that does nothing: it returns "completed" at once, no events of its own (the
    engine still writes its RUNNING state, result and end events). ``bench/fanout.py``."""

    def get_agent_types(self) -> list[str]:
        return ["bench-child"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        return {"status": "completed"}


class FanoutParentAgent(GatewayWorker):
    """A parent of ``bench-child`` tasks, for ``bench/fanout.py``. Content: {"op", "n"}.

    - "fanout": one ``dispatch_group`` of ``n`` children, then ``collect_group_results``; returns
      how many completed, whether the results came in dispatch order, and the time spent in each
      of the two calls (ms, measured here).
    - "chain": ``n`` ``call_agent`` round trips, one after another; returns each call's latency
      (ms, measured here) and how many did not complete.
    """

    def get_agent_types(self) -> list[str]:
        return ["bench-parent"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        op, n = command.content["op"], int(command.content["n"])
        if op == "fanout":
            calls = [{"target_agent_type": "bench-child", "content": i} for i in range(n)]
            started = time.perf_counter()
            group = await context.dispatch_group(calls)
            dispatched = time.perf_counter()
            results = await context.collect_group_results(group["task_group_id"])
            collected = time.perf_counter()
            content = {
                "completed": sum(result["status"] == "completed" for result in results.values()),
                "in_order": list(results) == group["message_ids"],
                "dispatch_ms": (dispatched - started) * 1000,
                "collect_ms": (collected - dispatched) * 1000,
            }
            return {"status": "completed", "content": content}
        if op == "chain":
            call_ms, not_completed = [], 0
            for i in range(n):
                started = time.perf_counter()
                reply = await context.call_agent("bench-child", i)
                call_ms.append((time.perf_counter() - started) * 1000)
                if not isinstance(reply, AgentTaskResult) or reply.status != "completed":
                    not_completed += 1
            content = {"call_ms": call_ms, "not_completed": not_completed}
            return {"status": "completed", "content": content}
        raise ValueError(f"unknown op {op!r}")


class ChunkAgent(GatewayWorker):
    """Streams ``content["n"]`` chunks, one awaited ``emit_chunk`` each, as a model streaming
    tokens does; then completes. ``bench/chunks.py``."""

    def get_agent_types(self) -> list[str]:
        return ["bench-chunks"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        for _ in range(int(command.content["n"])):
            await context.emit_chunk("tok ")
        return {"status": "completed"}
