"""Graphs the LangGraph adapter's tests serve, in-process and in worker processes, with fake chat
models only (never a network LLM). Worker processes find their PostgreSQL checkpointer in
``BYAI_LANGGRAPH_CHECKPOINTER_URL`` (set by the test)."""

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal, TypedDict

from by_framework_langgraph import (
    ask_user_tool,
    langgraph_worker,
    remote_agent_tool,
)
from langchain.agents import create_agent
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import add_messages
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import BaseModel, Field

from by_framework import AgentContext, GatewayWorker


class ScriptedModel(BaseChatModel):
    """A chat model whose reply is ``script(messages)``: deterministic, so a re-run after a
    crash says what the first run said. Streams text word by word (``token_delay`` apart) and
    tool calls as one chunk."""

    script: Callable[[list[BaseMessage]], AIMessage]
    token_delay: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> "ScriptedModel":
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:  # fmt: skip
        return ChatResult(generations=[ChatGeneration(message=self.script(messages))])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        reply = self.script(messages)
        if reply.tool_calls:
            calls = [
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i,
                 "type": "tool_call_chunk"}
                for i, c in enumerate(reply.tool_calls)
            ]  # fmt: skip
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=calls))
            return
        words = str(reply.content).split(" ")
        for index, word in enumerate(words):
            token = word if index == 0 else f" {word}"
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
            if run_manager is not None:
                await run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk


def _since_last_question(messages: list[BaseMessage]) -> tuple[str, list[ToolMessage]]:
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            tools = [m for m in messages[index:] if isinstance(m, ToolMessage)]
            return str(messages[index].content), tools
    return "", []


def _call(name: str, request: str, call_id: str) -> dict[str, Any]:
    return {"name": name, "args": {"request": request}, "id": call_id, "type": "tool_call"}


# 1. A chat agent (create_agent, unchanged): "turn N" counts the conversation's questions.


def chat_script(messages: list[BaseMessage]) -> AIMessage:
    questions = [m for m in messages if isinstance(m, HumanMessage)]
    return AIMessage(f"turn {len(questions)}: you said {questions[-1].content}")


def build_chat(checkpointer: Any) -> Any:
    model = ScriptedModel(script=chat_script, token_delay=0.02)
    return create_agent(model, tools=[], checkpointer=checkpointer)


ChatWorker = langgraph_worker(build_chat, agent_type="lg-chat")


# 2. Human in the loop (StateGraph): draft, ask for approval, publish.


class Approval(TypedDict, total=False):
    topic: str
    draft: str
    drafted_by: int
    verdict: str
    decided_by: int
    outcome: str


def draft(state: Approval) -> Approval:
    return {"draft": f"a plan for {state['topic']}", "drafted_by": os.getpid()}


def approve(state: Approval) -> Approval:
    verdict = interrupt({"prompt": f"Publish {state['draft']!r}?", "options": ["yes", "no"]})
    return {"verdict": verdict, "decided_by": os.getpid()}


def publish(state: Approval) -> Approval:
    get_stream_writer()({"published": state["verdict"] == "yes"})
    return {"outcome": f"{state['draft']}: {state['verdict']}"}


def build_approval(checkpointer: Any) -> Any:
    graph = StateGraph(Approval)
    graph.add_node(draft)
    graph.add_node(approve)
    graph.add_node(publish)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "approve")
    graph.add_edge("approve", "publish")
    graph.add_edge("publish", END)
    return graph.compile(checkpointer=checkpointer)


ApprovalWorker = langgraph_worker(build_approval, agent_type="lg-approval")


# Two questions at once: parallel nodes that both interrupt.


def _merge(left: dict[str, str] | None, right: dict[str, str] | None) -> dict[str, str]:
    return {**(left or {}), **(right or {})}


class Pair(TypedDict, total=False):
    answers: Annotated[dict[str, str], _merge]


def ask_color(state: Pair) -> Pair:
    return {"answers": {"color": interrupt("Which color?")}}


def ask_size(state: Pair) -> Pair:
    return {"answers": {"size": interrupt("Which size?")}}


