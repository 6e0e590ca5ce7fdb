"""Human in the loop: an ADK long-running tool call is a question to the user.

A run that leaves a long-running call unanswered ends the task WAITING_USER (``ask_user``). The
resume, on whichever worker picks it up, answers that very call: a ``FunctionResponse`` with the
call's id goes to the agent, which resumes its invocation. What was asked is read back from the
ADK session, where every event of the task carries the task's message id, so replicas that share
the session store need nothing else.
"""

import json
from dataclasses import dataclass
from typing import Any

from google.adk.events import Event
from google.adk.sessions import Session
from google.adk.tools import LongRunningFunctionTool
from google.genai import types

from by_framework import AskUserEvent, ResumeCommand

METADATA_KEY = "by_framework"
"""The key of ``Event.custom_metadata`` under which events carry the task that made them."""


@dataclass
class Question:
    """A long-running call waiting for its answer."""

    call: types.FunctionCall
    so_far: Any = None
    """What the tool itself answered for now (e.g. ``{"status": "pending"}``), if anything."""


def ask_user_tool(
    name: str = "ask_user", description: str | None = None
) -> LongRunningFunctionTool:
    """An ADK tool the model calls to ask the user a question (``question``, and optionally
    ``options`` to choose from): the task ends WAITING_USER, and the user's answer comes back to
    the model as this call's response, ``{"answer": ...}``."""

    def ask_user(question: str, options: list[str] | None = None) -> None:
        return None

    ask_user.__name__ = ask_user.__qualname__ = name
    ask_user.__doc__ = description or (
        "Ask the user a question and wait for the answer. Give the question, and the options "
        "when the user must pick one."
    )
    return LongRunningFunctionTool(func=ask_user)


def task_of(event: Event) -> str | None:
    """The message id of the by-framework task that made ``event``, if it carries one."""
    tag = (event.custom_metadata or {}).get(METADATA_KEY)
    return tag.get("message_id") if isinstance(tag, dict) else None


def open_questions(session: Session, message_id: str) -> list[Question]:
    """The long-running calls the task ``message_id`` made that no answer has reached yet, in the
    order they were made."""
    return _questions(session, message_id)[0]


def question_to_answer(session: Session, message_id: str) -> Question | None:
    """The call a resume of task ``message_id`` answers: the first open one; with none open, the
    one answered last (the resume is running again after its first attempt was cut off: ADK
    keeps the latest response of a call, so answering it again is safe)."""
    waiting, answered = _questions(session, message_id)
    return waiting[0] if waiting else (answered[-1] if answered else None)


def _questions(session: Session, message_id: str) -> tuple[list[Question], list[Question]]:
    """The task's long-running calls: those still open, and those answered (in answer order)."""
    open_calls: dict[str, Question] = {}
    answered: list[Question] = []
    for event in live_events(session.events):
        if task_of(event) != message_id:
            continue
        if event.author == "user":  # an answer given through a resume
            for response in event.get_function_responses():
                question = open_calls.pop(response.id or "", None)
                if question is not None:
                    answered.append(question)
            continue
        for call in event.get_function_calls():
            if call.id and call.id in (event.long_running_tool_ids or ()):
                open_calls[call.id] = Question(call)
        for response in event.get_function_responses():
            if response.id in open_calls:
                open_calls[response.id].so_far = response.response
    return list(open_calls.values()), answered


def live_events(events: list[Event]) -> list[Event]:
    """``events`` without those a rewind removed (an event with ``rewind_before_invocation_id``
    drops itself and everything back to that invocation's first event)."""
    live: list[Event] = []
    first_of: dict[str, int] = {}
    for event in events:
        target = event.actions.rewind_before_invocation_id if event.actions else None
        if target:
            del live[first_of.get(target, len(live)) :]
            first_of = {inv: i for inv, i in first_of.items() if i < len(live)}
            continue
        if event.invocation_id and event.invocation_id not in first_of:
            first_of[event.invocation_id] = len(live)
        live.append(event)
    return live


def question_event(question: Question, said: str | None) -> AskUserEvent:
    """The ``ask_user`` event for ``question``: its prompt is the call's ``question`` (or
    ``prompt``) argument, else the hint of an ADK tool confirmation, else what the agent said
    last, else the tool's name; its data names the call."""
    args = dict(question.call.args or {})
    confirmation = args.get("toolConfirmation")  # ADK's own: a tool with require_confirmation
    hint = confirmation.get("hint") if isinstance(confirmation, dict) else None
    prompt = next(
        (args[key] for key in ("question", "prompt") if isinstance(args.get(key), str)), hint
    )
    options = args.get("options")
    data: dict[str, Any] = {
        "function_call_id": question.call.id,
        "name": question.call.name,
        "args": args,
    }
    if question.so_far is not None:
        data["so_far"] = question.so_far
    return AskUserEvent(
        prompt=prompt or said or f"{question.call.name} is waiting for an answer",
        options=[str(o) for o in options] if isinstance(options, list) else None,
        data={"adk": json.loads(json.dumps(data, default=str))},
    )


def answer_message(question: Question, command: ResumeCommand) -> types.Content:
    """The user turn that answers ``question`` with a resume: the call's ``FunctionResponse``,
    whose response is the resume's content if it is a dict, else ``{"answer": content}`` (plus
    ``reply_data`` when the resume has some)."""
    content = command.content
    response = dict(content) if isinstance(content, dict) else {"answer": content}
    if command.reply_data:
        response.setdefault("reply_data", command.reply_data)
    part = types.Part(
        function_response=types.FunctionResponse(
            id=question.call.id, name=question.call.name, response=response
        )
    )
    return types.Content(role="user", parts=[part])
