"""A worker's spans, exported in memory: one per task run and per call_agent, dispatch_group and
ask_user, in the trace of the header's trace_id, each under its parent."""

import asyncio
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from by_framework import AgentState, GatewayClient, Settings
from by_framework.protocol.ids import sub_call_id
from by_framework.tracing import TraceProvider, trace_id_of
from tests.support import running_worker
from tests.tracing.agents import INSTRUMENTATION, TracedAgent
from tests.tracing.support import SpanView, by_name, from_readable, traced_worker

Provided = tuple[TraceProvider, InMemorySpanExporter]

KIND_ATTRIBUTE = {"langfuse": "langfuse.observation.type", "phoenix": "openinference.span.kind"}
TASK_KIND = {"langfuse": "agent", "phoenix": "AGENT"}


async def until_status(client: GatewayClient, message_id: str, status: AgentState) -> None:
    async with asyncio.timeout(30):
        while (record := await client.get_task(message_id)) is None or record.status is not status:
            await asyncio.sleep(0.02)


def exported(provider: TraceProvider, exporter: InMemorySpanExporter) -> list[SpanView]:
    provider.shutdown()  # flushes; the worker has stopped, so every span has ended
    return from_readable(exporter.get_finished_spans())


async def test_a_chain_of_calls_is_one_trace_with_each_task_under_its_call(
    client: GatewayClient, settings: Settings, provider_and_spans: Provided
) -> None:
    provider, exporter = provider_and_spans
    async with traced_worker(TracedAgent(), settings, [provider]):
        content = {"op": "chain", "via": ["trace_b", "trace_c"]}
        sent = await client.send_message("trace_a", "s-trace", content, user_code="u-7")
        result = await client.wait_for_result(sent.message_id, timeout=30)
    assert result.content == ["trace_a", "trace_b", "trace_c"]
    spans = by_name(exported(provider, exporter))
    assert set(spans) == {
        "task trace_a", "call_agent trace_b", "task trace_b", "call_agent trace_c",
        "task trace_c",
    }  # fmt: skip
    assert {span.trace_id for span in spans.values()} == {sent.trace_id}
    a, b, c = spans["task trace_a"], spans["task trace_b"], spans["task trace_c"]
    call_b, call_c = spans["call_agent trace_b"], spans["call_agent trace_c"]
    assert a.parent_span_id is None
    assert call_b.parent_span_id == a.span_id
    assert b.parent_span_id == call_b.span_id
    assert call_c.parent_span_id == b.span_id
    assert c.parent_span_id == call_c.span_id
    assert a.attributes["byf.agent_type"] == "trace_a"
    assert a.attributes["byf.session_id"] == a.attributes["session.id"] == "s-trace"
    assert a.attributes["byf.message_id"] == sent.message_id
    assert a.attributes["byf.status"] == "completed"
    assert a.attributes["user.id"] == "u-7"
    assert b.attributes["byf.parent_message_id"] == sent.message_id
    assert b.attributes["byf.message_id"] == call_b.attributes["byf.child_message_id"]
    assert call_b.attributes["byf.status"] == "completed"
    assert a.error is None
    name = provider.name
    assert a.attributes[KIND_ATTRIBUTE[name]] == TASK_KIND[name]


async def test_a_failed_task_span_carries_the_error(
    client: GatewayClient, settings: Settings, provider_and_spans: Provided
) -> None:
    provider, exporter = provider_and_spans
    async with traced_worker(TracedAgent(), settings, [provider]):
        sent = await client.send_message("trace_a", "s-fail", {"op": "fail"})
        result = await client.wait_for_result(sent.message_id, timeout=30)
    assert result.status is AgentState.FAILED
    task = by_name(exported(provider, exporter))["task trace_a"]
    assert task.attributes["byf.status"] == "failed"
    assert task.error == task.attributes["byf.error"] == "RuntimeError: asked to fail"


async def test_a_group_s_children_sit_under_the_dispatch_group_span(
    client: GatewayClient, settings: Settings, provider_and_spans: Provided
) -> None:
    provider, exporter = provider_and_spans
    async with traced_worker(TracedAgent(), settings, [provider]):
        sent = await client.send_message(
            "trace_a", "s-fan", {"op": "fanout", "targets": ["trace_b", "trace_c"]}
        )
        result = await client.wait_for_result(sent.message_id, timeout=30)
    assert result.content == [["trace_b"], ["trace_c"]]
    spans = by_name(exported(provider, exporter))
    group = spans["dispatch_group"]
    assert group.parent_span_id == spans["task trace_a"].span_id
    assert spans["task trace_b"].parent_span_id == group.span_id
    assert spans["task trace_c"].parent_span_id == group.span_id
    assert group.attributes["byf.calls"] == 2
    assert (
        spans["task trace_b"].attributes["byf.task_group_id"]
        == group.attributes["byf.task_group_id"]
    )


async def test_ask_user_is_a_span_of_the_task_that_waits(
    client: GatewayClient, settings: Settings, provider_and_spans: Provided
) -> None:
    provider, exporter = provider_and_spans
    async with traced_worker(TracedAgent(), settings, [provider]):
        sent = await client.send_message("trace_a", "s-ask", {"op": "ask"}, trace_id="order-42")
        result = await client.wait_for_result(sent.message_id, timeout=30)
    assert result.status is AgentState.WAITING_USER
    spans = by_name(exported(provider, exporter))
    task, ask = spans["task trace_a"], spans["ask_user"]
    assert ask.parent_span_id == task.span_id
    assert task.attributes["byf.status"] == "waiting_user"
    # a trace id that is not 32 hex digits maps to one that is, the same in every process
    assert task.trace_id == ask.trace_id == trace_id_of("order-42") != "order-42"
    assert task.attributes["byf.trace_id"] == "order-42"


