"""ADK agents served by AdkWorker in the tests, in-process or through the CLI (zero-argument
subclasses). Their model is FakeLlm: scripted, with tool calls, no network."""

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from by_framework_adk import (
    AdkWorker,
    ask_user_tool,
    current_context,
    remote_agent_tool,
    remote_batch_tool,
)
from google.adk.agents import BaseAgent, InvocationContext, LlmAgent
from google.adk.events import Event, EventActions
from google.adk.models import LlmRequest
from google.adk.tools import FunctionTool, LongRunningFunctionTool, ToolContext
from google.adk.tools.base_toolset import BaseToolset
from google.genai import types
from pydantic import BaseModel, Field

from by_framework import AgentContext, GatewayWorker
from tests.adapters.adk.fake_llm import FakeLlm, responses

# Human in the loop


def request_approval(amount: int, reason: str) -> None:
    """Ask a manager to approve a payment; the answer comes later."""
    return None


def _approval_answer(request: LlmRequest) -> str:
    (response,) = responses(request)
    answer = response.response or {}
    if answer.get("approved"):
        return f"Paid 500 EUR, approved by {answer.get('by')}."
    return "Payment cancelled."


def approval_agent() -> LlmAgent:
    return LlmAgent(
        name="payer",
        model=FakeLlm(
            script=[
                [("request_approval", {"amount": 500, "reason": "team dinner"})],
                _approval_answer,
            ]
        ),
        instruction="Pay what the user asks for, once a manager approved it.",
        tools=[LongRunningFunctionTool(func=request_approval)],
    )


class ApprovalWorker(AdkWorker):
    """An ADK long-running tool asks for approval; sessions in $BYAI_ADK_SESSION_URL."""

    def __init__(self) -> None:
        super().__init__(approval_agent(), agent_type="payer")


def _greeting(request: LlmRequest) -> str:
    (response,) = responses(request)
    return f"Nice to meet you, {(response.response or {}).get('answer')}!"


def greeter_agent() -> LlmAgent:
    return LlmAgent(
        name="greeter",
        model=FakeLlm(
            script=[
                [("ask_user", {"question": "What is your name?", "options": ["Ada", "Alan"]})],
                _greeting,
            ]
        ),
        tools=[ask_user_tool()],
    )


def open_ticket(subject: str) -> dict[str, Any]:
    """Open a support ticket; a human handles it later."""
    return {"status": "pending", "ticket": "T-1"}


def _ticket_news(request: LlmRequest) -> str:
    (response,) = responses(request)  # ADK gives the model the latest answer to the call only
    status = (response.response or {}).get("status")
    if status == "pending":
        return "Ticket T-1 is open; I will tell you when it is handled."
    return f"Ticket T-1: {status}."


def ticket_agent() -> LlmAgent:
    """ADK's documented long-running pattern: the tool answers "pending" at once, the agent
    says so, and the real outcome comes later as the same call's response."""
    return LlmAgent(
        name="helpdesk",
        model=FakeLlm(script=[[("open_ticket", {"subject": "printer on fire"})], _ticket_news]),
        tools=[LongRunningFunctionTool(func=open_ticket)],
    )


def transfer(amount: int) -> dict[str, Any]:
    """Transfer money."""
    return {"transferred": amount}


def banker_agent() -> LlmAgent:
    """A tool that ADK makes ask for confirmation before it runs."""
    return LlmAgent(
        name="banker",
        model=FakeLlm(
            script=[
                [("transfer", {"amount": 100})],
                lambda request: f"Done: {responses(request)[0].response}",
            ]
        ),
        tools=[FunctionTool(transfer, require_confirmation=True)],
    )


# Every kind of event


async def remember(city: str, tool_context: ToolContext) -> dict[str, Any]:
    """Remember the user's city, and write a note about it."""
    tool_context.state["city"] = city
    await tool_context.save_artifact("note.txt", types.Part(text=f"The user lives in {city}."))
    return {"remembered": city}


