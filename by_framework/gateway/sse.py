"""Server-Sent Events from a session's events: ``id:`` the stream id, ``event:`` the type."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import suppress

from by_framework.client.gateway import GatewayClient
from by_framework.protocol import EventGap, SessionEvent

KEEP_ALIVE = b": keep-alive\n\n"
QUEUE_SIZE = 64
"""Events read ahead of a slow HTTP client; past it the feed holds the follower back."""

_ENVELOPE_FIELDS = {"message_id", "agent_type", "seq", "ts", "event"}
_DONE = object()


def event_frame(event: SessionEvent) -> bytes:
    data = event.model_dump_json(include=_ENVELOPE_FIELDS)
    return f"id: {event.stream_id}\nevent: {event.event.type}\ndata: {data}\n\n".encode()


def gap_frame(gap: EventGap) -> bytes:
    data = {
        "session_id": gap.session_id,
        "after": gap.after,
        "before": gap.before,
        "trimmed": gap.trimmed,
        "message_ids": list(gap.message_ids),
        "message": gap.describe(),
    }
    return f"event: gap\ndata: {json.dumps(data)}\n\n".encode()


async def sse_stream(
    client: GatewayClient,
    session_id: str,
    after: str,
    until: str | None,
    heartbeat: float,
) -> AsyncIterator[bytes]:
    """The session's events as SSE frames, a keep-alive comment after ``heartbeat`` idle seconds.

    The events are read by a task of their own into a queue: waiting on the queue with a
    timeout leaves the follower untouched, where a timeout on the iterator itself would end it.
    When the HTTP client goes away this generator is closed, and the reading task with it.
    """
    queue: asyncio.Queue[object] = asyncio.Queue(QUEUE_SIZE)

    async def pump() -> None:
        try:
            async for item in client.events(session_id, after, until_message_id=until):
                await queue.put(item)
        except Exception as exc:  # the response ends with it, raised where the reader is
            await queue.put(exc)
        await queue.put(_DONE)

    reading = asyncio.create_task(pump(), name=f"sse-{session_id}")
    try:
        while True:
            if not queue.empty():  # no timer (a task of its own, before 3.12) when one is there
                item = queue.get_nowait()
            else:
                try:
                    item = await asyncio.wait_for(queue.get(), heartbeat)
                except TimeoutError:
                    yield KEEP_ALIVE
                    continue
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            if isinstance(item, SessionEvent):
                yield event_frame(item)
            elif isinstance(item, EventGap):
                yield gap_frame(item)
    finally:
        reading.cancel()
        with suppress(asyncio.CancelledError):
            await reading
