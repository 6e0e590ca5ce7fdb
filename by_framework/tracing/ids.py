"""Trace-context ids (W3C ``traceparent`` shapes) from the engine's own ids."""

import hashlib
import random
import re

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
SPAN_ID_PATTERN = r"^[0-9a-f]{16}$"
_ZERO_TRACE = "0" * 32


def trace_id_of(header_trace_id: str) -> str:
    """The 32-hex-digit trace id of a header's ``trace_id``: itself when it already is one (the
    engine's default, 32 random hex digits), else a digest of it, the same in every process."""
    if _TRACE_ID.fullmatch(header_trace_id) and header_trace_id != _ZERO_TRACE:
        return header_trace_id
    return hashlib.sha256(header_trace_id.encode()).hexdigest()[:32]


def new_span_id() -> str:
    """16 random hex digits, never all zeros (invalid in W3C trace context). Not for secrets:
    span ids only need to be unique within a trace."""
    return f"{random.getrandbits(64) or 1:016x}"
