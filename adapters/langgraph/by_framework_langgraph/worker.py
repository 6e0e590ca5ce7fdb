"""LangGraphWorker: an existing LangGraph graph served as a by-framework worker."""

import asyncio
import contextlib
import inspect
import json
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore
from langgraph.types import Command, Durability
from pydantic import BaseModel

from by_framework import (
    AgentContext,
    AgentState,
    AgentTaskResult,
    AskAgentCommand,
    ConfigurationError,
    GatewayWorker,
    MessageHeader,
    QueryError,
    ResumeCommand,
    TaskCancelledError,
    TaskCommand,
    run_worker,
)
from by_framework.backends import InvalidConfigurableError, redact
from by_framework_langgraph.configurable import CONFIGURABLE_METADATA, run_values, stored_values
from by_framework_langgraph.interrupts import ASK_AGAIN, ask_user_event, resume_value
from by_framework_langgraph.remote import RemoteCalls, Turns
from by_framework_langgraph.scope import RunScope, enter, leave
from by_framework_langgraph.state import answer
from by_framework_langgraph.streaming import (
    STREAM_MODE_METADATA,
    StreamMapper,
    graph_modes,
    jsonable,
    message_text,
    stored_stream_mode,
)
from by_framework_langgraph.threads import (
    LocalThreadLock,
    PostgresThreadLock,
    ThreadIdFunction,
    ThreadLock,
    conversation_thread,
    default_thread_id,
)

log = logging.getLogger("by_framework_langgraph")

CHECKPOINTER_URL_ENV = "BYAI_LANGGRAPH_CHECKPOINTER_URL"
STORE_URL_ENV = "BYAI_LANGGRAPH_STORE_URL"
TASK_METADATA = "by_framework_task"
RUN_METADATA = "by_framework_run"
"""Checkpoint metadata keys: the task, and its run, whose graph run wrote the checkpoint
(LangGraph keeps only scalar metadata values)."""
CANCEL_POLL_SECONDS = 0.1
SETUP_LOCK = "by-framework:checkpointer-setup"
CONNECT_TIMEOUT_S = 5
"""Seconds the first connection to the checkpointer's PostgreSQL may take (libpq's
connect_timeout: whole seconds)."""

GraphSource = Any
"""A compiled graph, a ``StateGraph`` (compiled here), or a callable (sync or async) that takes
the checkpointer and returns either."""


