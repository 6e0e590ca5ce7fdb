"""A scripted ADK model: no network, deterministic, and it calls tools.

Each new user text restarts the script; every later model turn of that exchange takes the next
step. A step is a list of tool calls (one model turn calling them together), a text (streamed
word by word when ADK asks for a stream), or a function of the request returning either.
"""

import uuid
from collections.abc import AsyncGenerator, Callable
from typing import Any

from google.adk.models import BaseLlm, LlmRequest, LlmResponse
from google.genai import types

Step = list[tuple[str, dict[str, Any]]] | str | Callable[[LlmRequest], "Step"]


class FakeLlm(BaseLlm):
    model: str = "fake-llm"
    script: list[Any] = []

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        step = self._step(llm_request)
        if callable(step):
            step = step(llm_request)
        if isinstance(step, str):
            async for response in _say(step, stream):
                yield response
            return
        parts = [
            types.Part(
                function_call=types.FunctionCall(id=f"fc-{uuid.uuid4().hex[:8]}", name=n, args=a)
            )
            for n, a in step
        ]
        yield LlmResponse(content=types.Content(role="model", parts=parts))

    def _step(self, llm_request: LlmRequest) -> Step:
        turns = 0
        for content in reversed(llm_request.contents):
            if content.role == "user" and any(p.text for p in content.parts or ()):
                break
            if content.role == "model":
                turns += 1
        return self.script[turns] if turns < len(self.script) else "(the script is over)"


async def _say(text: str, stream: bool) -> AsyncGenerator[LlmResponse, None]:
    if stream:
        words = text.split(" ")
        for index, word in enumerate(words):
            piece = word if index == len(words) - 1 else f"{word} "
            yield LlmResponse(
                content=types.Content(role="model", parts=[types.Part(text=piece)]), partial=True
            )
    yield LlmResponse(
        content=types.Content(role="model", parts=[types.Part(text=text)]), turn_complete=True
    )


def responses(llm_request: LlmRequest) -> list[types.FunctionResponse]:
    """The function responses the model is given back in this request (the last user turn)."""
    last = llm_request.contents[-1]
    return [p.function_response for p in last.parts or () if p.function_response]
