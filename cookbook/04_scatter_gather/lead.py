"""The lead of the research team: one researcher per topic, all at once (``dispatch_group``),
then one summary of what came back (``collect_group_results``). While the researchers work, the
lead's task waits without holding a worker slot."""

from typing import Any

from by_framework import AgentContext, GatewayWorker


class LeadAgent(GatewayWorker):
    def get_agent_types(self) -> list[str]:
        return ["lead"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        topics = [str(topic) for topic in command.content]
        await context.emit_chunk(f"sending {len(topics)} researchers", kind="reasoning")
        group = await context.dispatch_group(
            [{"target_agent_type": "researcher", "content": topic} for topic in topics]
        )
        results = await context.collect_group_results(group["task_group_id"])
        lines, found = [], 0
        # One entry per researcher, in dispatch order; a failed one is an entry, not an exception.
        for topic, message_id in zip(topics, group["message_ids"], strict=True):
            outcome = results[message_id]
            if outcome["status"] == "completed":
                found += 1
                lines.append(f"- {topic}: {outcome['content']}")
            else:
                lines.append(f"- {topic}: {outcome['status']} ({outcome['error']})")
        summary = "\n".join([f"{found} of {len(topics)} topics researched:", *lines])
        await context.emit_chunk(summary)
        return {"status": "completed", "content": summary}
