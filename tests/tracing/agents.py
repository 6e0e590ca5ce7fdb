"""Agents the tracing tests run, in this process and in worker processes.

Content is a dict with an "op":
- "chain": call the first agent type of "via" with the rest (the last one answers), or with
  "child" if given;
- "fanout": dispatch one child per agent type of "targets", collect their results;
- "ask": ask the user;
- "fail": raise;
- "probe": report whether this task has a span;
- "sleep": sleep "seconds", inside a span of its own;
- "instrumented": open a span through an OpenTelemetry tracer of its own (as LLM or framework
  instrumentation does), exported to ``INSTRUMENTATION``.
"""

import asyncio
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from by_framework import AgentContext, AgentTaskResult, AskUserEvent, GatewayWorker

INSTRUMENTATION = InMemorySpanExporter()
_instrumentation = TracerProvider()
_instrumentation.add_span_processor(SimpleSpanProcessor(INSTRUMENTATION))


class TracedAgent(GatewayWorker):
    """Serves trace_a, trace_b and trace_c."""

    agent_types = ["trace_a", "trace_b", "trace_c"]

    def get_agent_types(self) -> list[str]:
        return list(self.agent_types)

    async def process_command(self, command: Any, context: AgentContext) -> Any:
        content = command.content if isinstance(command.content, dict) else {"op": "echo"}
        op = content.get("op", "chain")
        if op == "chain" and content.get("via"):
            first, *rest = content["via"]
            ask = content.get("child", {"op": "chain", "via": rest})
            reply = await context.call_agent(first, ask)
            assert isinstance(reply, AgentTaskResult)
            return {"status": "completed", "content": [context.current_agent_id, *reply.content]}
        if op == "fanout":
            calls = [
                {"target_agent_type": t, "content": {"op": "chain"}} for t in content["targets"]
            ]
            group = await context.dispatch_group(calls)
            results = await context.collect_group_results(group["task_group_id"], timeout=30)
            return {"status": "completed", "content": [r["content"] for r in results.values()]}
        if op == "ask":
            return await context.ask_user(AskUserEvent(prompt="proceed?"))
        if op == "fail":
            raise RuntimeError("asked to fail")
        if op == "sleep":
            assert context.span is not None
            with context.span.child("span", "nap", {"seconds": content["seconds"]}):
                await asyncio.sleep(content["seconds"])
        if op == "instrumented":
            with _instrumentation.get_tracer("some.llm.library").start_as_current_span("llm"):
                await asyncio.sleep(0)
        if op == "probe":
            return {"status": "completed", "content": {"traced": context.span is not None}}
        return {"status": "completed", "content": [context.current_agent_id]}


class OuterAgent(TracedAgent):
    """The ends of the chain: trace_a and trace_c."""

    agent_types = ["trace_a", "trace_c"]


class MiddleAgent(TracedAgent):
    """The middle of the chain: trace_b."""

    agent_types = ["trace_b"]
