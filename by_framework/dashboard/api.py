"""The dashboard's JSON and SSE endpoints, under ``api/``: what its pages fetch and follow."""

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.responses import StreamingResponse

from by_framework.client.gateway import GatewayClient
from by_framework.dashboard.access import Viewers, check_admin
from by_framework.dashboard.feed import FleetFeed
from by_framework.dashboard.views import (
    dead_letter_summary,
    entry_head,
    read_fleet,
    tree_document,
)
from by_framework.errors import (
    DeadLetterNotFoundError,
    DeadLetterReplayError,
    TaskNotWaitingError,
    WorkerOrderError,
)
from by_framework.fleet import order_worker, task_tree
from by_framework.fleet.orders import Order
from by_framework.gateway.auth import Identity
from by_framework.gateway.models import Accepted, ResumeRequest, SessionTasks
from by_framework.gateway.models import task_tree as session_tree
from by_framework.gateway.sse import sse_stream

STREAM_ID = re.compile(r"^\d+(-\d+)?$")
ORDER_TIMEOUT = 10.0
"""Seconds a worker has to confirm a drain, resume or evict ordered from the page."""
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass(frozen=True, slots=True)
class Backend:
    """What the routes work on, once the app's owner opened it."""

    client: GatewayClient
    feed: FleetFeed
    heartbeat_seconds: float


def api_router(backend: Callable[[], Backend], viewers: Viewers) -> APIRouter:
    router = APIRouter(prefix="/api")

    async def viewer(
        authorization: Annotated[str | None, Header()] = None,
        access_token: Annotated[
            str | None, Query(description="The bearer token, for EventSource (no headers).")
        ] = None,
    ) -> Identity:
        return viewers.identify(authorization, access_token)

    Viewer = Annotated[Identity, Depends(viewer)]

    async def admin(identity: Viewer) -> Identity:
        check_admin(identity)
        return identity

    Admin = Annotated[Identity, Depends(admin)]

    @router.get("/whoami")
    async def whoami(identity: Viewer) -> dict[str, Any]:
        """The caller, and whether it may act (the page shows or disables its buttons)."""
        return {"subject": identity.subject, "admin": identity.admin, "auth": viewers.enforced}

    @router.get("/fleet")
    async def fleet(identity: Viewer) -> dict[str, Any]:
        """Workers, agent types, tasks ended lately, dead letters, and the chart's minutes."""
        return await read_fleet(backend().client.engine.fleet)

    @router.get("/fleet/events", response_class=StreamingResponse)
    async def fleet_events(identity: Viewer) -> StreamingResponse:
        """The fleet document as Server-Sent Events (``event: fleet``), about once a second."""
        feed = backend().feed

        async def frames() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            async for document in feed.watch():
                yield f"event: fleet\ndata: {json.dumps(document)}\n\n".encode()

        return StreamingResponse(frames(), media_type="text/event-stream", headers=SSE_HEADERS)

    @router.post("/workers/{worker_id}/{order}")
    async def order(worker_id: str, order: Order, identity: Admin) -> dict[str, str]:
        """Drain, resume or evict the worker; what was done, once it confirmed."""
        engine = backend().client.engine
        if await engine.fleet.worker(worker_id) is None:
            raise HTTPException(404, f"no worker {worker_id!r}")
        try:
            done = await order_worker(engine, engine.settings, worker_id, order, ORDER_TIMEOUT)
        except WorkerOrderError as exc:
            raise HTTPException(409, str(exc)) from None
        return {"message": done}

    @router.get("/sessions/{session_id}", response_model=SessionTasks)
    async def session(session_id: str, identity: Viewer) -> SessionTasks:
        """The session's tasks and their tree; 404 while it has none."""
        records = await backend().client.list_session_tasks(session_id)
        if not records:
            raise HTTPException(404, f"no session {session_id!r} (no task recorded in it)")
        return SessionTasks(session_id=session_id, tasks=records, tree=session_tree(records))

    @router.get("/sessions/{session_id}/events", response_class=StreamingResponse)
    async def session_events(
        session_id: str,
        identity: Viewer,
        after: Annotated[str | None, Query(description="Resume after this stream id.")] = None,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        """The session's events as the gateway streams them, resumable by ``Last-Event-ID``;
        a session with no events yet is followed until they come."""
        position = last_event_id or after or "0-0"
        if not STREAM_ID.match(position):
            raise HTTPException(
                422, f"Last-Event-ID / after: {position!r} is not a stream id like 1700000000000-0"
            )
        state = backend()
        frames = sse_stream(state.client, session_id, position, None, state.heartbeat_seconds)
        return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)

    @router.get("/tasks/{message_id}")
    async def task(message_id: str, identity: Viewer) -> dict[str, Any]:
        """The task's record and the tree of its sub-tasks."""
        root = await task_tree(backend().client.engine.tasks, message_id)
        if root is None or root.record is None:
            raise HTTPException(404, f"no task {message_id!r} (never sent, or past record_ttl)")
        return {"record": root.record.model_dump(mode="json"), "tree": tree_document(root)}

    @router.post("/tasks/{message_id}/resume", status_code=202, response_model=Accepted)
    async def resume(message_id: str, body: ResumeRequest, identity: Admin) -> Accepted:
        """Answer the task's ``ask_user`` (409 if it is not waiting for the user)."""
        client = backend().client
        record = await client.get_task(message_id)
        if record is None:
            raise HTTPException(404, f"no task {message_id!r}")
        try:
            sent = await client.resume(message_id, record.session_id, body.content, body.reply_data)
        except TaskNotWaitingError as exc:
            raise HTTPException(409, str(exc)) from None
        return Accepted(
            message_id=sent.message_id, session_id=sent.session_id, trace_id=sent.trace_id
        )

    @router.get("/dead-letters")
    async def dead_letters(
        identity: Viewer,
        count: Annotated[int, Query(ge=1, le=500)] = 100,
        after: Annotated[str, Query(description="List from after this dead letter id.")] = "-",
    ) -> dict[str, Any]:
        """Dead letters, oldest first; ``next_after`` pages on (None at the end)."""
        letters = await backend().client.engine.dead_letters.list(count, after)
        return {
            "dead_letters": [dead_letter_summary(letter) for letter in letters],
            "next_after": letters[-1].id if len(letters) == count else None,
        }

    @router.get("/dead-letters/{dead_id}")
    async def dead_letter(dead_id: str, identity: Viewer) -> dict[str, Any]:
        """One dead letter whole: every field of the rejected entry, the envelope parsed."""
        letter = await backend().client.engine.dead_letters.get(dead_id)
        if letter is None:
            raise HTTPException(404, str(DeadLetterNotFoundError(dead_id)))
        return {**letter.as_dict(), "head": entry_head(letter)}

    @router.post("/dead-letters/{dead_id}/replay")
    async def replay(dead_id: str, identity: Admin) -> dict[str, str]:
        """Put the entry back on its stream; the new entry's id."""
        try:
            entry_id = await backend().client.engine.dead_letters.replay(dead_id)
        except DeadLetterNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        except DeadLetterReplayError as exc:
            raise HTTPException(409, str(exc)) from None
        return {"entry_id": entry_id}

    @router.delete("/dead-letters/{dead_id}")
    async def purge(dead_id: str, identity: Admin) -> dict[str, int]:
        """Delete the dead letter."""
        if not await backend().client.engine.dead_letters.purge(dead_id):
            raise HTTPException(404, str(DeadLetterNotFoundError(dead_id)))
        return {"purged": 1}

    return router
