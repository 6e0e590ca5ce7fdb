"""A stand-in for Phoenix and Langfuse on your machine: it takes the spans the workers export
(OTLP/HTTP, protobuf) and, when stopped (Ctrl-C), prints each trace as a tree.

python collector.py --port 4318

Phoenix's exporter posts to ``/v1/traces``, Langfuse's to ``/api/public/otel/v1/traces``; each
trace is printed once per path it came on.
"""

import argparse
import gzip
import signal
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

SOURCES = {"/v1/traces": "phoenix", "/api/public/otel/v1/traces": "langfuse"}
KIND_ATTRIBUTES = ("openinference.span.kind", "langfuse.observation.type")

received: list[tuple[str, Span]] = []  # (source, span), from every request so far
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        source = SOURCES.get(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if source is None:
            self.send_response(404)
            self.end_headers()
            print(f"ignored a POST to {self.path}", flush=True)
            return
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        spans = [
            span
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with lock:
            received.extend((source, span) for span in spans)
        # An empty body is an empty ExportTraceServiceResponse: all spans accepted.
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
        print(f"received {len(spans)} span(s) for {source}", flush=True)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request is printed above instead."""


def attributes(span: Span) -> dict[str, Any]:
    values = {}
    for pair in span.attributes:
        kind = pair.value.WhichOneof("value")
        values[pair.key] = getattr(pair.value, kind) if kind else None
    return values


def describe(span: Span) -> str:
    """``name  agent=… status=… worker=… kind=…``: what the span says, ``error=…`` if it failed."""
    found = attributes(span)
    failed = span.status.code == Status.STATUS_CODE_ERROR
    parts = [f"agent={found['byf.agent_type']}"] if "byf.agent_type" in found else []
    parts.append(f"status={found.get('byf.status', 'error' if failed else 'ok')}")
    if "byf.worker_id" in found:
        parts.append(f"worker={found['byf.worker_id']}")
    parts += [f"kind={found[key]}" for key in KIND_ATTRIBUTES if key in found]
    if failed:
        parts.append(f"error={span.status.message!r}")
    return f"{span.name}  {' '.join(parts)}"


def print_tree(
    span: Span, children: dict[bytes, list[Span]], lead: str = "", branch: str = ""
) -> None:
    """``span`` on a line of its own, then its children below it, one level deeper."""
    print(f"{lead}{branch}{describe(span)}")
    lead += {"": "", "├── ": "│   ", "└── ": "    "}[branch]
    below = children.get(span.span_id, [])
    for n, child in enumerate(below):
        print_tree(child, children, lead, "└── " if n == len(below) - 1 else "├── ")


def print_traces() -> None:
    """Every trace, per source, as trees: a root is a span with no parent (or one whose parent
    never arrived), each child is under its parent, siblings in the order they started."""
    traces: dict[tuple[str, bytes], list[Span]] = defaultdict(list)
    with lock:
        for source, span in sorted(received, key=lambda pair: pair[1].start_time_unix_nano):
            traces[source, span.trace_id].append(span)
    for (source, trace_id), spans in traces.items():
        print(f"trace {trace_id.hex()} from {source}: {len(spans)} spans")
        ids = {span.span_id for span in spans}
        children: dict[bytes, list[Span]] = defaultdict(list)
        for span in spans:
            if span.parent_span_id in ids:
                children[span.parent_span_id].append(span)
        for span in spans:
            if span.parent_span_id not in ids:
                if span.parent_span_id:
                    print(f"(parent {span.parent_span_id.hex()} not received)")
                print_tree(span, children)


def stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the collector as Ctrl-C does


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4318, help="0: any free port")
    server = ThreadingHTTPServer(("127.0.0.1", parser.parse_args().port), Handler)
    print(f"collecting on http://127.0.0.1:{server.server_address[1]}", flush=True)
    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print_traces()


if __name__ == "__main__":
    main()
