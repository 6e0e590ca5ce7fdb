"""Plain async callables served as agents (tests of by_framework.callables)."""

from typing import Any

from by_framework import AgentContext, AskUserEvent, CallableWorker, ResumeCommand, agent


@agent("shout")
async def shout(content: Any, context: AgentContext) -> str:
    await context.emit_chunk(str(content).upper())
    return str(content).upper()


@agent("relay")
async def relay(content: Any, context: AgentContext) -> dict[str, Any]:
    reply = await context.call_agent("shout", content)
    return {"relayed": reply.content}


@agent("confirm")
async def confirm(content: Any, context: AgentContext) -> Any:
    if isinstance(content, ResumeCommand):
        return {"confirmed": content.content}
    return await context.ask_user(AskUserEvent(prompt=f"confirm {content}?"))


@agent("boom")
async def boom(content: Any, context: AgentContext) -> None:
    raise ValueError(f"cannot handle {content!r}")


worker = CallableWorker([shout, relay, confirm, boom])
