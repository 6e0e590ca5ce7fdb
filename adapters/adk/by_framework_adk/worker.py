"""AdkWorker: a Google ADK agent served as a by-framework agent type."""

import asyncio
import contextlib
import inspect
import json
import logging
from typing import Any

from google.adk.agents import BaseAgent, RunConfig
from google.adk.agents.run_config import StreamingMode
from google.adk.apps import App
from google.adk.artifacts import BaseArtifactService
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.memory import BaseMemoryService
from google.adk.runners import Runner
from google.adk.sessions import BaseSessionService, Session
from google.genai import types
from pydantic import BaseModel

from by_framework import (
    AgentContext,
    AgentState,
    AgentTaskResult,
    AskAgentCommand,
    GatewayWorker,
    MessageHeader,
    ResumeCommand,
    TaskCancelledError,
    TaskCommand,
    run_worker,
)
from by_framework.backends import InvalidConfigurableError, validated_configurable
from by_framework_adk.events import EventStream
from by_framework_adk.questions import (
    METADATA_KEY,
    answer_message,
    live_events,
    open_questions,
    question_event,
    question_to_answer,
    task_of,
)
from by_framework_adk.services import (
    resolve_artifact_service,
    resolve_memory_service,
    resolve_session_service,
)
from by_framework_adk.state import answer
from by_framework_adk.tools import task_scope

log = logging.getLogger("by_framework_adk")

DEFAULT_USER_ID = "anonymous"
CANCEL_POLL_SECONDS = 0.05


class NothingToResumeError(RuntimeError):
    """A resume reached a task whose ADK session holds no unanswered long-running call."""


