"""What a worker writes into a session's history: each run's incoming message and its outcome.

Turns are keyed by task, run and kind, so a task re-run after a crash (same run number) records
nothing twice. Writing history never fails a task: an error or a slow store is logged and the
task goes on.
"""

import asyncio
import logging
from typing import Any

from pydantic_core import to_jsonable_python

from by_framework.history.memory import MemoryHistoryStore
from by_framework.ports import HistoryStore
from by_framework.protocol import AgentState, AgentTaskResult, MessageHeader, ResumeCommand

log = logging.getLogger("by_framework.history")

APPEND_TIMEOUT = 5.0
"""Seconds one history write may take before it is abandoned (and logged)."""

USER = "user"
ASSISTANT = "assistant"


class TurnRecorder:
    """Records a worker's turns in the history store."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        # The built-in memory store answers without waiting on anything: written to directly,
        # with no timer and no message built for the caller (two writes per task, on the hot
        # path). Any other store, a subclass included, may hang on I/O and is bounded.
        self.memory = store if type(store) is MemoryHistoryStore else None

    async def incoming(self, header: MessageHeader, command: Any, run: int) -> None:
        """The command a run starts with: the user's (or calling agent's) message, or the
        answer a resume brings after ``ask_user``."""
        if isinstance(command, ResumeCommand):
            extra = {"reply_data": command.reply_data} if command.reply_data else {}
            await self._append(header, run, "resume", USER, command.content, extra)
            return
        caller = header.source_agent_type if header.parent_message_id else None
        await self._append(header, run, "message", caller or USER, command.content, {})

    async def outcome(self, header: MessageHeader, result: AgentTaskResult, run: int) -> None:
        """How the run ended: its result, or the question it asks the user."""
        extra: dict[str, Any] = {}
        if result.status is AgentState.WAITING_USER:
            kind = "ask_user"
            question = (result.data or {}).get("ask_user")
            if question is not None:
                extra["ask_user"] = question
        else:
            kind = "result"
            extra["status"] = result.status.value
            if result.error:
                extra["error"] = result.error
        # As the session stream has it (what model_dump(mode="json") gives, without the rest).
        content = to_jsonable_python(result.content, inf_nan_mode="null")
        await self._append(header, run, kind, ASSISTANT, content, extra)

    async def _append(
        self,
        header: MessageHeader,
        run: int,
        kind: str,
        role: str,
        content: Any,
        extra: dict[str, Any],
    ) -> None:
        metadata: dict[str, Any] = {
            "message_id": header.message_id,
            "agent_type": header.target_agent_type,
            "kind": kind,
            "run": run,
        }
        if header.parent_message_id:
            metadata["parent_message_id"] = header.parent_message_id
        metadata.update(extra)
        key = f"{header.message_id}:{run}:{kind}"
        try:
            if self.memory is not None:
                self.memory.record(header.session_id, role, content, metadata, key=key)
                return
            async with asyncio.timeout(APPEND_TIMEOUT):
                await self.store.append(header.session_id, role, content, metadata, key=key)
        except TimeoutError:
            log.warning(
                "history: the %s of task %s (session %s) was not recorded: no answer in %gs",
                kind, header.message_id, header.session_id, APPEND_TIMEOUT,
            )  # fmt: skip
        except Exception as exc:  # history is a record, not a reason to fail the task
            log.warning(
                "history: the %s of task %s (session %s) was not recorded: %s: %s",
                kind, header.message_id, header.session_id, type(exc).__name__, exc,
            )  # fmt: skip
