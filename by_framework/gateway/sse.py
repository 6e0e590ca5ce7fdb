"""Server-Sent Events from a session's events: ``id:`` the stream id, ``event:`` the type."""

import json
from collections import OrderedDict
from collections.abc import AsyncIterator

from by_framework.client.gateway import GatewayClient
from by_framework.gateway.metrics import GatewayMetrics
from by_framework.protocol import EventGap, SessionEvent

KEEP_ALIVE = b": keep-alive\n\n"

_ENVELOPE_FIELDS = {"message_id", "agent_type", "seq", "ts", "event"}


FRAMES_KEPT = 1024
_frames: OrderedDict[int, tuple[SessionEvent, bytes]] = OrderedDict()
"""The last events framed, by identity: a client's feed hands the same event objects to every
follower of a session, so an event is encoded once however many follow it. Each entry holds its
event, so no other object can take its id while it is kept."""


def event_frame(event: SessionEvent) -> bytes:
    kept = _frames.get(id(event))
    if kept is not None and kept[0] is event:
        return kept[1]
    data = event.model_dump_json(include=_ENVELOPE_FIELDS)
    frame = f"id: {event.stream_id}\nevent: {event.event.type}\ndata: {data}\n\n".encode()
    _frames[id(event)] = (event, frame)
    if len(_frames) > FRAMES_KEPT:
        _frames.popitem(last=False)
    return frame


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
    metrics: GatewayMetrics | None = None,
) -> AsyncIterator[bytes]:
    """The session's events as SSE frames, one chunk per batch read, a keep-alive comment after
    ``heartbeat`` idle seconds; counted in ``metrics`` (followers, events delivered) if given.
    When the HTTP client goes away this generator is closed, and its read of the session with
    it."""
    batches = client.event_batches(session_id, after, until_message_id=until, idle=heartbeat)
    if metrics is not None:
        metrics.followers.inc()
    try:
        async for batch in batches:
            if not batch:
                yield KEEP_ALIVE
                continue
            if metrics is not None:
                metrics.events_delivered.inc(sum(isinstance(i, SessionEvent) for i in batch))
            yield b"".join(
                event_frame(item) if isinstance(item, SessionEvent) else gap_frame(item)
                for item in batch
            )
    finally:
        if metrics is not None:
            metrics.followers.dec()