class LangGraphWorker(GatewayWorker):
    """Serves ``graph`` as agent type ``agent_type``.

    ``checkpointer``: a saver shared by every replica; or ``checkpointer_url``
    (``postgresql://...``, env ``BYAI_LANGGRAPH_CHECKPOINTER_URL``) for an ``AsyncPostgresSaver``
    this worker opens, sets up and closes (needs the ``postgres`` extra); else the compiled
    graph's own, else an in-memory one (a single worker only: a warning says so).

    ``thread_id(context)`` names the task's thread (default: ``default_thread_id``);
    ``thread_lock`` keeps one task at a time on a thread (default: a PostgreSQL advisory lock
    with ``checkpointer_url``, else a lock in this process); ``thread_wait_timeout`` bounds the
    wait for a busy thread. ``input_mapper(command, context)`` and
    ``output_mapper(values, context)`` replace ``graph_input`` and ``result_content``.
    ``config`` is merged into every run's config (e.g. ``{"recursion_limit": 50}``); a
    message's ``configurable`` values go over its ``"configurable"`` defaults, checked by
    ``configurable_schema`` (a pydantic model) when given, and are the run's context too when
    the graph declares a ``context_schema``.

    ``store``: a long-term store (``get_store()`` in a node) shared by every replica; or
    ``store_url`` (env ``BYAI_LANGGRAPH_STORE_URL``) for an ``AsyncPostgresStore`` this worker
    opens, sets up and closes. Either replaces the compiled graph's own store; without both the
    graph keeps its own (if any). A builder callable gets only the checkpointer: the store is
    attached to the graph it returns.
    """

    def __init__(
        self,
        graph: GraphSource,
        agent_type: str = "agent",
        *,
        checkpointer: BaseCheckpointSaver | None = None,
        checkpointer_url: str | None = None,
        store: BaseStore | None = None,
        store_url: str | None = None,
        thread_id: ThreadIdFunction | None = None,
        thread_lock: ThreadLock | None = None,
        thread_wait_timeout: float | None = 300.0,
        input_mapper: Callable[[Any, AgentContext], Any] | None = None,
        output_mapper: Callable[[dict[str, Any], AgentContext], Any] | None = None,
        config: dict[str, Any] | None = None,
        configurable_schema: type[BaseModel] | None = None,
        durability: Durability = "sync",
        pool_size: int = 10,
    ) -> None:
        if not callable(graph) and not hasattr(graph, "compile"):
            _check_compiled(graph)  # now, not at startup: e.g. a chain passed by mistake
        self._source = graph
        self._agent_type = agent_type
        self._checkpointer = checkpointer
        self._checkpointer_url = checkpointer_url
        if checkpointer is None and checkpointer_url is None:
            self._checkpointer_url = os.environ.get(CHECKPOINTER_URL_ENV) or None
        self._store = store
        self._store_url = store_url
        if store is None and store_url is None:
            self._store_url = os.environ.get(STORE_URL_ENV) or None
        self._thread_id = thread_id or default_thread_id
        self._lock = thread_lock
        self._thread_wait_timeout = thread_wait_timeout
        self._input_mapper = input_mapper
        self._output_mapper = output_mapper
        self._config = dict(config or {})
        self._configurable_schema = configurable_schema
        self._durability = durability
        self._pool_size = pool_size
        self._graph: Any = None
        self._closing = contextlib.AsyncExitStack()
        self._pools: dict[str, Any] = {}  # by URL: the checkpointer and the store share one

    # GatewayWorker

    def get_agent_types(self) -> list[str]:
        return [self._agent_type]

    async def on_startup(self) -> None:
        saver = self._checkpointer
        if saver is None and self._checkpointer_url:
            saver = await self._open_postgres(self._checkpointer_url)
        store = self._store
        if store is None and self._store_url:
            store = await self._open_store(self._store_url)
        self._graph = await self._build(saver, store)
        if self._lock is None:
            if self._checkpointer_url:
                self._lock = PostgresThreadLock(self._checkpointer_url)
            else:
                self._lock = LocalThreadLock()
                if not isinstance(self.checkpointer, InMemorySaver):
                    log.warning(
                        "agent %s: tasks of one thread are kept apart in this worker only; "
                        "with several workers pass thread_lock= (e.g. PostgresThreadLock(url))",
                        self._agent_type,
                    )
        await self._lock.open()
        self._closing.push_async_callback(self._lock.close)

    async def on_shutdown(self) -> None:
        await self._closing.aclose()

    async def process_command(self, command: TaskCommand, context: AgentContext) -> AgentTaskResult:
        values: dict[str, Any] | None = None  # a resume: the original task's, from its thread
        if not isinstance(command, ResumeCommand):
            try:
                values = run_values(command.configurable, self._configurable_schema)
            except InvalidConfigurableError as exc:
                return AgentTaskResult(status=AgentState.FAILED, error=str(exc))
        graph = self.graph
        thread_id = self.thread_id_for(context)
        strategy = command.multitask_strategy if isinstance(command, AskAgentCommand) else "enqueue"
        assert self._lock is not None
        async with contextlib.AsyncExitStack() as stack:
            try:
                turn = await stack.enter_async_context(context.session_turn(strategy))
                await stack.enter_async_context(
                    self._lock.hold(thread_id, lambda: context.cancelled, self._thread_wait_timeout)
                )
            except TaskCancelledError:
                return AgentTaskResult(status=AgentState.CANCELLED, error=context.cancel_reason)
            except TimeoutError:
                return AgentTaskResult(
                    status=AgentState.FAILED,
                    error=f"thread {thread_id} stayed busy with another task for "
                    f"{self._thread_wait_timeout:g}s (thread_wait_timeout); send again later",
                )
            keep = strategy == "interrupt" and turn.superseded is not None
            return await self._run_task(
                graph, command, context, thread_id, values, keep_unfinished=keep
            )

    async def answer_query(self, name: str, args: dict[str, Any], header: MessageHeader) -> Any:
        """A client's ``get_state``, ``get_history`` or ``update_state`` of the session's
        conversation thread (or the ``thread_id`` it names: needed when ``thread_id=`` names
        threads another way); an update waits for the session's turn (the runner holds it)."""
        thread_id = args.get("thread_id")
        if thread_id is None:
            if self._thread_id is not default_thread_id:
                raise QueryError(
                    "this worker names its threads with its own thread_id function: pass the "
                    "thread_id to ask about"
                )
            thread_id = conversation_thread(header.session_id, header.target_agent_type)
        return await answer(self.graph, str(thread_id), name, args)

    # What users override

    def thread_id_for(self, context: AgentContext) -> str:
        """The graph thread of this task (``thread_id=`` if given, else
        ``default_thread_id``)."""
        return self._thread_id(context)

    def graph_input(self, command: Any, context: AgentContext) -> Any:
        """The graph's input for a new task: a string becomes a user message; a dict with
        "messages" (or any other dict) is the input state; a {"role", "content"} dict or a list
        of messages becomes the messages."""
        if self._input_mapper is not None:
            return self._input_mapper(command, context)
        content = command.content
        if isinstance(content, str):
            return {"messages": [HumanMessage(content)]}
        if isinstance(content, dict) and "role" in content and "content" in content:
            return {"messages": [{"role": content["role"], "content": content["content"]}]}
        if isinstance(content, list):
            return {"messages": content}
        if content is None:
            raise ValueError("the task has no content: send a message or the graph's input")
        return content

    def result_content(self, values: dict[str, Any], context: AgentContext) -> Any:
        """The task's result from the graph's final state: the text of the last AI message;
        without messages, the state as JSON-able data."""
        if self._output_mapper is not None:
            return self._output_mapper(values, context)
        messages = values.get("messages") if isinstance(values, dict) else None
        for message in reversed(messages or []):
            if isinstance(message, AIMessage):
                return message_text(message)
        return jsonable(values)

    # The graph

    @property
    def graph(self) -> Any:
        """The compiled graph (built at startup)."""
        if self._graph is None:
            raise RuntimeError("the graph is built in on_startup: run the worker first")
        return self._graph

    @property
    def checkpointer(self) -> BaseCheckpointSaver:
        return self.graph.checkpointer

    async def _open_postgres(self, url: str) -> BaseCheckpointSaver:
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        except ImportError as exc:
            raise RuntimeError(_POSTGRES_EXTRA.format(option="checkpointer_url")) from exc
        pool = await self._pool(url, "checkpointer_url", CHECKPOINTER_URL_ENV)
        saver = AsyncPostgresSaver(pool)
        await _set_up_once(url, pool, saver.setup)
        return saver

    async def _open_store(self, url: str) -> BaseStore:
        try:
            from langgraph.store.postgres.aio import AsyncPostgresStore
        except ImportError as exc:
            raise RuntimeError(_POSTGRES_EXTRA.format(option="store_url")) from exc
        pool = await self._pool(url, "store_url", STORE_URL_ENV)
        store = AsyncPostgresStore(pool)
        await _set_up_once(url, pool, store.setup)
        return store

    async def _pool(self, url: str, option: str, env: str) -> Any:
        """An open connection pool on ``url`` (one per URL), closed at shutdown; first a check
        that fails fast naming ``option``."""
        if url in self._pools:
            return self._pools[url]
        try:
            from psycopg import AsyncConnection
            from psycopg.rows import DictRow, dict_row
            from psycopg_pool import AsyncConnectionPool
        except ImportError as exc:
            raise RuntimeError(_POSTGRES_EXTRA.format(option=option)) from exc
        await _check_postgres(url, option, env)
        pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=self._pool_size,
            open=False,
            connection_class=AsyncConnection[DictRow],
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        )
        await pool.open(wait=True)
        self._closing.push_async_callback(pool.close)
        self._pools[url] = pool
        return pool

    async def _build(self, saver: BaseCheckpointSaver | None, store: BaseStore | None) -> Any:
        source = self._source
        if not (hasattr(source, "astream") or hasattr(source, "compile")) and callable(source):
            source = source(saver if saver is not None else InMemorySaver())
            if inspect.isawaitable(source):
                source = await source
        if hasattr(source, "compile") and not hasattr(source, "astream"):
            source = source.compile(checkpointer=saver if saver is not None else InMemorySaver())
        _check_compiled(source)
        if saver is not None and source.checkpointer is not saver:
            source = source.copy(update={"checkpointer": saver})
        elif not isinstance(source.checkpointer, BaseCheckpointSaver):
            source = source.copy(update={"checkpointer": InMemorySaver()})
        if store is not None and source.store is not store:
            source = source.copy(update={"store": store})
        if isinstance(source.checkpointer, InMemorySaver):
            log.warning(
                "agent %s keeps its graph state in memory: run a single worker of it, or pass "
                "checkpointer_url='postgresql://...' (or a checkpointer) shared by all replicas",
                self._agent_type,
            )
        return source

    def _run_config(self, thread_id: str) -> dict[str, Any]:
        config = dict(self._config)
        config["configurable"] = {**config.get("configurable", {}), "thread_id": thread_id}
        return config

    async def _run_task(
        self,
        graph: Any,
        command: Any,
        context: AgentContext,
        thread_id: str,
        values: dict[str, Any] | None,
        *,
        keep_unfinished: bool = False,
    ) -> AgentTaskResult:
        """Run or go on with the task's graph run on its thread. An unfinished run of another
        task on the thread (failed, cancelled, died) is rolled back first, unless this task
        interrupted it (``keep_unfinished``: its progress stays, the new input goes on top)."""
        base = self._run_config(thread_id)
        head = await graph.aget_state(base)
        metadata = head.metadata or {}
        owner = metadata.get(TASK_METADATA)
        mine = owner == context.message_id
        if values is None:
            values = stored_values(metadata)
        interrupts = list(head.interrupts)
        start_from: str | None = None
        # A resume carries no stream_mode: the task's runs all stream as its message chose.
        stream_mode = (
            stored_stream_mode(metadata) if mine else getattr(command, "stream_mode", None)
        )
        if mine:
            run = int(metadata.get(RUN_METADATA, 0))
            if interrupts:
                if not isinstance(command, ResumeCommand):  # asked, but not recorded: ask again
                    return await context.ask_user(ask_user_event(interrupts, thread_id))
                value = resume_value(command, interrupts)
                if value is ASK_AGAIN:
                    return await context.ask_user(ask_user_event(interrupts, thread_id))
                run += 1
                graph_input: Any = Command(resume=value)
            elif head.next:  # a re-run after a crash: go on from the last checkpoint
                graph_input = None
            else:  # the graph ended, the task's outcome was not recorded
                await self._forget_calls(context, graph)
                return self._completed(head.values, context, thread_id)
        else:
            if isinstance(command, ResumeCommand):
                return AgentTaskResult(
                    status=AgentState.FAILED,
                    error=f"nothing to resume on thread {thread_id}: its question is no longer "
                    "pending (a newer task took the thread over)",
                )
            run = 0
            graph_input = self.graph_input(command, context)
            if head.next and keep_unfinished:
                log.info("thread %s: going on from task %s's interrupted run", thread_id, owner)
            elif head.next:  # another task's run never ended (failed, cancelled, or died)
                start_from = await self._rollback_point(graph, base)
                log.info("thread %s: rolling back an unfinished run of task %s", thread_id, owner)
        return await self._run_graph(
            graph,
            graph_input,
            base,
            values,
            context,
            thread_id,
            run,
            start_from,
            continuing=mine,
            stream_mode=stream_mode,
        )

    async def _run_graph(
        self,
        graph: Any,
        graph_input: Any,
        base: dict[str, Any],
        values: dict[str, Any],
        context: AgentContext,
        thread_id: str,
        run: int,
        start_from: str | None,
        *,
        continuing: bool,
        stream_mode: list[str] | None,
    ) -> AgentTaskResult:
        # the worker's defaults < the message's values (never a key LangGraph reserves)
        config = {**base, "configurable": {**base["configurable"], **values}}
        config["metadata"] = {
            **base.get("metadata", {}),
            TASK_METADATA: context.message_id,
            RUN_METADATA: run,
            CONFIGURABLE_METADATA: json.dumps(values),
            STREAM_MODE_METADATA: json.dumps(stream_mode),
        }
        if start_from is not None:
            config["configurable"]["checkpoint_id"] = start_from
        calls = RemoteCalls(context, graph.checkpointer, run)
        turns = Turns(calls)
        token = enter(RunScope(context, calls, turns))
        mapper = StreamMapper(context, stream_mode)

        async def drive() -> None:
            async for part in graph.astream(
                graph_input,
                config,
                context=values if graph.context_schema is not None else None,
                stream_mode=graph_modes(stream_mode),
                version="v2",
                subgraphs=True,
                durability=self._durability,
            ):
                await mapper.handle(part)

        try:
            cancelled = await _watch(drive(), context)
        except BaseException:
            await self._forget_calls(context, graph, calls)
            raise
        finally:
            await turns.close()
            await calls.close()
            leave(token)
        if cancelled:
            await self._forget_calls(context, graph, calls)
            return AgentTaskResult(status=AgentState.CANCELLED, error=context.cancel_reason)
        state = await graph.aget_state(base)
        if state.interrupts:  # the run's remote calls stay on record for the resumed run
            return await context.ask_user(ask_user_event(state.interrupts, thread_id))
        if calls.touched or continuing:
            await self._forget_calls(context, graph, calls)
        return self._completed(state.values, context, thread_id)

    def _completed(
        self, values: dict[str, Any], context: AgentContext, thread_id: str
    ) -> AgentTaskResult:
        return AgentTaskResult(
            status=AgentState.COMPLETED,
            content=self.result_content(values, context),
            data={"thread_id": thread_id},
        )

    async def _forget_calls(
        self, context: AgentContext, graph: Any, calls: RemoteCalls | None = None
    ) -> None:
        with contextlib.suppress(Exception):  # best effort: a leftover ledger is only space
            await (calls or RemoteCalls(context, graph.checkpointer, 0)).delete()

    @staticmethod
    async def _rollback_point(graph: Any, base: dict[str, Any]) -> str | None:
        """The newest checkpoint where a run had ended; else the thread's first (empty) one."""
        oldest = None
        async for snapshot in graph.aget_state_history(base):
            if not snapshot.next:
                return snapshot.config["configurable"]["checkpoint_id"]
            oldest = snapshot
        return oldest.config["configurable"]["checkpoint_id"] if oldest is not None else None


