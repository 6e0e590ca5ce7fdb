"""Which providers a worker traces to: installed (an entry point in ``by_framework.tracing``)
and configured (every variable it requires set). None: no tracer, nothing recorded."""

import logging
from importlib.metadata import EntryPoint, entry_points

import pytest
import respx
from by_framework_trace_langfuse import LangfuseTraceProvider
from by_framework_trace_phoenix import PhoenixTraceProvider
from by_framework_trace_phoenix.provider import collector

from by_framework import ConfigurationError, Settings, WorkerRunner
from by_framework.redis.engine import RedisEngine
from by_framework.tracing import (
    ENTRY_POINT_GROUP,
    NOOP_SPAN,
    NoopTraceProvider,
    SpanIds,
    TraceProvider,
    discover_tracer,
)
from by_framework.tracing.ids import new_span_id, trace_id_of
from tests.tracing.agents import TracedAgent

LANGFUSE = {"LANGFUSE_PUBLIC_KEY": "pk-discovery", "LANGFUSE_SECRET_KEY": "sk"}
PHOENIX = {"PHOENIX_COLLECTOR_ENDPOINT": "http://127.0.0.1:6006"}


def declared(name: str, target: str) -> EntryPoint:
    return EntryPoint(name, f"tests.tracing.factories:{target}", ENTRY_POINT_GROUP)


def test_both_packages_declare_their_provider() -> None:
    names = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert {"langfuse", "phoenix"} <= names


def test_nothing_configured_means_no_tracer() -> None:
    assert discover_tracer({}) is None


def test_a_provider_is_enabled_by_its_variables_alone() -> None:
    langfuse = discover_tracer(LANGFUSE)
    phoenix = discover_tracer(PHOENIX)
    both = discover_tracer({**LANGFUSE, **PHOENIX})
    assert langfuse is not None and phoenix is not None and both is not None
    assert [type(p) for p in langfuse.providers] == [LangfuseTraceProvider]
    assert [type(p) for p in phoenix.providers] == [PhoenixTraceProvider]
    assert sorted(both.names) == ["langfuse", "phoenix"]
    for tracer in (langfuse, phoenix, both):
        tracer.shutdown()


def test_some_variables_but_not_all_leave_it_off_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "by_framework.tracing"):
        assert discover_tracer({"LANGFUSE_PUBLIC_KEY": "pk-half"}) is None
    assert "langfuse is off: LANGFUSE_PUBLIC_KEY set but LANGFUSE_SECRET_KEY not" in caplog.text


def test_a_declared_factory_gets_the_environment() -> None:
    env = {"RECORDING_ENDPOINT": "http://collector", "RECORDING_TOKEN": "t"}
    tracer = discover_tracer(env, [declared("recording", "recording")])
    assert tracer is not None
    (provider,) = tracer.providers
    assert provider.name == "recording" and provider.endpoint == "http://collector"  # type: ignore[attr-defined]


def test_a_configured_provider_that_cannot_start_stops_the_worker_start() -> None:
    with pytest.raises(ConfigurationError, match=r"'failing' is configured .* URL"):
        discover_tracer({"FAILING_ENDPOINT": "x"}, [declared("failing", "_fail_factory")])


def test_broken_packages_are_left_out_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    broken = [
        EntryPoint("gone", "tests.tracing.no_such_module:factory", ENTRY_POINT_GROUP),
        declared("odd", "not_a_factory"),
    ]
    with caplog.at_level(logging.WARNING, "by_framework.tracing"):
        assert discover_tracer({"RECORDING_ENDPOINT": "x"}, broken) is None
    assert "tracing provider gone (tests.tracing.no_such_module:factory) cannot be" in caplog.text
    assert "is a object, not a TraceProviderFactory" in caplog.text


def test_a_bad_phoenix_endpoint_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="not an http\\(s\\) URL"):
        discover_tracer({"PHOENIX_COLLECTOR_ENDPOINT": "localhost:6006"})
    assert collector("http://h:6006") == ("http://h:6006/v1/traces", "http/protobuf")
    assert collector("https://h/x/v1/traces") == ("https://h/x/v1/traces", "http/protobuf")
    assert collector("http://h:4317") == ("http://h:4317", "grpc")


def test_the_worker_discovers_its_tracer_from_the_environment(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**LANGFUSE, "LANGFUSE_PUBLIC_KEY": "pk-runner"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PHOENIX_COLLECTOR_ENDPOINT", raising=False)
    runner = WorkerRunner(TracedAgent(), RedisEngine.connect(settings), settings)
    assert runner.tracer is not None and runner.tracer.names == ["langfuse"]
    runner.tracer.shutdown()


def test_the_no_op_provider_is_a_provider_that_records_nothing() -> None:
    provider = NoopTraceProvider()
    assert isinstance(provider, TraceProvider)
    span = provider.start_span("task", "task x", SpanIds(trace_id_of("t"), new_span_id()), {})
    assert span is NOOP_SPAN
    span.set_attributes({"a": 1})
    span.end("error")
    provider.shutdown()


def test_trace_ids_are_w3c_shaped_and_the_same_everywhere() -> None:
    assert trace_id_of("4bf92f3577b34da6a3ce929d0e0e4736") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_of("order-42") == trace_id_of("order-42")
    assert len(trace_id_of("order-42")) == 32 and trace_id_of("0" * 32) != "0" * 32
    assert len(new_span_id()) == 16 and new_span_id() != "0" * 16


def test_starting_the_providers_calls_no_rest_api() -> None:
    """No auth check or other REST call (httpx) at worker start: a server that is down or slow
    never holds a worker back. Spans go by OTLP in the background (see test_processes)."""
    with respx.mock(assert_all_called=False) as router:
        tracer = discover_tracer({**LANGFUSE, "LANGFUSE_PUBLIC_KEY": "pk-rest", **PHOENIX})
        assert tracer is not None
        span = tracer.start("task", "task x", "t")
        span.child("call_agent", "call_agent y").end()
        span.end()
    tracer.shutdown()
    assert router.calls.call_count == 0


def test_the_langfuse_client_s_own_rest_calls_go_through_httpx(
    respx_mock: respx.MockRouter,
) -> None:
    """What the provider leaves to the operator (``provider.client``), checkable with respx."""
    route = respx_mock.get("http://langfuse.test/api/public/projects").respond(
        json={
            "data": [
                {
                    "id": "p1",
                    "name": "agents",
                    "organization": {"id": "o", "name": "o"},
                    "metadata": {},
                }
            ]
        }
    )
    provider = LangfuseTraceProvider("pk-auth", "sk", "http://langfuse.test")
    try:
        assert provider.client.auth_check() is True
    finally:
        provider.shutdown()
    assert route.called
    assert route.calls.last.request.headers["authorization"].startswith("Basic ")
