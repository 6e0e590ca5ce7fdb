"""ByaiGatewayClient: a GatewayClient that sends ``BaiYingMessage`` content through its codec."""

from typing import Any

from by_framework.client.gateway import GatewayClient, SendResponse
from by_framework.protocol.byai import BaiYingMessage


class ByaiGatewayClient(GatewayClient):
    async def send_message(
        self, target_agent_type: str, session_id: str, content: Any, *args: Any, **kwargs: Any
    ) -> SendResponse:
        if isinstance(content, BaiYingMessage):
            content = content.encode()
        elif isinstance(content, list) and all(isinstance(m, BaiYingMessage) for m in content):
            content = [message.encode() for message in content]
        return await super().send_message(target_agent_type, session_id, content, *args, **kwargs)
