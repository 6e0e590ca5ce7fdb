"""A plain async function as an agent."""

from by_framework import AgentContext, CallableWorker, agent


@agent("shout")
async def shout(content: str, context: AgentContext) -> str:
    await context.emit_chunk("clearing my throat", kind="reasoning")
    return f"{content.upper()}!"


class ShoutWorker(CallableWorker):
    def __init__(self) -> None:
        super().__init__([shout])