async def _watch(run: Coroutine[Any, Any, None], context: AgentContext) -> bool:
    """Run the graph until it ends (False) or a cancel reaches the task (True: the run is
    stopped). A forced cancel of the task cancels the run too."""
    task = asyncio.ensure_future(run)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=CANCEL_POLL_SECONDS)
            if task in done:
                if task.exception() is not None and context.cancelled:
                    return True  # e.g. TaskCancelledError out of a remote call
                task.result()
                return False
            if context.cancelled:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                return True
    except asyncio.CancelledError:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise


def _check_compiled(source: Any) -> None:
    """A TypeError naming what ``source`` is unless it is a compiled graph: a LangChain runnable
    such as ``prompt | model`` streams too, but has no checkpointer and no state to serve."""
    if not isinstance(source, Pregel):
        raise TypeError(
            "graph must be a compiled LangGraph graph (StateGraph(...).compile(), "
            "create_agent(...) or create_react_agent(...)), a StateGraph, or a callable that "
            f"returns one; got {type(source).__name__}"
        )


async def _set_up_once(url: str, pool: Any, setup: Callable[[], Awaitable[None]]) -> None:
    """Run ``setup`` (tables and migrations) under a lock of the URL's schema."""
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT current_schema() AS schema")
        row = await cursor.fetchone()
        assert row is not None  # the query always returns one row
        schema = row["schema"]
    # Replicas starting together would race to create the tables: one at a time, under a
    # lock of the schema. A polled lock, as every PostgresThreadLock is: the setup's CREATE
    # INDEX CONCURRENTLY waits for every older transaction of the database, and a replica
    # blocked inside pg_advisory_lock is one, waiting in turn for the holder (a deadlock
    # PostgreSQL cannot see: it runs through the workers).
    setup_lock = PostgresThreadLock(url)
    await setup_lock.open()
    try:
        async with setup_lock.hold(f"{SETUP_LOCK}:{schema}", lambda: False, None):
            await setup()
    finally:
        await setup_lock.close()


