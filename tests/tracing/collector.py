"""A local OTLP/HTTP collector for the tests: a real HTTP server on 127.0.0.1 that keeps the
spans POSTed to it (protobuf, gzipped or not), from this process or any other."""

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.tracing.support import SpanView


class Collector:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self._lock = threading.Lock()

    def keep(self, path: str, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            self.requests.append((path, headers, body))

    def spans(self, path: str) -> list[SpanView]:
        """Every span POSTed to ``path``, with its resource's attributes merged in."""
        views = []
        with self._lock:
            bodies = [body for at, _, body in self.requests if at == path]
        for body in bodies:
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        error = span.status.message if span.status.code == 2 else None
                        views.append(
                            SpanView(
                                span.name,
                                span.trace_id.hex(),
                                span.span_id.hex(),
                                span.parent_span_id.hex() or None,
                                {**resource, **_attributes(span.attributes)},
                                error,
                            )
                        )
        return views


def _attributes(pairs: object) -> dict[str, object]:
    out: dict[str, object] = {}
    for pair in pairs:  # type: ignore[attr-defined]
        value = pair.value
        kind = value.WhichOneof("value")
        out[pair.key] = getattr(value, kind) if kind else None
    return out


@contextmanager
def running_collector() -> Iterator[Collector]:
    collector: Collector

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            # Names lowered: HTTP's are case-insensitive, and OpenTelemetry's exporter sends
            # them lowered from 1.45 on (langfuse 4.16+ and 5.x, which install without ADK).
            headers = {name.lower(): value for name, value in self.headers.items()}
            collector.keep(self.path, headers, body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    collector = Collector(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        server.shutdown()
        server.server_close()
