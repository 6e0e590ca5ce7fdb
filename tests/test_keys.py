"""Placed message ids: a new task's index falls in its session's slot (keys.py)."""

from binascii import crc_hqx

import pytest
from redis.crc import key_slot

from by_framework.protocol.ids import new_id
from by_framework.redis.keys import KeySpace, _suffix


def slot(key: str) -> int:
    return key_slot(key.encode())


@pytest.mark.parametrize("prefix", ["byai_gateway", "p", "a:b-c"])
def test_a_placed_ids_index_shares_its_sessions_slot(prefix: str) -> None:
    keys = KeySpace(prefix)
    for n in range(500):
        session = f"session-{n}" if n % 2 else new_id()
        message_id = new_id()
        placed = keys.placed_id(message_id, session)
        assert slot(keys.task_index(placed)) == slot(keys.session_registry(session))
        assert placed[:27] == message_id[:27] and len(placed) == 32
        assert set(placed) <= set("0123456789abcdef")
        assert keys.placed_id(message_id, session) == placed  # the same every time


def test_every_slot_has_a_placing_suffix() -> None:
    for residue in range(16384):
        suffix = _suffix(residue)
        assert len(suffix) == 5 and set(suffix) <= set("0123456789abcdef")
        assert crc_hqx(suffix.encode(), 0) % 16384 == residue


def test_ids_that_cannot_be_placed_are_left_as_they_are() -> None:
    assert KeySpace("p").placed_id("abc12", "s1") == "abc12"  # nothing would be left of it
    tagged = KeySpace("app{x}")  # the prefix's own tag decides every index's slot
    assert tagged.placed_id("0123456789abcdef", "s1") == "0123456789abcdef"


def test_an_id_of_another_form_keeps_its_head() -> None:
    keys = KeySpace("p")
    placed = keys.placed_id("task-of-user-7", "s1")
    assert placed.startswith("task-of-u")
    assert slot(keys.task_index(placed)) == slot(keys.session_registry("s1"))
