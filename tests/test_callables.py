"""Plain async callables as agents, on the real Redis."""

import pytest

from by_framework import AgentState, CallableWorker, GatewayClient, Settings, agent, serve
from tests.callable_agents import confirm, shout, worker
from tests.support import output_of, running_worker, wait_online, worker_process


async def test_callables_complete_fail_call_agents_and_ask_the_user(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(worker, settings):
        relayed = await client.send_message("relay", "s-callables", "hello")
        failed = await client.send_message("boom", "s-callables", [1, 2])
        asked = await client.send_message("confirm", "s-callables", "deploy")
        results = [
            await client.wait_for_result(sent.message_id, timeout=10)
            for sent in (relayed, failed, asked)
        ]
        await client.resume(asked.message_id, "s-callables", content="yes")
        record = await _ended(client, asked.message_id)
    assert results[0].content == {"relayed": "HELLO"}
    assert (results[1].status, results[1].error) == (
        AgentState.FAILED,
        "ValueError: cannot handle [1, 2]",
    )
    assert results[2].status is AgentState.WAITING_USER
    assert record.result is not None and record.result.content == {"confirmed": "yes"}


async def test_a_module_level_callable_worker_runs_from_the_cli(
    client: GatewayClient, settings: Settings
) -> None:
    process = worker_process(settings, "callables-1", "tests.callable_agents:worker")
    try:
        await wait_online(client, "callables-1")
        sent = await client.send_message("shout", "s-cli-callables", "quiet")
        result = await client.wait_for_result(sent.message_id, timeout=10)
    finally:
        process.terminate()
        process.wait(10)
    assert result.content == "QUIET", output_of(process)


def test_misdeclared_callables_say_what_is_wrong() -> None:
    async def undecorated(content, context):  # type: ignore[no-untyped-def]
        return content

    def not_async(content, context):  # type: ignore[no-untyped-def]
        return content

    with pytest.raises(ValueError, match="decorate it with @agent"):
        CallableWorker([undecorated])
    with pytest.raises(ValueError, match="two callables serve agent type 'shout'"):
        CallableWorker([shout, agent("shout")(undecorated)])
    with pytest.raises(TypeError, match="wants an async def"):
        agent("sync")(not_async)
    with pytest.raises(ValueError, match="exactly one callable"):
        serve(shout, confirm, agent_type="both")
    with pytest.raises(ValueError, match="needs an agent type name"):
        agent(" ")


async def _ended(client: GatewayClient, message_id: str):  # type: ignore[no-untyped-def]
    import asyncio

    async with asyncio.timeout(10):
        while True:
            record = await client.get_task(message_id)
            if record is not None and record.status.is_terminal:
                return record
            await asyncio.sleep(0.05)
