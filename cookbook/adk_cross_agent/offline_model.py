"""A stand-in for Gemini, so that the recipe runs anywhere, offline and the same every time.

It does what a real model would be asked to do here: call every tool it is given with the
user's message, then answer with what the tools replied. With a Google API key, give the agent
``model="gemini-2.5-flash"`` instead.
"""

import uuid
from collections.abc import AsyncGenerator

from google.adk.models import BaseLlm, LlmRequest, LlmResponse
from google.genai import types

NO_TOKENS = types.GenerateContentResponseUsageMetadata(
    prompt_token_count=0, candidates_token_count=0, total_token_count=0
)


class OfflineModel(BaseLlm):
    model: str = "offline"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        last = llm_request.contents[-1]
        replies = [part.function_response for part in last.parts or () if part.function_response]
        if replies:  # the tools answered: sum up
            lines = [f"{reply.name}: {(reply.response or {}).get('reply')}" for reply in replies]
            parts = [types.Part(text="\n".join(lines))]
        else:  # a new message: ask every tool about it, all at once
            message = " ".join(part.text for part in last.parts or () if part.text)
            parts = [
                types.Part(
                    function_call=types.FunctionCall(
                        id=f"call-{uuid.uuid4().hex[:8]}", name=name, args={"request": message}
                    )
                )
                for name in llm_request.tools_dict
            ]
        yield LlmResponse(
            content=types.Content(role="model", parts=parts), usage_metadata=NO_TOKENS
        )
