"""Errors of service discovery. Each message names the service and says what to do."""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from by_framework.errors import ByFrameworkError

if TYPE_CHECKING:
    import httpx

    from by_framework.discovery.model import ServiceInstance


class DiscoveryError(ByFrameworkError):
    """Base of the service discovery errors."""


class InvalidServiceError(DiscoveryError, ValueError):
    """A bad service name, node id, address, metadata or setting."""


class ServiceUnavailableError(DiscoveryError):
    """A request to a service failed on every node tried.

    ``tried``: the nodes, in the order tried; ``last_error``: the error of the last attempt (a
    connection error, or an ``httpx.HTTPStatusError`` for a 5xx); ``last_response``: the last 5xx
    response, if the last attempt got one.
    """

    def __init__(
        self,
        message: str,
        *,
        service: str,
        tried: Sequence["ServiceInstance"] = (),
        last_error: BaseException | None = None,
        last_response: "httpx.Response | None" = None,
    ) -> None:
        super().__init__(message)
        self.service = service
        self.tried = list(tried)
        self.last_error = last_error
        self.last_response = last_response


class NoHealthyNodeError(ServiceUnavailableError, LookupError):
    """No node of the service holds a live lease: none registered, or all expired."""

    def __init__(self, service: str) -> None:
        super().__init__(
            f"no healthy node of service {service!r}: none is registered under this key prefix, "
            "or every node's lease expired; check that the service runs and heartbeats",
            service=service,
        )
