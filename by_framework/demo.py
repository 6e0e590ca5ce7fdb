"""The demo: a worker and a client talking through Redis, the output streamed to the terminal."""

import asyncio
import sys
import uuid

from by_framework.client.gateway import GatewayClient
from by_framework.engine import check_engine, connect_engine
from by_framework.protocol import (
    ArtifactEvent,
    EventGap,
    StateChangeEvent,
    StreamChunkEvent,
    TaskResultEvent,
)
from by_framework.settings import Settings
from by_framework.worker.base import GatewayWorker
from by_framework.worker.context import AgentContext
from by_framework.worker.runner import WorkerRunner


class StorytellerAgent(GatewayWorker):
    """Streams a short answer word by word, with a state change and an artifact on the way."""

    def get_agent_types(self) -> list[str]:
        return ["storyteller"]

    async def process_command(self, command: object, context: AgentContext) -> dict[str, object]:
        topic = getattr(command, "content", None) or "Redis Streams"
        await context.emit_state("thinking")
        words = f"Once upon a time, a task about {topic} outlived the browser that sent it.".split()
        for word in words:
            await context.emit_chunk(word + " ")
            await asyncio.sleep(0.05)
        await context.emit_artifact(ArtifactEvent(name="story.txt", data=" ".join(words)))
        return {"status": "completed", "content": " ".join(words)}


async def run_demo(redis_url: str, topic: str, key_prefix: str | None = None) -> None:
    settings = Settings.resolve(
        redis_url=redis_url, key_prefix=key_prefix, worker_id="demo-worker", shutdown_timeout=5
    )
    await check_engine(settings)  # else a worker that cannot start leaves wait_started hanging
    worker = WorkerRunner(StorytellerAgent(), connect_engine(settings), settings)
    serving = asyncio.create_task(worker.run())
    await worker.wait_started()
    client = GatewayClient.connect(settings)
    session_id = f"demo-{uuid.uuid4().hex[:8]}"  # a session per run: replaying it shows this run
    try:
        sent = await client.send_message("storyteller", session_id, topic)
        print(f"sent task {sent.message_id} to agent type 'storyteller' via {redis_url}")
        print(f"session {session_id}")
        async for item in client.events(session_id, until_message_id=sent.message_id):
            if isinstance(item, EventGap):
                print(f"\n[{item.describe()}]")
                continue
            event = item.event
            if item.message_id != sent.message_id:
                continue
            if isinstance(event, StreamChunkEvent):
                sys.stdout.write(event.content)
                sys.stdout.flush()
            elif isinstance(event, StateChangeEvent):
                print(f"\n[state] {event.state}")
            elif isinstance(event, ArtifactEvent):
                print(f"\n[artifact] {event.name}")
            elif isinstance(event, TaskResultEvent):
                print(f"[result] {event.result.status.value}")
        record = await client.get_task(sent.message_id)
        if record is not None:
            timeline = " -> ".join(state.value for state, _ in record.timeline)
            print(f"[record] {timeline} on {record.worker_id}")
    finally:
        await client.aclose()
        worker.request_stop()
        await serving
