"""A minimal HTTP/1.1 client for JSON POSTs on one keep-alive connection, standard library only.

The gateway bench's latency probe sends through it so that the figure is the gateway's and not a
Python HTTP library's: httpx costs about a millisecond of client CPU per request on the bench's
machine, which a browser's native ``fetch`` does not pay. It speaks only what the probe needs:
a JSON body out, a response with a Content-Length back (the gateway's JSON answers have one).
"""

import asyncio
import json
from typing import Any


class Http1Error(Exception):
    """The server answered something this client does not read (no Content-Length) or closed."""


class Http1Connection:
    """One keep-alive connection, opened again when the server closed it while idle (uvicorn
    does after 5 s): a request is never sent twice."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()  # one request at a time on the connection

    async def post_json(self, path: str, body: Any, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST ``body`` as JSON; the response's status and body."""
        data = json.dumps(body).encode()
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (
            f"POST {path} HTTP/1.1\r\nHost: bench\r\n{head}Content-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode() + data
        async with self._lock:
            if self._reader is None or self._writer is None or self._reader.at_eof():
                await self.aclose()
                self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
            self._writer.write(request)
            try:
                response_head = await self._reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                raise Http1Error("the server closed the connection") from exc
            status_line, *lines = response_head.decode("latin-1").split("\r\n")
            fields = dict(line.lower().split(": ", 1) for line in lines if ": " in line)
            if "content-length" not in fields:
                raise Http1Error(f"no Content-Length in the response: {status_line}")
            content = await self._reader.readexactly(int(fields["content-length"]))
        return int(status_line.split()[1]), content

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()
            self._reader = self._writer = None
