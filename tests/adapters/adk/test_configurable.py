"""Per-run configuration, one agent and many configs: a message's ``configurable`` goes into the
ADK session state, where the agent's instruction template and its tools read it, checked
against the worker's schema. Real worker processes, the scripted FakeLlm."""

from typing import Any

from by_framework_adk import session_service_from_url

from by_framework import AgentState, AgentTaskResult, GatewayClient
from tests.adapters.adk.conftest import Serve


async def _ask(
    client: GatewayClient, agent_type: str, session_id: str, **configurable: Any
) -> AgentTaskResult:
    sent = await client.send_message(
        agent_type, session_id, "who are you?", user_code="ada", configurable=configurable
    )
    return await client.wait_for_result(sent.message_id, timeout=30)


async def test_the_instruction_and_the_tools_see_each_message_values_which_persist(
    client: GatewayClient, session_url: str, serve: Serve
) -> None:
    await serve("PersonaWorker")
    pirate = await _ask(client, "persona", "s-persona", persona="a pirate", tenant="acme")
    butler = await _ask(client, "persona", "s-persona", persona="a butler", **{"temp:mood": "dry"})
    plain = await _ask(client, "persona", "s-persona")
    other = await _ask(client, "persona", "s-other", persona="a pirate", tenant="globex")

    assert [r.status for r in (pirate, butler, plain, other)] == [AgentState.COMPLETED] * 4
    assert pirate.content == "You are a pirate. Tenant: acme."
    assert butler.content == "You are a butler. Tenant: acme."  # the tenant from before
    assert plain.content == "You are a butler. Tenant: acme."  # no values: the last ones
    assert other.content == "You are a pirate. Tenant: globex."
    # the values live in the shared session store, less the temp: one (ADK keeps it in memory)
    store = session_service_from_url(session_url)
    session = await store.get_session(app_name="persona", user_id="ada", session_id="s-persona")
    assert session is not None
    assert session.state == {"persona": "a butler", "tenant": "acme"}


async def test_the_schema_refuses_bad_values_by_name_and_fills_in_its_defaults(
    client: GatewayClient, serve: Serve
) -> None:
    await serve("PersonaSchemaWorker")
    bad = await _ask(client, "persona-schema", "s-schema", persona="a ninja")
    defaults = await _ask(client, "persona-schema", "s-schema", tenant="acme")

    assert bad.status is AgentState.FAILED and bad.error is not None
    assert bad.error.startswith("configurable does not fit TenantSettings: ")
    assert "persona: Input should be 'a pirate' or 'a butler' (got 'a ninja')" in bad.error
    assert "tenant: Field required" in bad.error
    assert defaults.status is AgentState.COMPLETED, defaults.error
    assert defaults.content == "You are a butler. Tenant: acme."
