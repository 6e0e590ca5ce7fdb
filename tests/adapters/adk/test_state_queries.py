"""An ADK session's state read, paged and changed from a process that has no session store
(this test holds only Redis): the worker answers from the store it shares with its replicas."""

import pytest

from by_framework import GatewayClient, QueryError
from tests.adapters.adk.conftest import Serve

AGENT = "persona"
SESSION = "s-state"


async def ask(client: GatewayClient, **configurable: str) -> str:
    sent = await client.send_message(
        AGENT, SESSION, "who are you?", user_code="ada", configurable=configurable
    )
    answer: str = (await client.wait_for_result(sent.message_id, timeout=30)).content
    return answer


async def test_state_history_and_update_from_a_process_without_the_session_store(
    client: GatewayClient, session_url: str, serve: Serve
) -> None:
    await serve("PersonaWorker")
    assert await ask(client, persona="a pirate", tenant="acme") == "You are a pirate. Tenant: acme."
    state = await client.get_state(SESSION, AGENT, user_code="ada")
    assert state["state"] == {"persona": "a pirate", "tenant": "acme"}
    assert state["user_id"] == "ada" and state["events"] > 0

    first = await client.get_history(SESSION, AGENT, user_code="ada", limit=2)
    rest = await client.get_history(
        SESSION, AGENT, user_code="ada", limit=50, before=first[-1]["id"]
    )
    assert len(first) == 2 and len(first) + len(rest) == state["events"]
    assert rest[-1]["author"] == "user"  # the oldest: the question
    assert first[0]["author"] != "user"  # the newest: the answer

    await client.update_state(SESSION, AGENT, {"persona": "a butler"}, user_code="ada")
    assert await ask(client) == "You are a butler. Tenant: acme."
    with pytest.raises(QueryError, match="no event 'nope'"):
        await client.get_history(SESSION, AGENT, user_code="ada", before="nope")
