"""The HTTP gateway: an ASGI app on one GatewayClient, its routes under /v1."""

import asyncio
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError

from by_framework.client.gateway import GatewayClient
from by_framework.errors import (
    InvalidContentError,
    InvalidMessageError,
    NoOnlineWorkerError,
    TaskNotWaitingError,
    TaskTimeoutError,
)
from by_framework.gateway.access import Access
from by_framework.gateway.auth import Authenticator, Identity, Unauthorized, bearer_token
from by_framework.gateway.limits import BodyLimit
from by_framework.gateway.metrics import GatewayMetrics, RequestMetrics
from by_framework.gateway.models import (
    Accepted,
    Agents,
    AgentType,
    Cancelled,
    CancelRequest,
    Pending,
    ResumeRequest,
    SendRequest,
    SessionTasks,
    task_tree,
)
from by_framework.gateway.settings import GatewaySettings
from by_framework.gateway.sse import sse_stream
from by_framework.gateway.tokens import TokenReserve
from by_framework.ports import CancelReport
from by_framework.protocol.records import TaskRecord
from by_framework.protocol.results import AgentTaskResult
from by_framework.settings import Settings

if TYPE_CHECKING:
    from by_framework.dashboard import Dashboard

STREAM_ID = re.compile(r"^\d+(-\d+)?$")
SEND_REQUEST_BODY = {
    "required": True,
    "content": {"application/json": {"schema": SendRequest.model_json_schema()}},
}
MAX_RESULT_WAIT = 60.0


@dataclass(slots=True)
class _State:
    client: GatewayClient
    access: Access
    tokens: TokenReserve


async def _state(request: Request) -> _State:
    # async: FastAPI runs a plain def dependency in a thread pool, a thread hand-off per request
    return request.app.state.gateway


State = Annotated[_State, Depends(_state)]