def build_pair(checkpointer: Any) -> Any:
    graph = StateGraph(Pair)
    graph.add_node(ask_color)
    graph.add_node(ask_size)
    graph.add_edge(START, "ask_color")
    graph.add_edge(START, "ask_size")
    graph.add_edge("ask_color", END)
    graph.add_edge("ask_size", END)
    return graph.compile(checkpointer=checkpointer)


# 3. A researcher that calls remote agents: one call in its first turn, then two in one turn.


def research_script(messages: list[BaseMessage]) -> AIMessage:
    question, tools = _since_last_question(messages)
    if not tools:
        return AIMessage("", tool_calls=[_call("translator", f"warm up: {question}", "call-0")])
    if len(tools) == 1:
        return AIMessage(
            "",
            tool_calls=[
                _call("translator", question, "call-1"),
                _call("summarizer", question, "call-2"),
            ],
        )
    replies = {m.tool_call_id: str(m.content) for m in tools}
    return AIMessage(f"translation: {replies['call-1']} | summary: {replies['call-2']}")


def build_researcher(checkpointer: Any) -> Any:
    tools = [
        remote_agent_tool("translator", "Translate a text into French."),
        remote_agent_tool("summarizer", "Summarize a text in one line."),
        ask_user_tool(),
    ]
    model = ScriptedModel(script=research_script)
    return create_agent(model, tools=tools, checkpointer=checkpointer)


ResearcherWorker = langgraph_worker(build_researcher, agent_type="lg-researcher")


