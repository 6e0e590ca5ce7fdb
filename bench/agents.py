"""The agent the benchmark runs in real worker processes."""

import asyncio
import time
from typing import Any

from by_framework import AgentContext, AgentTaskResult, AskUserEvent, GatewayWorker, ResumeCommand


class NoopAgent(GatewayWorker):
    """Streams one chunk and completes: what is measured is the engine around it."""

    def get_agent_types(self) -> list[str]:
        return ["bench-noop"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        await context.emit_chunk("x")
        return {"status": "completed"}


class NoopAgentB(NoopAgent):
    """NoopAgent under an agent type of its own: a second worker measured beside the first on
    the same load (``bench/metrics_ab.py``)."""

    def get_agent_types(self) -> list[str]:
        return ["bench-noop-b"]


SPREAD_AGENT_TYPES = [f"bench-spread-{n}" for n in range(30)]


class SpreadAgent(NoopAgent):
    """NoopAgent under 30 agent types: how load spreads over a cluster (``bench/cluster.py
    --spread``)."""

    def get_agent_types(self) -> list[str]:
        return list(SPREAD_AGENT_TYPES)


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


FAULT_SOAK_AGENT_TYPE = "fault-soak"


class FaultSoakAgent(GatewayWorker):
    """Every task of ``bench/fault_soak.py``, on one agent type. Content: {"op", ...}.

    - "plain" and "child": sleeps ``sleep`` seconds, streams a chunk, completes;
    - "call": ``calls`` ``call_agent`` round trips to a "child" sleeping ``sleep`` seconds, one
      after another;
    - "group": one ``dispatch_group`` of ``n`` such children, then ``collect_group_results``;
    - "ask": asks the user; the resume completes it with the answer.

    Parents return how many of their children completed (the sub-calls are issued in a fixed
    order, as the re-run rule asks).
    """

    def get_agent_types(self) -> list[str]:
        return [FAULT_SOAK_AGENT_TYPE]

    async def process_command(self, command: Any, context: AgentContext) -> Any:
        if isinstance(command, ResumeCommand):
            return {"status": "completed", "content": {"answer": command.content}}
        content = command.content
        op = content["op"]
        if op in ("plain", "child"):
            await asyncio.sleep(float(content["sleep"]))
            await context.emit_chunk(op)
            return {"status": "completed"}
        if op == "ask":
            return await context.ask_user(AskUserEvent(prompt="go on?"))
        child = {"op": "child", "sleep": content["sleep"]}
        if op == "call":
            completed = 0
            for _ in range(int(content["calls"])):
                reply = await context.call_agent(FAULT_SOAK_AGENT_TYPE, child)
                completed += isinstance(reply, AgentTaskResult) and reply.status == "completed"
            return {"status": "completed", "content": {"children_completed": completed}}
        if op == "group":
            calls = [{"target_agent_type": FAULT_SOAK_AGENT_TYPE, "content": child}]
            group = await context.dispatch_group(calls * int(content["n"]))
            results = await context.collect_group_results(group["task_group_id"])
            completed = sum(result["status"] == "completed" for result in results.values())
            return {"status": "completed", "content": {"children_completed": completed}}
        raise ValueError(f"unknown op {op!r}")


class PacedChunkAgent(GatewayWorker):
    """Streams ``content["n"]`` chunks, ``content["interval"]`` seconds apart (the first at
    once), as a model streaming tokens at a steady pace does; then completes.
    ``bench/gateway_fanout.py``: long paced tasks are the load, ``{"n": 1, "interval": 0}`` the
    latency probe."""

    def get_agent_types(self) -> list[str]:
        return ["bench-paced"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        interval = float(command.content["interval"])
        for index in range(int(command.content["n"])):
            if index:
                await asyncio.sleep(interval)
            await context.emit_chunk("tok ")
        return {"status": "completed"}
