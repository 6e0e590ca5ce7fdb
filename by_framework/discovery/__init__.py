"""Service discovery: services register their nodes in Redis with a lease, clients find the
healthy ones and call them over HTTP with fail-over.

``ServiceRegistry`` (Redis) is in ``by_framework.redis.discovery``; all three main names are
exported from ``by_framework``.
"""

from by_framework.discovery.client import DiscoveryClient
from by_framework.discovery.errors import (
    DiscoveryError,
    InvalidServiceError,
    NoHealthyNodeError,
    ServiceUnavailableError,
)
from by_framework.discovery.http import DiscoveryHttpClient
from by_framework.discovery.model import ServiceInstance, ServiceLookup

__all__ = [
    "DiscoveryClient",
    "DiscoveryError",
    "DiscoveryHttpClient",
    "InvalidServiceError",
    "NoHealthyNodeError",
    "ServiceInstance",
    "ServiceLookup",
    "ServiceUnavailableError",
]
