"""The Byai content codec: typed chat messages as command content."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class BaiYingMessage(BaseModel):
    """One chat message. On the wire it is a JSON object tagged ``"kind": "baiying_message"``."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["baiying_message"] = "baiying_message"
    role: str
    content: Any
    name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def encode(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def decode(cls, content: Any) -> "BaiYingMessage | list[BaiYingMessage]":
        """The message (or list of messages) a ``ByaiGatewayClient`` sent as ``content``."""
        if isinstance(content, list):
            return [cls.model_validate(item) for item in content]
        return cls.model_validate(content)