class AdkWorker(GatewayWorker):
    """Runs an ADK agent (an ``LlmAgent``, any custom ``BaseAgent``, or an ``App``) with ADK's
    ``Runner`` for each command of ``agent_type``.

    - The ADK session is the by-framework session (same id, created when missing); the user is
      the command's ``user_code`` (``default_user_id`` when it has none).
    - Sessions live in ``session_service``, else in the store ``session_url`` (or
      ``$BYAI_ADK_SESSION_URL``) names, else in this process's memory (with a warning: replicas,
      and resumes picked up by another worker, need a shared store). Artifacts likewise:
      ``artifact_service`` / ``artifact_url`` / ``$BYAI_ADK_ARTIFACT_URL`` / memory. Long-term
      memory (``load_memory``, ``search_memory``): ``memory_service`` / ``memory_url`` /
      ``$BYAI_ADK_MEMORY_URL`` / none.
    - ADK events go to the session stream (see ``by_framework_adk.events``); the final response
      is the task's result content.
    - A long-running tool call left unanswered ends the task WAITING_USER; the resume answers
      that call (see ``by_framework_adk.questions``).
    - A cancel aborts the run (ADK's abort signal) at once.
    - A session's messages run one at a time (``AgentContext.session_turn``), across replicas:
      ADK refuses a run's events once another run has changed the session. A message's
      ``multitask_strategy`` decides what it does meanwhile; ``rollback`` rewinds the stopped
      run's events out of the session, ``interrupt`` keeps them.
    - A message's ``configurable`` values go into the session state as the run starts (ADK's
      ``state_delta``), checked by ``configurable_schema`` (a pydantic model) when given.

    From the command line, name a subclass that takes no argument: ``adk_worker`` makes one
    (``Translator = adk_worker(agent, "translator")``), or write it::

        class Translator(AdkWorker):
            def __init__(self):
                super().__init__(build_agent(), agent_type="translator")

        python -m by_framework --worker-class my_module.Translator
    """

    def __init__(
        self,
        agent: BaseAgent | App,
        *,
        agent_type: str | None = None,
        app_name: str | None = None,
        session_service: BaseSessionService | None = None,
        session_url: str | None = None,
        artifact_service: BaseArtifactService | None = None,
        artifact_url: str | None = None,
        memory_service: BaseMemoryService | None = None,
        memory_url: str | None = None,
        run_config: RunConfig | None = None,
        default_user_id: str = DEFAULT_USER_ID,
        configurable_schema: type[BaseModel] | None = None,
    ) -> None:
        root = agent.root_agent if isinstance(agent, App) else agent
        self.agent_type = agent_type or getattr(root, "name", None) or ""
        if not self.agent_type.strip():
            raise ValueError("AdkWorker needs an agent_type (or an agent with a name)")
        self._owned = session_service is None
        sessions = resolve_session_service(session_service, session_url, self.agent_type)
        artifacts = resolve_artifact_service(artifact_service, artifact_url)
        memory = resolve_memory_service(memory_service, memory_url)
        self._owned_memory = memory if memory is not memory_service else None
        services: dict[str, Any] = {
            "session_service": sessions,
            "artifact_service": artifacts,
            "memory_service": memory,
        }
        if isinstance(agent, App):
            self.runner = Runner(app=agent, app_name=app_name, **services)
        else:
            self.runner = Runner(agent=agent, app_name=app_name or self.agent_type, **services)
        self.app_name = self.runner.app_name
        self.run_config = run_config or RunConfig(streaming_mode=StreamingMode.SSE)
        self.default_user_id = default_user_id
        self.configurable_schema = configurable_schema

    @property
    def session_service(self) -> BaseSessionService:
        return self.runner.session_service

    def get_agent_types(self) -> list[str]:
        return [self.agent_type]

    async def on_shutdown(self) -> None:
        await self.runner.close()
        close = getattr(self.session_service, "close", None)
        if self._owned and close is not None and asyncio.iscoroutinefunction(close):
            await close()
        close_memory = getattr(self._owned_memory, "close", None)
        if close_memory is not None and asyncio.iscoroutinefunction(close_memory):
            await close_memory()

    async def process_command(self, command: TaskCommand, context: AgentContext) -> AgentTaskResult:
        state: dict[str, Any] = {}  # a resume: the values are in the session state already
        if not isinstance(command, ResumeCommand):
            try:
                state = validated_configurable(command.configurable, self.configurable_schema)
            except InvalidConfigurableError as exc:
                return AgentTaskResult(status=AgentState.FAILED, error=str(exc))
        strategy = command.multitask_strategy if isinstance(command, AskAgentCommand) else "enqueue"
        try:
            async with context.session_turn(strategy) as turn:
                undo = turn.superseded if strategy == "rollback" else None
                return await self._in_turn(command, context, state, undo)
        except TaskCancelledError:  # while it waited for the turn
            return AgentTaskResult(status=AgentState.CANCELLED, error=context.cancel_reason)

    async def _in_turn(
        self, command: Any, context: AgentContext, state: dict[str, Any], undo: str | None
    ) -> AgentTaskResult:
        """The task's run, holding its session's turn (no other run of this agent type appends
        to the ADK session meanwhile); ``undo``: a stopped run whose events go first."""
        user_id = context.user_code or self.default_user_id
        session = await self._session(user_id, context.session_id)
        if undo is not None:
            await self._rewind(session, user_id, undo, "rolled back")
            session = await self._session(user_id, context.session_id)
        if isinstance(command, ResumeCommand):
            question = question_to_answer(session, context.message_id)
            if question is None:
                raise NothingToResumeError(
                    f"task {context.message_id} asked nothing in ADK session "
                    f"{context.session_id!r} (app {self.app_name!r}, user {user_id!r}) that this "
                    "worker can see: do all replicas share one session store?"
                )
            message = answer_message(question, command)
            others_open = len(open_questions(session, context.message_id)) > 1
        else:
            # A task run again after its worker died: what its cut-off attempt added goes, so
            # that the agent starts its turn over from a clean history (its sub-calls replay
            # from the journal).
            await self._rewind(session, user_id, context.message_id, "runs again")
            message = user_message(command.content)
            others_open = False
        stream = EventStream(
            context,
            self.runner.artifact_service,
            app_name=self.app_name,
            user_id=user_id,
            session_id=context.session_id,
        )
        if isinstance(command, ResumeCommand):
            await stream.answered(message)
        with task_scope(context):
            await self._run(context, user_id, message, stream, state)
        if context.cancelled:
            return AgentTaskResult(status=AgentState.CANCELLED, error=context.cancel_reason)
        if stream.long_running_calls or others_open:
            session = await self._session(user_id, context.session_id)
            waiting = open_questions(session, context.message_id)
            if waiting:
                return await context.ask_user(question_event(waiting[0], stream.last_text))
        if stream.error and stream.final_text is None:
            raise RuntimeError(f"the ADK agent ended with an error: {stream.error}")
        return AgentTaskResult(status=AgentState.COMPLETED, content=stream.final_text)

    async def answer_query(self, name: str, args: dict[str, Any], header: MessageHeader) -> Any:
        """A client's ``get_state``, ``get_history`` (events, newest first) or ``update_state``
        (a state delta, appended as an event of its own) of the session's ADK session; an
        update waits for the session's turn (the runner holds it)."""
        user_id = header.user_code or self.default_user_id
        session = await self._session(user_id, header.session_id)
        return await answer(self.session_service, session, name, args)

    async def _run(
        self,
        context: AgentContext,
        user_id: str,
        message: types.Content,
        stream: EventStream,
        state: dict[str, Any],
    ) -> None:
        """One ``Runner.run_async`` (``state`` into the session state with the message), its
        events on the stream; a cancel aborts it."""
        abort = asyncio.Event()
        watcher = asyncio.create_task(_abort_on_cancel(context, abort))
        run_config = self.run_config.model_copy(
            update={
                "custom_metadata": {
                    **(self.run_config.custom_metadata or {}),
                    METADATA_KEY: {"message_id": context.message_id},
                }
            }
        )
        try:
            events = self.runner.run_async(
                user_id=user_id,
                session_id=context.session_id,
                new_message=message,
                state_delta=state or None,
                run_config=run_config,
                abort_signal=abort,
            )
            async with contextlib.aclosing(events):
                async for event in events:
                    await stream.put(event)
                    if context.cancelled:
                        break
        except TaskCancelledError:
            if not context.cancelled:
                raise
        finally:
            watcher.cancel()

    async def _session(self, user_id: str, session_id: str) -> Session:
        """The ADK session of this by-framework session, created when missing."""
        service, app = self.session_service, self.app_name
        session = await service.get_session(app_name=app, user_id=user_id, session_id=session_id)
        if session is None:
            try:
                session = await service.create_session(
                    app_name=app, user_id=user_id, session_id=session_id
                )
            except AlreadyExistsError:  # another replica created it just now
                session = await service.get_session(
                    app_name=app, user_id=user_id, session_id=session_id
                )
        assert session is not None
        return session

    async def _rewind(self, session: Session, user_id: str, message_id: str, why: str) -> None:
        """Rewind the ADK session to before the first invocation of task ``message_id``, if it
        added anything."""
        earlier = next((e for e in live_events(session.events) if task_of(e) == message_id), None)
        if earlier is None:
            return
        log.info(
            "task %s %s: rewinding ADK session %s to before invocation %s",
            message_id,
            why,
            session.id,
            earlier.invocation_id,
        )
        await self.runner.rewind_async(
            user_id=user_id,
            session_id=session.id,
            rewind_before_invocation_id=earlier.invocation_id,
        )


