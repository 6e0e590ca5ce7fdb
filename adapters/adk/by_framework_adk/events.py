"""ADK events on the session stream.

- text: a chunk, as it streams (partial events); a complete event whose text already streamed
  is not sent again, so the answer appears once however the model delivers it;
- thoughts, function calls and function responses: ``reasoning`` chunks;
- ``actions.state_delta``: a ``state`` event ``state_delta`` whose detail is the delta as JSON;
- ``actions.artifact_delta``: an ``ArtifactEvent`` per artifact version saved;
- ``actions.transfer_to_agent``: a ``state`` event ``transfer`` naming the agent.
"""

import base64
import json
from typing import Any, Literal

from google.adk.artifacts import BaseArtifactService
from google.adk.events import Event
from google.genai import types

from by_framework import AgentContext, ArtifactEvent

INLINE_ARTIFACT_LIMIT = 64 * 1024
"""Artifacts up to this many bytes travel inline in their ``ArtifactEvent`` (``data``)."""


class EventStream:
    """Puts one run's ADK events on the task's session stream and keeps what the run said."""

    def __init__(
        self,
        context: AgentContext,
        artifacts: BaseArtifactService | None,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
    ) -> None:
        self._context = context
        self._artifacts = artifacts
        self._where = {"app_name": app_name, "user_id": user_id, "session_id": session_id}
        self._streamed: set[str] = set()  # authors whose current message streamed as partials
        self.final_text: str | None = None
        """The text of the last final response of the run."""
        self.last_text: str | None = None
        """The last text the agent said (final or not)."""
        self.long_running_calls = 0
        self.error: str | None = None

    async def put(self, event: Event) -> None:
        if event.author == "user":
            return
        await self._put(event)

    async def answered(self, message: types.Content) -> None:
        """The user's answer, given to the agent as a function response."""
        for part in message.parts or ():
            if part.function_response:
                await self._response(part.function_response)

    async def _response(self, response: types.FunctionResponse) -> None:
        await self._context.emit_chunk(
            f"{response.name} -> {_json(response.response)}", "reasoning"
        )

    async def _put(self, event: Event) -> None:
        parts = event.content.parts if event.content and event.content.parts else []
        if event.partial:
            for part in parts:
                if part.text:
                    await self._context.emit_chunk(part.text, _kind(part))
                    self._streamed.add(event.author)
            return
        streamed = event.author in self._streamed
        self._streamed.discard(event.author)
        text = "".join(part.text for part in parts if part.text and not part.thought)
        for part in parts:
            if part.text and not streamed:
                await self._context.emit_chunk(part.text, _kind(part))
            if part.function_call:
                call = part.function_call
                await self._context.emit_chunk(f"call {call.name}({_json(call.args)})", "reasoning")
            if part.function_response:
                await self._response(part.function_response)
        if text:
            self.last_text = text
            if event.is_final_response():
                self.final_text = text
        if event.long_running_tool_ids:
            self.long_running_calls += len(event.long_running_tool_ids)
        if event.error_code or event.error_message:
            self.error = f"{event.error_code or 'error'}: {event.error_message or ''}".strip()
            await self._context.emit_chunk(f"error {self.error}", "reasoning")
        elif text or parts:
            self.error = None
        await self._actions(event)

    async def _actions(self, event: Event) -> None:
        actions = event.actions
        if actions is None:
            return
        if actions.state_delta:
            await self._context.emit_state("state_delta", _json(actions.state_delta))
        for filename, version in (actions.artifact_delta or {}).items():
            await self._context.emit_artifact(await self._artifact(filename, version))
        if actions.transfer_to_agent:
            await self._context.emit_state("transfer", actions.transfer_to_agent)

    async def _artifact(self, filename: str, version: int) -> ArtifactEvent:
        """The artifact's event: text inline, small binaries inline as base64, a file's URI."""
        data: dict[str, Any] = {"version": version}
        event = ArtifactEvent(name=filename, data=data)
        part = None
        if self._artifacts is not None:
            part = await self._artifacts.load_artifact(
                filename=filename, version=version, **self._where
            )
        if part is None:
            return event
        if part.text is not None:
            event.mime_type = "text/plain"
            data["text"] = part.text
        elif part.inline_data is not None:
            blob = part.inline_data.data or b""
            event.mime_type = part.inline_data.mime_type
            data["size"] = len(blob)
            if len(blob) <= INLINE_ARTIFACT_LIMIT:
                data["base64"] = base64.b64encode(blob).decode()
        elif part.file_data is not None:
            event.url = part.file_data.file_uri
            event.mime_type = part.file_data.mime_type
        return event


def _kind(part: Any) -> Literal["text", "reasoning"]:
    return "reasoning" if part.thought else "text"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
