"""The header's ``parent_span_id``: validated like every other field, optional on the wire."""

import json

import pytest

from by_framework.protocol import (
    AskAgentCommand,
    MalformedEntry,
    MessageHeader,
    decode_command,
    encode_command,
)
from by_framework.protocol.codec import ENTRY_FIELD


def entry(header: dict[str, object]) -> dict[bytes, bytes]:
    body = {"v": 1, "header": header, "command": {"type": "ask_agent", "content": "hi"}}
    return {ENTRY_FIELD: json.dumps(body).encode()}


def test_a_header_without_it_decodes_and_encodes_without_it() -> None:
    old = entry({"message_id": "m", "session_id": "s", "trace_id": "t", "target_agent_type": "a"})
    envelope = decode_command(old, 1 << 20)
    assert envelope.header.parent_span_id is None
    wire = json.loads(encode_command(envelope.header, AskAgentCommand(content="hi")))
    assert "parent_span_id" not in wire["header"]


def test_it_round_trips() -> None:
    header = MessageHeader(session_id="s", target_agent_type="a", parent_span_id="00f067aa0ba902b7")
    decoded = decode_command({ENTRY_FIELD: encode_command(header, AskAgentCommand())}, 1 << 20)
    assert decoded.header.parent_span_id == "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0000000000000000", "must not be all zeros"),
        ("00F067AA0BA902B7", "should match pattern"),
        ("00f067aa0ba902b", "should match pattern"),
        (17, "should be a valid string"),
    ],
)
def test_a_malformed_one_makes_the_entry_malformed(value: object, problem: str) -> None:
    header = {"session_id": "s", "target_agent_type": "a", "parent_span_id": value}
    with pytest.raises(MalformedEntry, match="parent_span_id") as raised:
        decode_command(entry(header), 1 << 20)
    assert problem in raised.value.reason
    assert raised.value.session_id == "s"
