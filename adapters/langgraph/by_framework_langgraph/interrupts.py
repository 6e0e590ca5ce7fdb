"""``interrupt()`` as ``ask_user``, and the ``ResumeCommand`` as ``Command(resume=...)``."""

import json
from collections.abc import Sequence
from typing import Any

from langgraph.types import Interrupt

from by_framework import AskUserEvent, ResumeCommand


class AskAgain:
    """The resume does not say which of several questions it answers: ask them again."""


ASK_AGAIN = AskAgain()


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def _prompt_of(value: Any) -> tuple[str, list[str] | None]:
    """An interrupt value's question: a string, or a dict's "prompt" / "question" (and its
    "options"), else the value as JSON."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict):
        for key in ("prompt", "question", "message"):
            if isinstance(value.get(key), str):
                options = value.get("options")
                if isinstance(options, list) and all(isinstance(o, str) for o in options):
                    return value[key], options
                return value[key], None
    return json.dumps(_jsonable(value), ensure_ascii=False), None


def ask_user_event(interrupts: Sequence[Interrupt], thread_id: str) -> AskUserEvent:
    """The question(s) for the user: the prompt of one interrupt, or of each (with its id) when
    several are pending; ``data["interrupts"]`` lists every ``{"id", "value"}``."""
    items = [{"id": item.id, "value": _jsonable(item.value)} for item in interrupts]
    data = {"interrupts": items, "thread_id": thread_id}
    if len(interrupts) == 1:
        prompt, options = _prompt_of(interrupts[0].value)
        return AskUserEvent(prompt=prompt, options=options, data=data)
    lines = [f"- {_prompt_of(item.value)[0]} (id {item.id})" for item in interrupts]
    prompt = "Several questions are waiting; answer each by its id:\n" + "\n".join(lines)
    return AskUserEvent(prompt=prompt, data=data)


def resume_value(command: ResumeCommand, interrupts: Sequence[Interrupt]) -> Any:
    """What ``Command(resume=...)`` gets: ``reply_data["resume"]`` as it is; else a map of
    interrupt id -> answer (``reply_data["interrupts"]``, or a content dict keyed by pending
    ids); else the content, when one question is pending. ``ASK_AGAIN`` when it is not clear
    which question the answer is for."""
    pending = [item.id for item in interrupts]
    if "resume" in command.reply_data:
        return command.reply_data["resume"]
    answers = command.reply_data.get("interrupts")
    content = command.content
    if answers is None and isinstance(content, dict) and content and set(content) <= set(pending):
        answers = content
    if isinstance(answers, dict):
        chosen = {key: value for key, value in answers.items() if key in pending}
        return chosen or ASK_AGAIN
    if len(pending) == 1:
        return content
    return ASK_AGAIN
