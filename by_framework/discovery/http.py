"""DiscoveryHttpClient: HTTP requests to a service by name, failing over between its nodes."""

import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

import httpx

from by_framework.discovery.client import DiscoveryClient
from by_framework.discovery.errors import InvalidServiceError, ServiceUnavailableError
from by_framework.discovery.model import ServiceInstance, check_name, join_url

log = logging.getLogger("by_framework.discovery")

DEFAULT_MAX_ATTEMPTS = 3
# Errors raised before the request left: safe to send elsewhere whatever the method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _describe(error: BaseException) -> str:
    if isinstance(error, httpx.HTTPStatusError):
        response = error.response
        return f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class DiscoveryHttpClient:
    """Sends HTTP requests to a service by name, on ``httpx.AsyncClient``.

    Each request goes to the node the ``DiscoveryClient`` picks (round-robin). On a connection
    error (any ``httpx.TransportError``, timeouts included) or a 5xx response it is sent to the
    next node, up to ``max_attempts`` nodes, each at most once; when all fail,
    ``ServiceUnavailableError`` names the service, the nodes tried and the last error. Any
    other response (2xx, 3xx, 4xx) is returned as it is.

    Retrying resends the request: with ``retry_methods`` (say ``{"GET", "PUT", "DELETE"}``)
    only those methods are retried after the request may have reached a node; other methods are
    retried only when the connection failed (the request never left), and otherwise return the
    5xx response or raise the transport error. Bodies must be resendable (bytes, str, ``json``,
    ``data``), not streams.

    ``http_client``: an ``httpx.AsyncClient`` to use (yours to close); by default the client
    makes its own with ``timeout`` and closes it in ``aclose``.
    """

    def __init__(
        self,
        discovery: DiscoveryClient,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float | httpx.Timeout | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry_methods: Iterable[str] | None = None,
    ) -> None:
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise InvalidServiceError(f"bad max_attempts {max_attempts!r}: give an integer >= 1")
        if http_client is not None and timeout is not None:
            raise InvalidServiceError("give timeout or http_client, not both: set it on yours")
        self.discovery = discovery
        self.max_attempts = max_attempts
        self.retry_methods = (
            None if retry_methods is None else frozenset(m.upper() for m in retry_methods)
        )
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=timeout if timeout is not None else httpx.Timeout(10.0, connect=3.0)
        )

    async def request(self, method: str, service: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send ``method path`` to a node of ``service`` and return the response (body read).

        ``kwargs`` go to ``httpx.AsyncClient.request`` (``params``, ``headers``, ``json``,
        ``content``, ``timeout``, ...). Raises ``NoHealthyNodeError`` when no node is registered,
        ``ServiceUnavailableError`` when every attempt failed.
        """
        check_name(service, "service name")
        join_url("http://node", path)  # a bad path fails before any node is tried
        method = method.upper()
        resend_ok = self.retry_methods is None or method in self.retry_methods
        healthy = await self.discovery.candidates(service)
        nodes = healthy[: self.max_attempts]
        tried: list[ServiceInstance] = []
        outcomes: list[str] = []
        last_error: BaseException | None = None
        last_response: httpx.Response | None = None
        for node in nodes:
            tried.append(node)
            try:
                response = await self._http.request(method, node.url(path), **kwargs)
            except httpx.TransportError as exc:
                if not resend_ok and not isinstance(exc, _NOT_SENT):
                    raise
                last_error, last_response = exc, None
            else:
                if response.status_code < 500 or not resend_ok:
                    return response
                await response.aclose()
                last_response = response
                last_error = httpx.HTTPStatusError(
                    f"HTTP {response.status_code} from {node.describe()}",
                    request=response.request,
                    response=response,
                )
            outcomes.append(f"{node.describe()}: {_describe(last_error)}")
            if node is not nodes[-1]:
                log.info(
                    "%s %s on service %r failed on node %s (%s); trying the next node",
                    method,
                    path,
                    service,
                    node.node_id,
                    _describe(last_error),
                )
        assert last_error is not None
        raise ServiceUnavailableError(
            f"{method} {path} to service {service!r} failed on every node tried "
            f"({len(tried)} of {len(healthy)} healthy, max_attempts={self.max_attempts}): "
            f"{'; '.join(outcomes)}; last error: {_describe(last_error)}",
            service=service,
            tried=tried,
            last_error=last_error,
            last_response=last_response,
        ) from last_error

    async def get(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", service, path, **kwargs)

    async def post(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", service, path, **kwargs)

    async def put(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", service, path, **kwargs)

    async def patch(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", service, path, **kwargs)

    async def delete(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", service, path, **kwargs)

    async def aclose(self) -> None:
        """Close the HTTP client, if this client made it."""
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
