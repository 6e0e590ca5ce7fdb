"""A writing team of three agents, one worker each: the planner asks the researcher, which asks
the writer (``call_agent`` both times). Nothing here is about tracing except the researcher's own
``lookup notes`` span: the workers trace because their environment says so."""

from typing import Any

from by_framework import AgentContext, AgentState, AgentTaskResult, CallableWorker, agent

NOTES = {
    "redis streams": ["entries are append-only", "a consumer group shares them out"],
    "tracing": ["a trace is a tree of spans", "a span names its parent"],
}


async def ask(context: AgentContext, agent_type: str, content: Any) -> Any:
    """Call another agent and wait for its answer; a failed call fails this task too."""
    reply = await context.call_agent(agent_type, content)
    assert isinstance(reply, AgentTaskResult)  # waited for: a result, not a message id
    if reply.status is not AgentState.COMPLETED:
        raise RuntimeError(f"{agent_type} {reply.status.value}: {reply.error}")
    return reply.content


@agent("planner")
async def plan(topic: str, context: AgentContext) -> str:
    paragraph = await ask(context, "researcher", topic.strip().lower())
    return f"# {topic.strip().title()}\n{paragraph}"


@agent("researcher")
async def research(topic: str, context: AgentContext) -> str:
    if context.span is None:  # this worker does not trace
        facts = NOTES.get(topic, [])
    else:
        # Spans record ids, names and statuses, never content: count the facts, don't copy them.
        with context.span.child("span", "lookup notes") as lookup:
            facts = NOTES.get(topic, [])
            lookup.set({"notes.found": len(facts)})
    return await ask(context, "writer", {"topic": topic, "facts": facts})


@agent("writer")
async def write(brief: dict[str, Any], context: AgentContext) -> str:
    if not brief["facts"]:
        return f"Nothing is known about {brief['topic']} yet."
    return f"About {brief['topic']}: " + "; ".join(brief["facts"]) + "."


planner = CallableWorker([plan])
researcher = CallableWorker([research])
writer = CallableWorker([write])
