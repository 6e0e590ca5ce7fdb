"""The backend API: what a package extending the engine (a history store, a framework adapter,
a trace provider) may import besides ``by_framework``'s public names. Everything else in
``by_framework`` is internal and may change in any release; these names hold within a minor
version, and each extension package pins the core to one (``by-framework>=0.1,<0.2``).
``tests/test_engine_boundary.py`` checks that the packages of this repository import nothing
else. A trace provider on OpenTelemetry's SDK builds on ``by_framework.backends.otel``
(extra ``[otel]``).

- History stores: the checks and encodings every store applies the same way (the conformance
  suite, ``by_framework.testing``, holds a store to them).
- Adapters: a run's ``configurable`` checked against the worker's schema, the names of the
  state queries a worker answers, and the redaction of a store URL for log lines.
- Trace providers: the ``TraceProvider`` port and its span vocabulary.
"""

from by_framework.history.backends import redact
from by_framework.history.content import (
    check_append,
    check_limit,
    encode_json,
    encode_metadata,
    parse_cursor,
)
from by_framework.ports import HistoryMessage, HistoryPage
from by_framework.protocol.queries import GET_HISTORY, GET_STATE, UPDATE_STATE
from by_framework.tracing import (
    Attributes,
    AttributeValue,
    ProviderSpan,
    SpanIds,
    SpanKind,
    TraceProvider,
    TraceProviderFactory,
)
from by_framework.worker.configurable import InvalidConfigurableError, validated_configurable

__all__ = [
    "GET_HISTORY",
    "GET_STATE",
    "UPDATE_STATE",
    "AttributeValue",
    "Attributes",
    "HistoryMessage",
    "HistoryPage",
    "InvalidConfigurableError",
    "ProviderSpan",
    "SpanIds",
    "SpanKind",
    "TraceProvider",
    "TraceProviderFactory",
    "check_append",
    "check_limit",
    "encode_json",
    "encode_metadata",
    "parse_cursor",
    "redact",
    "validated_configurable",
]