async def test_spans_the_task_s_code_opens_through_opentelemetry_go_under_its_span(
    client: GatewayClient, settings: Settings, provider_and_spans: Provided
) -> None:
    provider, exporter = provider_and_spans
    INSTRUMENTATION.clear()
    async with traced_worker(TracedAgent(), settings, [provider]):
        sent = await client.send_message("trace_a", "s-llm", {"op": "instrumented"})
        await client.wait_for_result(sent.message_id, timeout=30)
    task = by_name(exported(provider, exporter))["task trace_a"]
    (llm,) = from_readable(INSTRUMENTATION.get_finished_spans())
    assert (llm.trace_id, llm.parent_span_id) == (task.trace_id, task.span_id)


async def test_a_resumed_child_run_stays_under_the_call_that_waits_for_it(
    client: GatewayClient, settings: Settings, provider_and_spans: Provided
) -> None:
    provider, exporter = provider_and_spans
    async with traced_worker(TracedAgent(), settings, [provider]):
        content = {"op": "chain", "via": ["trace_b"], "child": {"op": "ask"}}
        sent = await client.send_message("trace_a", "s-resume", content)
        child = sub_call_id(sent.message_id, 0, 0)
        await until_status(client, child, AgentState.WAITING_USER)
        await client.resume(child, "s-resume", "yes")
        result = await client.wait_for_result(sent.message_id, timeout=30)
    assert result.content == ["trace_a", "trace_b"]
    spans = exported(provider, exporter)
    (call,) = [span for span in spans if span.name == "call_agent trace_b"]
    runs = sorted(
        (span for span in spans if span.name == "task trace_b"),
        key=lambda span: span.attributes["byf.run"],
    )
    assert [run.attributes["byf.command"] for run in runs] == ["ask_agent", "resume"]
    assert [run.attributes["byf.status"] for run in runs] == ["waiting_user", "completed"]
    assert [run.parent_span_id for run in runs] == [call.span_id, call.span_id]
    assert {span.trace_id for span in spans} == {sent.trace_id}


async def test_a_run_handed_back_at_shutdown_ends_its_span_as_interrupted(
    client: GatewayClient, settings: Settings, provider_and_spans: Provided
) -> None:
    provider, exporter = provider_and_spans
    quick = settings.model_copy(update={"shutdown_timeout": 0.2})
    async with traced_worker(TracedAgent(), quick, [provider]):
        sent = await client.send_message("trace_a", "s-stop", {"op": "sleep", "seconds": 60})
        await until_status(client, sent.message_id, AgentState.RUNNING)
    spans = by_name(exported(provider, exporter))
    task, nap = spans["task trace_a"], spans["nap"]
    assert task.attributes["byf.status"] == "interrupted"
    assert nap.parent_span_id == task.span_id
    assert nap.attributes["byf.status"] == "cancelled"
    assert (await client.get_task(sent.message_id)).status is not AgentState.COMPLETED  # type: ignore[union-attr]


class Broken:
    """A provider that fails at every step it is asked to take."""

    name = "broken"

    def __init__(self, fail_on: str) -> None:
        self.fail_on = fail_on

    def start_span(self, kind: str, name: str, ids: Any, attributes: Any) -> Any:
        if self.fail_on == "start":
            raise ConnectionError("collector unreachable")
        return self

    def set_attributes(self, attributes: Any) -> None:
        raise ValueError("bad attribute")

    def end(self, error: str | None) -> None:
        raise ConnectionError("collector unreachable")

    def shutdown(self) -> None:
        raise ConnectionError("collector unreachable")


@pytest.mark.parametrize("fail_on", ["start", "later"])
async def test_a_failing_provider_never_fails_a_task_nor_the_other_providers(
    client: GatewayClient,
    settings: Settings,
    provider_and_spans: Provided,
    fail_on: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, exporter = provider_and_spans
    async with traced_worker(TracedAgent(), settings, [Broken(fail_on), provider]):
        sent = await client.send_message("trace_a", "s-broken", {"op": "chain", "via": ["trace_b"]})
        result = await client.wait_for_result(sent.message_id, timeout=30)
    assert result.content == ["trace_a", "trace_b"]
    assert {"task trace_a", "task trace_b"} <= set(by_name(exported(provider, exporter)))
    assert "tracing provider broken failed" in caplog.text


async def test_an_unreachable_collector_never_fails_a_task(
    client: GatewayClient, settings: Settings
) -> None:
    from by_framework_trace_langfuse import LangfuseTraceProvider
    from by_framework_trace_phoenix import PhoenixTraceProvider

    langfuse = LangfuseTraceProvider("pk-unreachable", "sk", "http://127.0.0.1:1")
    phoenix = PhoenixTraceProvider("http://127.0.0.1:1/v1/traces")
    async with traced_worker(TracedAgent(), settings, [langfuse, phoenix]):
        sent = await client.send_message("trace_a", "s-down", {"op": "chain", "via": ["trace_b"]})
        result = await client.wait_for_result(sent.message_id, timeout=30)
    assert result.content == ["trace_a", "trace_b"]  # and the worker shut down: export gave up


async def test_without_a_provider_a_worker_has_no_tracer_and_tasks_no_span(
    client: GatewayClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "PHOENIX_COLLECTOR_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    async with running_worker(TracedAgent(), settings) as runner:
        assert runner.tracer is None
        sent = await client.send_message("trace_a", "s-plain", {"op": "probe"})
        result = await client.wait_for_result(sent.message_id, timeout=30)
    assert result.content == {"traced": False}
