# my_agent.py
from by_framework import AgentContext, GatewayWorker, run_worker


class MyAgent(GatewayWorker):
    def get_agent_types(self):
        return ["my_agent"]

    async def process_command(self, command, context: AgentContext):
        await context.emit_chunk("Hello from your agent!")
        return {"status": "completed", "content": "Hello from your agent!"}


if __name__ == "__main__":
    run_worker(MyAgent, worker_id="worker-01")
