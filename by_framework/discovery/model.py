"""A service instance (service name, node id, address, metadata) and the checks on each part."""

import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from by_framework.discovery.errors import InvalidServiceError

MAX_METADATA_BYTES = 16 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})*\.?")


def check_name(value: object, what: str) -> str:
    """``value`` if it is a valid service name or node id (``what`` names which, for the error)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidServiceError(
            f"bad {what} {value!r}: use 1 to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or a digit"
        )
    return value


def check_ttl(ttl: object, what: str = "ttl") -> float:
    """``ttl`` as seconds, if it is a finite number above zero."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl):
        raise InvalidServiceError(f"bad {what} {ttl!r}: give a number of seconds above 0")
    if ttl <= 0:
        raise InvalidServiceError(f"bad {what} {ttl!r}: give a number of seconds above 0")
    return float(ttl)


def base_url(address: object) -> str:
    """The base URL of a node address: ``host:port`` (plain HTTP), or an ``http://`` or
    ``https://`` URL, optionally with a path prefix. Raises ``InvalidServiceError``."""
    if not isinstance(address, str) or not address.strip():
        raise InvalidServiceError(
            f"bad address {address!r}: give 'host:port' or a base URL like 'http://host:8080'"
        )
    text = address.strip()
    if any(char.isspace() for char in text):
        raise InvalidServiceError(f"bad address {address!r}: it contains white space")
    has_scheme = "://" in text
    try:
        parts = urlsplit(text if has_scheme else f"//{text}")
    except ValueError as exc:
        raise InvalidServiceError(f"bad address {address!r}: {exc}") from None
    scheme = parts.scheme.lower() if has_scheme else "http"
    if scheme not in {"http", "https"}:
        raise InvalidServiceError(
            f"bad address {address!r}: the scheme must be http or https, not {parts.scheme!r}"
        )
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise InvalidServiceError(f"bad address {address!r}: no query or fragment allowed")
    if "@" in parts.netloc:
        raise InvalidServiceError(
            f"bad address {address!r}: no user or password in a registered address "
            "(every client would read them); send credentials in headers"
        )
    _check_host(address, parts.netloc, parts.hostname)
    try:
        port = parts.port
    except ValueError:
        raise InvalidServiceError(f"bad address {address!r}: the port must be 1 to 65535") from None
    if port == 0:
        raise InvalidServiceError(f"bad address {address!r}: the port must be 1 to 65535")
    if not has_scheme:
        if port is None or parts.path:
            raise InvalidServiceError(
                f"bad address {address!r}: give 'host:port' (like '10.0.0.5:8080'), "
                "or a base URL like 'http://host:8080/api'"
            )
        return f"http://{parts.netloc}"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _check_host(address: str, netloc: str, hostname: str | None) -> None:
    if not hostname:
        raise InvalidServiceError(f"bad address {address!r}: it has no host")
    if netloc.startswith("["):
        try:
            ipaddress.IPv6Address(hostname)
        except ValueError:
            raise InvalidServiceError(
                f"bad address {address!r}: {hostname!r} is not an IPv6 address"
            ) from None
    elif not _HOST_NAME.fullmatch(hostname):
        raise InvalidServiceError(f"bad address {address!r}: {hostname!r} is not a host name")


def check_metadata(metadata: object) -> dict[str, Any]:
    """A plain JSON copy of ``metadata`` (string keys, at most 16 KiB encoded)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidServiceError(
            f"bad metadata {metadata!r}: give a mapping of string keys to JSON values"
        )
    bad_keys = [key for key in metadata if not isinstance(key, str)]
    if bad_keys:
        raise InvalidServiceError(f"bad metadata: keys must be strings, not {bad_keys[0]!r}")
    try:
        text = json.dumps(dict(metadata), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidServiceError(f"bad metadata: it must be JSON ({exc})") from None
    if len(text.encode()) > MAX_METADATA_BYTES:
        raise InvalidServiceError(
            f"bad metadata: {len(text.encode())} bytes as JSON, over {MAX_METADATA_BYTES}; "
            "keep large data out of the registry"
        )
    return json.loads(text)


def join_url(base: str, path: str) -> str:
    """``path`` (relative to the node) appended to the node's base URL."""
    if not isinstance(path, str):
        raise InvalidServiceError(f"bad path {path!r}: give a string like '/orders/42'")
    if "://" in path.split("?", 1)[0] or path.startswith("//"):
        raise InvalidServiceError(
            f"bad path {path!r}: give the path on the node (like '/orders/42'), not a URL; "
            "discovery picks the host"
        )
    if not path:
        return base
    return f"{base}/{path.lstrip('/')}"


@dataclass(frozen=True, slots=True)
class ServiceInstance:
    """One node of a service: constructed, it is valid (``InvalidServiceError`` otherwise).

    ``address`` is as registered (``host:port`` or a base URL); ``base_url`` is its URL form.
    """

    service: str
    node_id: str
    address: str
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)
    base_url: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name(self.service, "service name")
        check_name(self.node_id, "node id")
        if isinstance(self.address, str):
            object.__setattr__(self, "address", self.address.strip())
        object.__setattr__(self, "base_url", base_url(self.address))
        object.__setattr__(self, "metadata", check_metadata(self.metadata))

    def url(self, path: str = "") -> str:
        """The absolute URL of ``path`` on this node."""
        return join_url(self.base_url, path)

    def describe(self) -> str:
        return f"{self.node_id} ({self.base_url})"

    def to_json(self) -> str:
        return json.dumps(
            {
                "service": self.service,
                "node_id": self.node_id,
                "address": self.address,
                "metadata": self.metadata,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, data: str | bytes) -> "ServiceInstance":
        """Raises ``InvalidServiceError`` (or ``ValueError``) for a malformed record."""
        fields = json.loads(data)
        if not isinstance(fields, dict):
            raise InvalidServiceError(f"bad service record {data!r}")
        return cls(
            service=fields.get("service", ""),
            node_id=fields.get("node_id", ""),
            address=fields.get("address", ""),
            metadata=fields.get("metadata", {}),
        )


class ServiceLookup(Protocol):
    """Where a ``DiscoveryClient`` looks nodes up: ``ServiceRegistry`` is one."""

    async def instances(self, service: str) -> list[ServiceInstance]:
        """The nodes of ``service`` whose lease is live, ordered by node id."""