class HelperAgents(GatewayWorker):
    """The remote agents: "translator" and "summarizer" take ``HELPER_SLEEP`` seconds (env;
    a "warm up" is quick) and answer with their own name; content "fail" fails."""

    def get_agent_types(self) -> list[str]:
        return ["translator", "summarizer"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        if command.content == "fail":
            raise RuntimeError("cannot do that")
        if not str(command.content).startswith("warm up"):
            await asyncio.sleep(float(os.environ.get("HELPER_SLEEP", "0")))
        kind = context.current_agent_id
        return {"status": "completed", "content": f"{kind}({command.content})"}


# 4. A long-running node, for cancel: streams a tick every 50 ms for a minute.


class Ticks(TypedDict, total=False):
    ticks: int


async def tick(state: Ticks) -> Ticks:
    writer = get_stream_writer()
    count = 0
    for count in range(1, 1200):
        writer(f"tick {count}")
        await asyncio.sleep(0.05)
    return {"ticks": count}


def build_ticker(checkpointer: Any) -> Any:
    graph = StateGraph(Ticks)
    graph.add_node(tick)
    graph.add_edge(START, "tick")
    graph.add_edge("tick", END)
    return graph.compile(checkpointer=checkpointer)


def waiter_script(messages: list[BaseMessage]) -> AIMessage:
    question, tools = _since_last_question(messages)
    if not tools:
        return AIMessage("", tool_calls=[_call("translator", question, "wait-0")])
    return AIMessage(f"got {tools[0].content}")


def build_waiter(checkpointer: Any) -> Any:
    tools = [remote_agent_tool("translator", "Translate a text into French.")]
    return create_agent(ScriptedModel(script=waiter_script), tools=tools, checkpointer=checkpointer)


# 5. A model that asks the human (ask_user_tool) and a remote agent in one turn.


def asker_script(messages: list[BaseMessage]) -> AIMessage:
    question, tools = _since_last_question(messages)
    if not tools:
        ask = {"name": "ask_user", "args": {"question": "Formal or casual?",
               "options": ["formal", "casual"]}, "id": "ask-1", "type": "tool_call"}  # fmt: skip
        return AIMessage("", tool_calls=[_call("translator", question, "tr-1"), ask])
    replies = {m.tool_call_id: str(m.content) for m in tools}
    return AIMessage(f"{replies['tr-1']}, in a {replies['ask-1']} tone")


def build_asker(checkpointer: Any) -> Any:
    tools = [remote_agent_tool("translator", "Translate a text into French."), ask_user_tool()]
    return create_agent(ScriptedModel(script=asker_script), tools=tools, checkpointer=checkpointer)


# 6. Per-run configuration: one graph, many configs (a message's `configurable`).


def _asked(messages: list[BaseMessage]) -> str:
    questions = [m for m in messages if isinstance(m, HumanMessage)]
    return f"{questions[-1].content!r} (question {len(questions)} on the thread)"


def persona_answer(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
    settings = config["configurable"]
    reply = f"{settings.get('persona')} on {settings.get('model')} answers"
    return {"messages": [AIMessage(f"{reply} {_asked(state['messages'])}")]}


def persona_asks_first(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
    go_on = interrupt("Shall I answer?")
    settings = config["configurable"]
    reply = f"{settings.get('persona')} heard {go_on!r} in process {os.getpid()}"
    return {"messages": [AIMessage(reply)]}


class PersonaSettings(BaseModel):
    """What a message may configure of the schema-checked persona graph."""

    persona: Literal["a pirate", "a butler"] = "a butler"
    model: str = "small"
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)


def persona_in_context(
    state: MessagesState, config: RunnableConfig, runtime: Runtime[PersonaSettings]
) -> dict[str, Any]:
    settings, temperature = runtime.context, config["configurable"]["temperature"]
    reply = f"{settings.persona} on {settings.model} at {temperature} answers"
    return {"messages": [AIMessage(f"{reply} {_asked(state['messages'])}")]}


def _one_node(node: Any, context_schema: Any = None) -> Callable[[Any], Any]:
    def build(checkpointer: Any) -> Any:
        graph = StateGraph(MessagesState, context_schema=context_schema)
        graph.add_node("answer", node)
        graph.add_edge(START, "answer")
        graph.add_edge("answer", END)
        return graph.compile(checkpointer=checkpointer)

    return build


PersonaWorker = langgraph_worker(
    _one_node(persona_answer),
    agent_type="lg-persona",
    config={"configurable": {"persona": "a butler", "model": "small"}},
)
PersonaAsksWorker = langgraph_worker(_one_node(persona_asks_first), agent_type="lg-persona-asks")
PersonaSchemaWorker = langgraph_worker(
    _one_node(persona_in_context, context_schema=PersonaSettings),
    agent_type="lg-persona-schema",
    configurable_schema=PersonaSettings,
)


# 7. A reporter for stream modes: a node writes its progress (custom), a model answers in text;
# the confirming one asks before it answers.


class Report(TypedDict, total=False):
    messages: Annotated[list[BaseMessage], add_messages]
    sources: int
    verdict: str


def gather(state: Report) -> Report:
    writer = get_stream_writer()
    for step in ("searching", "reading"):
        writer({"progress": step})
    return {"sources": 2}


def confirm(state: Report) -> Report:
    verdict = interrupt("Write the report?")
    get_stream_writer()({"progress": f"confirmed: {verdict}"})
    return {"verdict": verdict}


def report_script(messages: list[BaseMessage]) -> AIMessage:
    question, _ = _since_last_question(messages)
    return AIMessage(f"a report on {question} from two sources")


async def answer(state: Report) -> Report:
    model = ScriptedModel(script=report_script)
    return {"messages": [await model.ainvoke(state["messages"])]}


def _reporter(checkpointer: Any, *, confirming: bool) -> Any:
    graph = StateGraph(Report)
    graph.add_node(gather)
    graph.add_node(answer)
    graph.add_edge(START, "gather")
    if confirming:
        graph.add_node(confirm)
        graph.add_edge("gather", "confirm")
        graph.add_edge("confirm", "answer")
    else:
        graph.add_edge("gather", "answer")
    graph.add_edge("answer", END)
    return graph.compile(checkpointer=checkpointer)


def build_reporter(checkpointer: Any) -> Any:
    return _reporter(checkpointer, confirming=False)


def build_confirming_reporter(checkpointer: Any) -> Any:
    return _reporter(checkpointer, confirming=True)


ReporterWorker = langgraph_worker(build_reporter, agent_type="lg-reporter")
ConfirmingReporterWorker = langgraph_worker(
    build_confirming_reporter, agent_type="lg-confirming-reporter"
)


def build_desk(checkpointer: Any) -> Any:
    """The reporter as a subgraph: its parts come with its namespace."""
    graph = StateGraph(Report)
    graph.add_node("reporter", _reporter(None, confirming=False))
    graph.add_edge(START, "reporter")
    graph.add_edge("reporter", END)
    return graph.compile(checkpointer=checkpointer)