def user_message(content: Any) -> types.Content:
    """A command's content as the user's turn: text as is, anything else as JSON."""
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return types.Content(role="user", parts=[types.Part(text=text)])


async def _abort_on_cancel(context: AgentContext, abort: asyncio.Event) -> None:
    while not context.cancelled:  # noqa: ASYNC110 - the context offers no awaitable cancel
        await asyncio.sleep(CANCEL_POLL_SECONDS)
    abort.set()


def adk_worker(
    agent: BaseAgent | App, agent_type: str | None = None, **options: Any
) -> type[AdkWorker]:
    """An AdkWorker subclass that takes no arguments, for ``python -m by_framework --worker-class
    module.Name`` and ``run_worker(Name)``: ``Name = adk_worker(agent, "translator")``."""

    def __init__(self: AdkWorker) -> None:
        AdkWorker.__init__(self, agent, agent_type=agent_type, **options)

    named: str = agent_type or getattr(agent, "name", None) or "Adk"
    name = "".join(part.title() for part in named.replace("-", "_").split("_")) + "Worker"
    return type(name, (AdkWorker,), {"__init__": __init__})


_WORKER_OPTIONS = frozenset(inspect.signature(AdkWorker.__init__).parameters) - {"self", "agent"}


def serve_agent(agent: BaseAgent | App, agent_type: str | None = None, **options: Any) -> None:
    """Serve an ADK agent until SIGTERM / SIGINT: the AdkWorker options (``session_url``,
    ``run_config``, ...) go to the worker, the rest to ``run_worker`` (``worker_id``,
    ``redis_url``, ``max_concurrency``, ...)."""
    worker_options = {k: v for k, v in options.items() if k in _WORKER_OPTIONS}
    run_options = {k: v for k, v in options.items() if k not in _WORKER_OPTIONS}
    run_worker(AdkWorker(agent, agent_type=agent_type, **worker_options), **run_options)
