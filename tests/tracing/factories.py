"""Entry-point targets for the discovery tests (loaded by ``importlib.metadata.EntryPoint``)."""

from collections.abc import Mapping

from by_framework.tracing import NoopTraceProvider, TraceProvider, TraceProviderFactory


class Recording(NoopTraceProvider):
    name = "recording"

    def __init__(self, env: Mapping[str, str]) -> None:
        self.endpoint = env["RECORDING_ENDPOINT"]


def _fail(env: Mapping[str, str]) -> TraceProvider:
    raise ValueError("RECORDING_ENDPOINT must be a URL")


recording = TraceProviderFactory("recording", ("RECORDING_ENDPOINT", "RECORDING_TOKEN"), Recording)
_fail_factory = TraceProviderFactory("failing", ("FAILING_ENDPOINT",), _fail)
not_a_factory = object()
