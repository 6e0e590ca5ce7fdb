"""Across worker processes: A on one worker calls B on another, which calls C back on the first.
Each process exports its own spans over OTLP/HTTP to a local collector, enabled by environment
variables alone; together they make one trace, each task under the call that made it."""

import base64
import subprocess

import pytest

from by_framework import GatewayClient, Settings
from tests.support import output_of, wait_online, worker_process
from tests.tracing.collector import Collector, running_collector
from tests.tracing.support import by_name

UNSET = {
    "LANGFUSE_PUBLIC_KEY": "",
    "LANGFUSE_SECRET_KEY": "",
    "LANGFUSE_BASE_URL": "",
    "LANGFUSE_HOST": "",
    "PHOENIX_COLLECTOR_ENDPOINT": "",
    "PHOENIX_PROJECT_NAME": "",
}


def provider_env(provider: str, collector: Collector, public_key: str) -> tuple[dict, str]:
    """The variables that enable ``provider`` against the collector, and the path it posts to."""
    if provider == "langfuse":
        env = {
            "LANGFUSE_PUBLIC_KEY": public_key,
            "LANGFUSE_SECRET_KEY": "sk-test",
            "LANGFUSE_BASE_URL": collector.url,
        }
        return {**UNSET, **env}, "/api/public/otel/v1/traces"
    env = {"PHOENIX_COLLECTOR_ENDPOINT": collector.url, "PHOENIX_PROJECT_NAME": "byf-tests"}
    return {**UNSET, **env}, "/v1/traces"


def stop(process: subprocess.Popen[str]) -> None:
    """A graceful stop (SIGTERM): the worker exports what it queued before it exits."""
    process.terminate()
    try:
        assert process.wait(timeout=30) == 0, output_of(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("provider", ["langfuse", "phoenix"])
async def test_a_to_b_to_c_across_processes_is_one_trace_correctly_parented(
    client: GatewayClient, settings: Settings, provider: str
) -> None:
    with running_collector() as collector:
        env, path = provider_env(provider, collector, "pk-processes")
        outer = worker_process(settings, "w-outer", "tests.tracing.agents.OuterAgent", env=env)
        middle = worker_process(settings, "w-middle", "tests.tracing.agents.MiddleAgent", env=env)
        try:
            await wait_online(client, "w-outer")
            await wait_online(client, "w-middle")
            content = {"op": "chain", "via": ["trace_b", "trace_c"]}
            sent = await client.send_message("trace_a", "s-procs", content)
            result = await client.wait_for_result(sent.message_id, timeout=60)
        finally:
            for process in (outer, middle):
                stop(process)
        spans = by_name(collector.spans(path))
        requests = [headers for at, headers, _ in collector.requests if at == path]
    assert result.content == ["trace_a", "trace_b", "trace_c"]
    a, b, c = spans["task trace_a"], spans["task trace_b"], spans["task trace_c"]
    call_b, call_c = spans["call_agent trace_b"], spans["call_agent trace_c"]
    assert len(spans) == 5
    assert {span.trace_id for span in spans.values()} == {sent.trace_id}
    assert a.parent_span_id is None
    assert (call_b.parent_span_id, b.parent_span_id) == (a.span_id, call_b.span_id)
    assert (call_c.parent_span_id, c.parent_span_id) == (b.span_id, call_c.span_id)
    # each span is exported by the process that ran its task: A and C by one, B by the other
    assert a.attributes["byf.worker_id"] == c.attributes["byf.worker_id"] == "w-outer"
    assert b.attributes["byf.worker_id"] == "w-middle"
    if provider == "langfuse":
        auth = "Basic " + base64.b64encode(b"pk-processes:sk-test").decode()
        assert {headers["authorization"] for headers in requests} == {auth}
        assert a.attributes["langfuse.observation.type"] == "agent"
    else:
        assert a.attributes["openinference.project.name"] == "byf-tests"
        assert a.attributes["openinference.span.kind"] == "AGENT"
