"""The wire format on its own: round trips, tolerance of newer peers, clear rejections."""

import json

import pytest

from by_framework import (
    AgentState,
    AgentTaskResult,
    AskAgentCommand,
    CancelTaskCommand,
    MessageHeader,
    ResumeCommand,
    StreamChunkEvent,
    StreamPartEvent,
)
from by_framework.protocol import MalformedEntry, decode_command, decode_event, encode_command
from by_framework.protocol.codec import encode_event
from by_framework.protocol.ids import new_id


def header(**overrides: object) -> MessageHeader:
    return MessageHeader(session_id="s1", target_agent_type="echo", **overrides)


def test_command_round_trip_keeps_every_field() -> None:
    sent = header(user_code="u1", metadata={"priority": "high"}, parent_message_id="p")
    command = AskAgentCommand(content={"q": [1, "ü"]}, wait_for_reply=True, extra_payload={"k": 1})
    envelope = decode_command({b"e": encode_command(sent, command)})
    assert envelope.header == sent
    assert envelope.command == command


@pytest.mark.parametrize(
    "command",
    [
        ResumeCommand(content="yes", status="Completed", reply_data={"a": 1}),
        CancelTaskCommand(message_ids=["m1", "m2"], reason="user", mode="force"),
    ],
)
def test_commands_are_told_apart_by_type(command: object) -> None:
    envelope = decode_command({b"e": encode_command(header(), command)})  # type: ignore[arg-type]
    assert type(envelope.command) is type(command)
    assert envelope.command == command


def test_unknown_fields_from_a_newer_peer_are_ignored() -> None:
    body = json.loads(encode_command(header(), AskAgentCommand(content="hi")))
    body["future_field"] = 1
    body["header"]["new_header_field"] = "x"
    body["command"]["new_option"] = True
    envelope = decode_command({b"e": json.dumps(body).encode()})
    assert envelope.command.content == "hi"


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({b"e": b"{not json"}, "malformed entry"),
        ({b"x": b"{}"}, "no 'e' field"),
        ({b"e": b'{"v":1,"header":{"session_id":"s"},"command":{"type":"ask_agent"}}'},
         "target_agent_type"),
        ({b"e": b'{"v":1,"header":{"session_id":"s","target_agent_type":"a"},'
                b'"command":{"type":"ask_agent"}}'}, "message_id: Field required"),
        ({b"e": b'{"v":1,"header":{"session_id":"s","target_agent_type":"a","message_id":"m"},'
                b'"command":{"type":"launch_missiles"}}'}, "command"),
        ({b"e": b'{"v":2,"header":{"session_id":"s","target_agent_type":"a","message_id":"m"},'
                b'"command":{"type":"ask_agent"}}'}, "unsupported envelope version 2"),
        ({b"e": b'{"v":1,"header":{"session_id":"s","target_agent_type":"a","message_id":"m"},'
                b'"command":{"type":"ask_agent","wait_for_reply":"maybe"}}'}, "wait_for_reply"),
    ],
)  # fmt: skip
def test_malformed_entries_name_the_problem(fields: dict[bytes, bytes], fragment: str) -> None:
    with pytest.raises(MalformedEntry, match=fragment):
        decode_command(fields)


def test_session_is_recovered_from_a_rejected_entry_when_possible() -> None:
    raw = b'{"v":1,"header":{"session_id":"s9"},"command":{"type":"nope"}}'
    with pytest.raises(MalformedEntry) as caught:
        decode_command({b"e": raw})
    assert caught.value.session_id == "s9"


def test_oversized_entries_are_rejected_before_parsing() -> None:
    big = encode_command(header(), AskAgentCommand(content="x" * 5000))
    with pytest.raises(MalformedEntry, match="over the 4096-byte limit") as caught:
        decode_command({b"e": big}, max_bytes=4096)
    assert caught.value.session_id == "s1"


def test_statuses_parse_case_insensitively() -> None:
    assert AgentTaskResult.coerce({"status": "COMPLETED"}).status is AgentState.COMPLETED
    assert AgentTaskResult.coerce({"status": "Waiting_User"}).status is AgentState.WAITING_USER
    assert AgentTaskResult.coerce(None).status is AgentState.COMPLETED
    with pytest.raises(ValueError, match="a task ends as one of"):
        AgentTaskResult.coerce({"status": "running"})
    with pytest.raises(TypeError, match="must return an AgentTaskResult"):
        AgentTaskResult.coerce("done")  # type: ignore[arg-type]


def test_content_that_is_not_json_is_refused_at_encoding() -> None:
    with pytest.raises(TypeError, match="not JSON-serializable"):
        encode_command(header(), AskAgentCommand(content=object()))


def test_ids_are_long_and_random() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 for i in ids)
    assert len(header().message_id) == 32


def test_event_round_trip() -> None:
    raw = encode_event("m1", "echo", 3, StreamChunkEvent(content="hi", kind="reasoning"))
    event = decode_event("1-0", {b"e": raw})
    assert (event.message_id, event.seq, event.stream_id) == ("m1", 3, "1-0")
    assert event.event == StreamChunkEvent(content="hi", kind="reasoning")
    forged = raw[:-1] + b',"stream_id":"9-9"}'  # an entry cannot say where it was read
    assert decode_event("1-0", {b"e": forged}).stream_id == "1-0"


def test_a_stream_part_is_an_event_of_its_own_kind() -> None:
    part = StreamPartEvent(mode="updates", data={"gather": {"sources": 2}}, namespace=["sub:1"])
    raw = encode_event("m1", "lg", 4, part)
    assert json.loads(raw)["event"]["type"] == "part"
    assert decode_event("1-0", {b"e": raw}).event == part
    custom = decode_event(
        "2-0", {b"e": encode_event("m1", "lg", 5, StreamPartEvent(mode="custom"))}
    )
    assert custom.event == StreamPartEvent(mode="custom", data=None, namespace=[])
