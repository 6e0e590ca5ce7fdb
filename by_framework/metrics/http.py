"""A minimal HTTP/1.1 server for scrapes and probes, in the caller's event loop.

GET only, one request per connection (``Connection: close``), the request head bounded in size
and time, responses made by plain functions. That is all Prometheus and Kubernetes ask of a
probe port, and it keeps a web framework out of the worker.
"""

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from http import HTTPStatus

Response = tuple[int, str, bytes]
"""Status, content type, body."""
Route = Callable[[], Response]

MAX_HEAD_BYTES = 8192
HEAD_TIMEOUT_S = 5.0
TEXT = "text/plain; charset=utf-8"


async def serve_http(host: str, port: int, routes: Mapping[str, Route]) -> asyncio.Server:
    """Listen on ``host:port``, answering each path of ``routes`` (query strings ignored)."""

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(HEAD_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            writer.write(_answer(head, routes))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            pass  # a client that went away, or sent no request we could read: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return await asyncio.start_server(exchange, host, port, limit=MAX_HEAD_BYTES)


def _answer(head: bytes, routes: Mapping[str, Route]) -> bytes:
    method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
    path = rest.partition(" ")[0].partition("?")[0]
    route = routes.get(path)
    if route is None:
        status, content_type, body = 404, TEXT, f"no {path!r} here\n".encode()
    elif method != "GET":
        status, content_type, body = 405, TEXT, b"GET only\n"
    else:
        status, content_type, body = route()
    phrase = HTTPStatus(status).phrase
    return (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
