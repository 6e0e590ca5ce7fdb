"""Identifiers: 128-bit random, so that ids from many clients never collide."""

import uuid


def new_id() -> str:
    """A fresh uuid4 in hex (32 characters)."""
    return uuid.uuid4().hex
