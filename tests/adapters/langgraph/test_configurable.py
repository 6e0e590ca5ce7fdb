"""Per-run configuration, one graph and many configs: a message's ``configurable`` reaches the
graph's ``config["configurable"]`` (over the worker's defaults) and its context, is checked
against the worker's schema, and stays with the task through an interrupt answered on another
worker. Real worker processes sharing a PostgreSQL checkpointer."""

from typing import Any

from by_framework import AgentState, AgentTaskResult, GatewayClient
from tests.support import output_of


async def _ask(
    client: GatewayClient, agent_type: str, session_id: str, content: str, **configurable: Any
) -> AgentTaskResult:
    sent = await client.send_message(agent_type, session_id, content, configurable=configurable)
    return await client.wait_for_result(sent.message_id, timeout=30)


async def test_each_message_runs_the_graph_with_its_own_values_over_the_worker_defaults(
    client: GatewayClient, workers: Any
) -> None:
    await workers(**{"persona-1": "PersonaWorker"})
    pirate = await _ask(client, "lg-persona", "s-persona", "hi", persona="a pirate")
    poet = await _ask(client, "lg-persona", "s-persona", "and now?", persona="a poet", model="big")
    plain = await _ask(client, "lg-persona", "s-persona", "plain")

    assert [r.status for r in (pirate, poet, plain)] == [AgentState.COMPLETED] * 3
    # one thread, three configs: the message overrides a default, the other default stays
    assert pirate.content == "a pirate on small answers 'hi' (question 1 on the thread)"
    assert poet.content == "a poet on big answers 'and now?' (question 2 on the thread)"
    # no values: the worker's config= defaults (a message's values do not stick to the thread)
    assert plain.content == "a butler on small answers 'plain' (question 3 on the thread)"


async def test_a_message_naming_a_key_langgraph_reserves_fails_without_a_run(
    client: GatewayClient, workers: Any
) -> None:
    await workers(**{"persona-1": "PersonaWorker"})
    thread = await _ask(client, "lg-persona", "s-reserved", "hi", thread_id="another-thread")
    internal = await _ask(client, "lg-persona", "s-reserved", "hi", __pregel_send="x", tone="dry")
    checkpoint = await _ask(client, "lg-persona", "s-reserved", "hi", checkpoint_id="1ef")
    after = await _ask(client, "lg-persona", "s-reserved", "after")

    for refused, key in [(thread, "thread_id"), (internal, "__pregel_send"),
                         (checkpoint, "checkpoint_id")]:  # fmt: skip
        assert refused.status is AgentState.FAILED
        assert refused.error is not None
        assert refused.error.startswith(f"configurable names {key}: LangGraph reserves")
    # the refused messages never reached the graph: the next one is the thread's first question
    assert after.content == "a butler on small answers 'after' (question 1 on the thread)"


async def test_the_schema_refuses_bad_values_by_name_and_fills_in_its_defaults(
    client: GatewayClient, workers: Any
) -> None:
    await workers(**{"schema-1": "PersonaSchemaWorker"})
    agent = "lg-persona-schema"
    bad = await _ask(client, agent, "s-schema", "hi", persona="a ninja", temperature=5)
    defaults = await _ask(client, agent, "s-schema", "hello")
    pirate = await _ask(client, agent, "s-schema", "ahoy", persona="a pirate", temperature="0.5")

    assert bad.status is AgentState.FAILED and bad.error is not None
    assert bad.error.startswith("configurable does not fit PersonaSettings: ")
    assert "persona: Input should be 'a pirate' or 'a butler' (got 'a ninja')" in bad.error
    assert "temperature: Input should be less than or equal to 2 (got 5)" in bad.error
    # persona and model from the run's context, temperature from config["configurable"]: both
    # hold the schema's defaults; the refused message never ran (question 1 is "hello")
    assert defaults.status is AgentState.COMPLETED, defaults.error
    assert defaults.content == "a butler on small at 0.0 answers 'hello' (question 1 on the thread)"
    assert pirate.content == "a pirate on small at 0.5 answers 'ahoy' (question 2 on the thread)"


async def test_a_resume_on_another_worker_runs_with_the_original_message_values(
    client: GatewayClient, workers: Any
) -> None:
    processes = await workers(**{"asks-a": "PersonaAsksWorker", "asks-b": "PersonaAsksWorker"})
    sent = await client.send_message(
        "lg-persona-asks", "s-asks", "hi", configurable={"persona": "a pirate"}
    )
    asked = await client.wait_for_result(sent.message_id, timeout=30)
    assert asked.status is AgentState.WAITING_USER, asked.error
    assert asked.content == "Shall I answer?"
    record = await client.get_task(sent.message_id)
    assert record is not None
    asker = record.worker_id
    other = ({"asks-a", "asks-b"} - {asker}).pop()
    processes[asker].terminate()  # the answer can only go to the other worker
    assert processes[asker].wait(timeout=20) == 0, output_of(processes[asker])

    await client.resume(sent.message_id, "s-asks", content="go ahead")  # carries no values
    result = await client.wait_for_result(sent.message_id, timeout=30)

    assert result.status is AgentState.COMPLETED, result.error
    assert result.content == f"a pirate heard 'go ahead' in process {processes[other].pid}"
    final = await client.get_task(sent.message_id)
    assert final is not None and final.worker_id == other and final.run == 1