def create_app(settings: Settings, gateway: GatewaySettings | None = None) -> FastAPI:
    """The gateway as an ASGI app; its lifespan opens one GatewayClient from ``settings`` (one
    Redis connection follows every session its SSE clients follow) and closes it."""
    gateway = gateway or GatewaySettings.resolve()
    authenticator = Authenticator(gateway)
    dashboard = _dashboard(gateway)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = GatewayClient.connect(settings)
        tokens = TokenReserve(client.engine.rate_limiter, gateway.rate, gateway.burst)
        try:
            await client.engine.start()
            access = Access(client.engine.owners, gateway.has_auth)
            app.state.gateway = _State(client, access, tokens)
            if dashboard is not None:
                dashboard.open(client)
            yield
        finally:
            if dashboard is not None:
                await dashboard.aclose()
            tokens.close()
            await client.aclose()

    def identify(authorization: str | None, access_token: str | None) -> Identity:
        try:
            return authenticator.identify(bearer_token(authorization, access_token))
        except Unauthorized as exc:
            raise HTTPException(401, str(exc), {"WWW-Authenticate": "Bearer"}) from None

    async def identified(
        authorization: Annotated[str | None, Header()] = None,
        access_token: Annotated[
            str | None, Query(description="The bearer token, for EventSource (no headers).")
        ] = None,
    ) -> Identity:
        return identify(authorization, access_token)

    async def within_rate(state: _State, identity: Identity) -> None:
        if not gateway.has_auth:
            return
        wait = await state.tokens.take(identity.subject)
        if wait > 0:
            raise HTTPException(
                429,
                f"rate limit of {gateway.rate:g} requests/s (burst {gateway.burst}) reached: "
                f"retry in {wait:.2f}s",
                {"Retry-After": str(math.ceil(wait))},
            )

    async def caller(state: State, identity: Annotated[Identity, Depends(identified)]) -> Identity:
        await within_rate(state, identity)
        return identity

    Caller = Annotated[Identity, Depends(caller)]

    app = FastAPI(
        title="by-framework gateway",
        version="1",
        description="Send tasks to agents, follow their output over SSE, answer and cancel them.",
        lifespan=lifespan,
    )
    if gateway.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=gateway.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            expose_headers=["Retry-After"],
        )
    app.add_middleware(BodyLimit, max_body_bytes=gateway.max_body_bytes)
    metrics = GatewayMetrics()
    app.add_middleware(RequestMetrics, metrics=metrics)  # added last: outermost, sees every answer
    _error_statuses(app)

    @app.get("/metrics", include_in_schema=False)
    async def exposition() -> Response:
        """The gateway's metrics for Prometheus (docs/metrics.md), without auth: keep the
        path off the public side of the ingress."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def owned_task(state: _State, identity: Identity, message_id: str) -> TaskRecord:
        record = await state.client.get_task(message_id)
        if record is None:
            raise HTTPException(404, f"no task {message_id!r}")
        try:
            await state.access.check_read(identity, record.session_id)
        except HTTPException:
            raise HTTPException(404, f"no task {message_id!r}") from None
        return record

    @app.post(
        "/v1/sessions/{session_id}/messages",
        status_code=202,
        response_model=Accepted,
        openapi_extra={"requestBody": SEND_REQUEST_BODY},
    )
    async def send_message(session_id: str, request: Request) -> Response:
        """Queue a task for an agent type on the session (created by the first send)."""
        # The hot route: its body and caller are read here rather than through FastAPI's
        # dependency and body machinery, which cost more CPU than the send itself
        # (docs/performance.md, "HTTP gateway").
        identity = identify(
            request.headers.get("authorization"), request.query_params.get("access_token")
        )
        try:
            body = SendRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(_body_errors(exc)) from None
        state: _State = request.app.state.gateway
        # Mostly answered here: a token held ahead (tokens.py) and the session's owner known
        # (access.py). Otherwise the rate check and the claim travel to Redis together (one
        # round trip, the batcher's); a claim made by a caller then refused for its rate only
        # names it owner a moment early.
        await asyncio.gather(within_rate(state, identity), state.access.claim(identity, session_id))
        sent = await state.client.send_message(
            body.agent_type,
            session_id,
            body.content,
            user_code=identity.subject,
            metadata=body.metadata,
            wait_for_worker=0,
        )
        accepted = Accepted(
            message_id=sent.message_id, session_id=sent.session_id, trace_id=sent.trace_id
        )
        return Response(accepted.model_dump_json(), 202, media_type="application/json")

    @app.get(
        "/v1/sessions/{session_id}/events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def events(
        session_id: str,
        state: State,
        identity: Caller,
        after: Annotated[str | None, Query(description="Resume after this stream id.")] = None,
        until: Annotated[str | None, Query(description="End after this task's end.")] = None,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        """The session's events as Server-Sent Events (see docs/gateway.md)."""
        await state.access.check_read(identity, session_id)
        position = last_event_id or after or "0-0"
        if not STREAM_ID.match(position):
            raise HTTPException(
                422, f"Last-Event-ID / after: {position!r} is not a stream id like 1700000000000-0"
            )
        frames = sse_stream(
            state.client, session_id, position, until, gateway.heartbeat_seconds, metrics
        )
        return StreamingResponse(
            frames,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/v1/tasks/{message_id}", response_model=TaskRecord)
    async def get_task(message_id: str, state: State, identity: Caller) -> TaskRecord:
        """The task's execution record: status, timeline, worker, result."""
        return await owned_task(state, identity, message_id)

    @app.get("/v1/sessions/{session_id}/tasks", response_model=SessionTasks)
    async def session_tasks(session_id: str, state: State, identity: Caller) -> SessionTasks:
        """Every task of the session, and the task tree."""
        await state.access.check_read(identity, session_id)
        records = await state.client.list_session_tasks(session_id)
        return SessionTasks(session_id=session_id, tasks=records, tree=task_tree(records))

    @app.get(
        "/v1/tasks/{message_id}/result",
        response_model=AgentTaskResult,
        responses={202: {"model": Pending, "description": "Not ended within the wait."}},
    )
    async def task_result(
        message_id: str,
        state: State,
        identity: Caller,
        wait: Annotated[float, Query(ge=0, le=MAX_RESULT_WAIT)] = 30.0,
    ) -> AgentTaskResult | JSONResponse:
        """Long poll: the result once the task's run ends, or 202 after ``wait`` seconds."""
        record = await owned_task(state, identity, message_id)
        try:
            return await state.client.wait_for_result(message_id, timeout=wait)
        except TaskTimeoutError:
            record = await state.client.get_task(message_id) or record
            pending = Pending(message_id=message_id, status=record.status)
            return JSONResponse(pending.model_dump(mode="json"), 202)

    @app.post("/v1/tasks/{message_id}/resume", status_code=202, response_model=Accepted)
    async def resume(
        message_id: str, body: ResumeRequest, state: State, identity: Caller
    ) -> Accepted:
        """Answer a task waiting for the user (409 if it is not)."""
        record = await owned_task(state, identity, message_id)
        await state.access.check_write(identity, record.session_id)
        sent = await state.client.resume(
            message_id, record.session_id, body.content, body.reply_data
        )
        return Accepted(
            message_id=sent.message_id, session_id=sent.session_id, trace_id=sent.trace_id
        )

    @app.post("/v1/tasks/{message_id}/cancel", response_model=Cancelled)
    async def cancel_task(
        message_id: str, state: State, identity: Caller, body: CancelRequest | None = None
    ) -> Cancelled:
        """Cancel a task and its sub-calls."""
        body = body or CancelRequest()
        record = await owned_task(state, identity, message_id)
        await state.access.check_write(identity, record.session_id)
        report = await state.client.cancel_task(
            message_id, record.session_id, body.reason, body.mode
        )
        return _cancelled(report)

    @app.post("/v1/sessions/{session_id}/cancel", response_model=Cancelled)
    async def cancel_session(
        session_id: str, state: State, identity: Caller, body: CancelRequest | None = None
    ) -> Cancelled:
        """Cancel every unfinished task of the session."""
        body = body or CancelRequest()
        await state.access.check_write(identity, session_id)
        report = await state.client.cancel_session(session_id, body.reason, body.mode)
        return _cancelled(report)

    @app.get("/v1/agents", response_model=Agents)
    async def agents(state: State, identity: Caller) -> Agents:
        """The agent types with online workers."""
        counts: dict[str, int] = {}
        for worker_id in await state.client.registry.all_online():
            for agent_type in await state.client.registry.agent_types_of(worker_id):
                counts[agent_type] = counts.get(agent_type, 0) + 1
        return Agents(
            agents=[AgentType(agent_type=t, workers=n) for t, n in sorted(counts.items())]
        )

    if dashboard is not None:
        app.mount("/dashboard", dashboard.app)
    return app


def _dashboard(gateway: GatewaySettings) -> "Dashboard | None":
    """The dashboard to mount at /dashboard, on the gateway's client, if asked for."""
    if not gateway.dashboard:
        return None
    from by_framework.dashboard import Dashboard  # here: the dashboard imports the gateway's

    return Dashboard(gateway)


def _cancelled(report: CancelReport) -> Cancelled:
    return Cancelled(cancelled=report.cancelled, stopping=report.stopping)


def _body_errors(exc: ValidationError) -> list[dict[str, object]]:
    """A body's validation errors located as FastAPI locates them (``["body", field]``)."""
    return [
        {"type": error["type"], "loc": ["body", *error["loc"]], "msg": error["msg"]}
        for error in exc.errors(include_url=False)
    ]


def _error_statuses(app: FastAPI) -> None:
    """The engine's errors as HTTP statuses, with its message."""
    for error, status in (
        (InvalidMessageError, 422),
        (InvalidContentError, 422),
        (NoOnlineWorkerError, 503),
        (TaskNotWaitingError, 409),
    ):

        async def handler(request: Request, exc: Exception, status: int = status) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status)

        app.add_exception_handler(error, handler)