def showcase_agent() -> LlmAgent:
    return LlmAgent(
        name="showcase",
        model=FakeLlm(
            script=[[("remember", {"city": "Oslo"})], "Noted: you live in Oslo, Norway."]
        ),
        tools=[remember],
    )


class Countdown(BaseAgent):
    """A custom BaseAgent, no model: counts down, keeping the count in the session state."""

    async def _run_async_impl(self, ctx: InvocationContext):  # type: ignore[override]
        for n in (3, 2, 1):
            yield Event(
                author=self.name,
                invocation_id=ctx.invocation_id,
                content=types.Content(role="model", parts=[types.Part(text=f"{n}... ")]),
                actions=EventActions(state_delta={"left": n}),
            )
        yield Event(
            author=self.name,
            invocation_id=ctx.invocation_id,
            content=types.Content(role="model", parts=[types.Part(text="liftoff")]),
        )


# Remote agents as tools


class UpperAgent(GatewayWorker):
    """A plain worker: "translator" upper-cases; "sleep N" sleeps N seconds (watching for a
    cancel) first; "fail" fails."""

    def get_agent_types(self) -> list[str]:
        return ["translator"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        text = str(command.content)
        if text == "fail":
            raise RuntimeError("cannot translate that")
        if text.startswith("sleep "):
            for _ in range(int(float(text.split()[1]) * 20)):
                if context.cancelled:
                    return {"status": "cancelled"}
                await asyncio.sleep(0.05)
        return {"status": "completed", "content": text.upper()}


def _summary(request: LlmRequest) -> str:
    said = []
    for response in responses(request):
        answer = response.response or {}
        if "replies" in answer:
            said += [f"{r['agent']}={r['reply']}" for r in answer["replies"]]
        else:
            said.append(f"{response.name}={answer.get('error') or answer.get('reply')}")
    return "Replies: " + ", ".join(said)


def concierge_agent(
    *script: list[tuple[str, dict[str, Any]]], remote: list[str] | None = None
) -> LlmAgent:
    """Calls remote agents (by default "echo" and "translator", and both through the batch tool)
    as its model's script says, then sums up their replies."""
    if remote is None:
        tools: list[Any] = [
            remote_agent_tool("echo", "Echo a text back."),
            remote_agent_tool("translator", "Translate a text to upper case.", timeout=20),
            remote_batch_tool(["echo", "translator"]),
        ]
    else:
        tools = [remote_agent_tool(agent_type) for agent_type in remote]
    return LlmAgent(name="concierge", model=FakeLlm(script=[*script, _summary]), tools=tools)


def impatient_agent(request: str) -> LlmAgent:
    """Asks the translator, waiting at most half a second for the reply."""
    return LlmAgent(
        name="concierge",
        model=FakeLlm(script=[[("translator", {"request": request})], _summary]),
        tools=[remote_agent_tool("translator", timeout=0.5)],
    )


# Cancel


async def wait_for(seconds: float) -> dict[str, Any]:
    """Wait for something slow."""
    await current_context().emit_chunk(f"waiting {seconds}s", "reasoning")
    await asyncio.sleep(seconds)
    return {"waited": seconds}


def slow_agent() -> LlmAgent:
    return LlmAgent(
        name="slow",
        model=FakeLlm(script=[[("wait_for", {"seconds": 60})], "done waiting"]),
        tools=[wait_for],
    )


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# Crash and re-run


def _crash_once(then: Callable[[LlmRequest], Any]) -> Callable[[LlmRequest], Any]:
    """A step that kills the worker process the first time (the file in $ADK_TEST_CRASH_FILE is
    the mark), and is ``then`` afterwards."""

    def step(request: LlmRequest) -> Any:
        mark = Path(os.environ["ADK_TEST_CRASH_FILE"])
        if not mark.exists():
            mark.write_text("crashed once")
            os._exit(17)
        return then(request)

    return step


class CrashingConciergeWorker(AdkWorker):
    """Calls the translator, then dies before answering, once."""

    def __init__(self) -> None:
        agent = LlmAgent(
            name="concierge",
            model=FakeLlm(script=[[("translator", {"request": "hello"})], _crash_once(_summary)]),
            tools=[remote_agent_tool("translator")],
        )
        super().__init__(agent)


class CrashingGroupWorker(AdkWorker):
    """Calls the echo agent and the translator in one turn (one group), then dies before
    answering, once."""

    def __init__(self) -> None:
        agent = LlmAgent(
            name="concierge",
            model=FakeLlm(
                script=[
                    [("echo", {"request": "hi"}), ("translator", {"request": "hello"})],
                    _crash_once(_summary),
                ]
            ),
            tools=[remote_agent_tool("echo"), remote_agent_tool("translator")],
        )
        super().__init__(agent)


class CrashingApprovalWorker(AdkWorker):
    """The approval agent, whose worker dies once while it takes the answer in."""

    def __init__(self) -> None:
        agent = approval_agent()
        agent.model.script[1] = _crash_once(_approval_answer)  # type: ignore[union-attr]
        super().__init__(agent, agent_type="payer")


# More than one question, follow-ups, transfers, artifacts, apps


def _both_answers(request: LlmRequest) -> str:
    answers = [(r.response or {}).get("answer") for r in responses(request)]
    return f"Answers: {answers}"


def survey_agent() -> LlmAgent:
    """Asks two questions in one model turn."""
    return LlmAgent(
        name="survey",
        model=FakeLlm(
            script=[
                [
                    ("ask_user", {"question": "Your name?"}),
                    ("ask_user", {"question": "Your city?"}),
                ],
                _both_answers,
            ]
        ),
        tools=[ask_user_tool()],
    )


def _recall(request: LlmRequest) -> str:
    return f"You said: {' / '.join(_user_texts(request))}"


def parrot_agent() -> LlmAgent:
    """Repeats every user text of the conversation so far: shows what history it was given."""
    return LlmAgent(name="parrot", model=FakeLlm(script=[_recall]))


def router_agent() -> LlmAgent:
    """Hands the conversation over to its sub-agent "billing"."""
    billing = LlmAgent(name="billing", model=FakeLlm(script=["Billing here: you owe nothing."]))
    return LlmAgent(
        name="router",
        model=FakeLlm(script=[[("transfer_to_agent", {"agent_name": "billing"})]]),
        sub_agents=[billing],
    )


PIXEL = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
BIG = b"\x01" * (64 * 1024 + 1)
REPORT = types.Part.from_uri(file_uri="gs://reports/r.pdf", mime_type="application/pdf")


class Painter(BaseAgent):
    """A custom BaseAgent that saves a small image, a big blob and a link as artifacts."""

    async def _run_async_impl(self, ctx: InvocationContext):  # type: ignore[override]
        assert ctx.artifact_service is not None
        where = {"app_name": ctx.app_name, "user_id": ctx.user_id, "session_id": ctx.session.id}
        saved = {}
        for filename, part in (
            ("pixel.png", types.Part.from_bytes(data=PIXEL, mime_type="image/png")),
            ("big.bin", types.Part.from_bytes(data=BIG, mime_type="application/octet-stream")),
            ("report.pdf", REPORT),
        ):
            saved[filename] = await ctx.artifact_service.save_artifact(
                filename=filename, artifact=part, **where
            )
        yield Event(
            author=self.name,
            invocation_id=ctx.invocation_id,
            content=types.Content(role="model", parts=[types.Part(text="painted")]),
            actions=EventActions(artifact_delta=saved),
        )


class Failing(BaseAgent):
    """A custom BaseAgent whose model call ends on an error and no text."""

    async def _run_async_impl(self, ctx: InvocationContext):  # type: ignore[override]
        yield Event(
            author=self.name,
            invocation_id=ctx.invocation_id,
            error_code="SAFETY",
            error_message="the answer was blocked",
        )


class Raising(BaseAgent):
    """A custom BaseAgent that raises."""

    async def _run_async_impl(self, ctx: InvocationContext):  # type: ignore[override]
        raise ValueError("the agent broke")
        yield  # pragma: no cover - makes this an async generator


class RemoteToolset(BaseToolset):
    """Gives the agent a remote agent tool through a toolset, not directly."""

    def __init__(self, agent_type: str) -> None:
        super().__init__()
        self._tool = remote_agent_tool(agent_type)

    async def get_tools(self, readonly_context: Any = None) -> list[Any]:
        return [self._tool]


def mixed_tools_agent() -> LlmAgent:
    """Calls "echo" (a direct tool) and "translator" (a toolset's) in one model turn."""
    return LlmAgent(
        name="concierge",
        model=FakeLlm(
            script=[[("echo", {"request": "hi"}), ("translator", {"request": "hello"})], _summary]
        ),
        tools=[remote_agent_tool("echo"), RemoteToolset("translator")],
    )


# Per-run configuration: a message's values in the session state


def tenant_of_user(tool_context: ToolContext) -> dict[str, Any]:
    """The tenant the user works for."""
    return {"tenant": tool_context.state.get("tenant")}


def _persona_answer(request: LlmRequest) -> str:
    """The persona from the instruction ADK filled in, the tenant from the tool's answer."""
    (response,) = responses(request)
    instruction = str(request.config.system_instruction).split("\n")[0]
    return f"{instruction} Tenant: {(response.response or {}).get('tenant')}."


def persona_agent() -> LlmAgent:
    return LlmAgent(
        name="persona",
        model=FakeLlm(script=[[("tenant_of_user", {})], _persona_answer]),
        instruction="You are {persona}.",
        tools=[tenant_of_user],
    )


class TenantSettings(BaseModel):
    """What a message may configure of the schema-checked persona agent."""

    persona: Literal["a pirate", "a butler"] = "a butler"
    tenant: str = Field(min_length=1)


class PersonaWorker(AdkWorker):
    """The persona agent, no schema; sessions in $BYAI_ADK_SESSION_URL."""

    def __init__(self) -> None:
        super().__init__(persona_agent(), agent_type="persona")


class PersonaSchemaWorker(AdkWorker):
    """The persona agent, its values checked by TenantSettings."""

    def __init__(self) -> None:
        super().__init__(
            persona_agent(), agent_type="persona-schema", configurable_schema=TenantSettings
        )


# Double-texting: a run caught half-way


async def slow_step(tag: str, seconds: float) -> dict[str, Any]:
    """Work on the task for a while."""
    await current_context().emit_chunk(f"{tag} working", "reasoning")
    await asyncio.sleep(seconds)
    return {"done": tag}


def _step_call(request: LlmRequest) -> list[tuple[str, dict[str, Any]]]:
    tag, seconds = _user_texts(request)[-1].split()
    return [("slow_step", {"tag": tag, "seconds": float(seconds)})]


def _user_texts(request: LlmRequest) -> list[str]:
    return [
        part.text
        for content in request.contents
        if content.role == "user"
        for part in content.parts or ()
        if part.text
    ]


def steps_agent() -> LlmAgent:
    """Each message ("<tag> <seconds>") runs a tool for that long, then the agent answers with
    every user text its session holds: which runs' events the session kept."""
    return LlmAgent(
        name="steps",
        model=FakeLlm(script=[_step_call, lambda r: " / ".join(_user_texts(r))]),
        tools=[slow_step],
    )


class StepsWorker(AdkWorker):
    """The steps agent; sessions in $BYAI_ADK_SESSION_URL."""

    def __init__(self) -> None:
        super().__init__(steps_agent(), agent_type="adk-steps")