async def _check_postgres(url: str, option: str, env: str) -> None:
    """Connect once: a missing database or an absent server stops the worker at once with a line
    naming ``option``, where the pool would log warnings for 30 s, then time out."""
    import psycopg

    try:
        connection = await psycopg.AsyncConnection.connect(url, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"{option} {redact(url)} ({env}): cannot connect to "
            f"PostgreSQL ({' '.join(str(exc).split())}); create the database, start the server "
            "or fix the URL"
        ) from None
    await connection.close()


_POSTGRES_EXTRA = (
    "{option} needs the postgres extra: "
    "pip install './adapters/langgraph[postgres]' (in a clone of by-framework)"
)


def langgraph_worker(
    graph: GraphSource, agent_type: str = "agent", **options: Any
) -> type[LangGraphWorker]:
    """A LangGraphWorker subclass that takes no arguments: for ``python -m by_framework
    --worker-class module.Name`` and ``run_worker(Name)``. (A module-level LangGraphWorker
    instance works with both too.)"""

    def __init__(self: LangGraphWorker) -> None:
        LangGraphWorker.__init__(self, graph, agent_type, **options)

    name = "".join(part.title() for part in agent_type.replace("-", "_").split("_")) + "Worker"
    return type(name, (LangGraphWorker,), {"__init__": __init__})


WORKER_OPTIONS = frozenset(inspect.signature(LangGraphWorker.__init__).parameters) - {
    "self",
    "graph",
    "agent_type",
}


def serve_graph(graph: GraphSource, agent_type: str = "agent", **options: Any) -> None:
    """Serve ``graph`` as ``agent_type`` until SIGTERM / SIGINT: the LangGraphWorker options
    (``checkpointer_url``, ``thread_id``, ...) go to the worker, the rest to ``run_worker``
    (``worker_id``, ``redis_url``, ``max_concurrency``, ...)."""
    worker_options = {k: v for k, v in options.items() if k in WORKER_OPTIONS}
    run_options = {k: v for k, v in options.items() if k not in WORKER_OPTIONS}
    run_worker(LangGraphWorker(graph, agent_type, **worker_options), **run_options)
