"""Opt-in retries with backoff, per agent type; the per-task timeout."""

import collections
from typing import Any

from by_framework import (
    AgentContext,
    AgentState,
    GatewayClient,
    GatewayWorker,
    RetryPolicy,
    Settings,
    StateChangeEvent,
)
from tests.support import running_worker


class FlakyAgent(GatewayWorker):
    """Raises on the first two runs of each task, then succeeds; "careful" never retries."""

    def __init__(self) -> None:
        self.runs: collections.Counter[str] = collections.Counter()

    def get_agent_types(self) -> list[str]:
        return ["flaky", "careful"]

    def get_retry_policy(self, agent_type: str) -> RetryPolicy | None:
        return RetryPolicy(max_attempts=3, backoff_seconds=0.05) if agent_type == "flaky" else None

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        self.runs[context.message_id] += 1
        if self.runs[context.message_id] <= 2:
            raise ConnectionResetError(f"model endpoint hiccup #{self.runs[context.message_id]}")
        return {"status": "completed", "content": f"ok after {self.runs[context.message_id]}"}


async def test_a_retried_agent_type_recovers_and_shows_its_retries(
    client: GatewayClient, settings: Settings
) -> None:
    agent = FlakyAgent()
    async with running_worker(agent, settings):
        flaky = await client.send_message("flaky", "s-retry", "go")
        careful = await client.send_message("careful", "s-retry", "go")
        flaky_result = await client.wait_for_result(flaky.message_id, timeout=10)
        careful_result = await client.wait_for_result(careful.message_id, timeout=10)
        states = [
            item.event.detail
            async for item in client.events("s-retry", until_message_id=flaky.message_id)
            if item.message_id == flaky.message_id and isinstance(item.event, StateChangeEvent)
            and item.event.state == "retrying"
        ]  # fmt: skip
    assert flaky_result.status is AgentState.COMPLETED and flaky_result.content == "ok after 3"
    assert states == [
        "run 1 of 3 failed (ConnectionResetError: model endpoint hiccup #1); next run in 0.05s",
        "run 2 of 3 failed (ConnectionResetError: model endpoint hiccup #2); next run in 0.1s",
    ]
    assert careful_result.status is AgentState.FAILED  # no policy: no second run
    assert careful_result.error == "ConnectionResetError: model endpoint hiccup #1"
    assert agent.runs[careful.message_id] == 1


def test_retry_policy_backoff_and_validation() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_seconds=1, multiplier=3, max_backoff_seconds=5)
    assert [policy.delay_before(n) for n in (2, 3, 4, 5)] == [1, 3, 5, 5]
    for bad in ({"max_attempts": 0}, {"multiplier": 0.5}, {"backoff_seconds": -1}):
        try:
            RetryPolicy(**bad)  # type: ignore[arg-type]
        except ValueError as exc:
            assert "RetryPolicy" in str(exc)
        else:
            raise AssertionError(f"{bad} accepted")


async def test_a_task_over_its_timeout_ends_failed_and_the_worker_goes_on(
    client: GatewayClient, settings: Settings
) -> None:
    from tests.agents import EchoAgent

    async with running_worker(EchoAgent(), settings, task_timeout=0.3):
        slow = await client.send_message("echo", "s-timeout", {"sleep": 5})
        fast = await client.send_message("echo", "s-timeout", "quick")
        slow_result = await client.wait_for_result(slow.message_id, timeout=10)
        fast_result = await client.wait_for_result(fast.message_id, timeout=10)
    assert slow_result.status is AgentState.FAILED
    assert slow_result.error == "the task ran longer than task_timeout (0.3s)"
    assert fast_result.content == "quick"
