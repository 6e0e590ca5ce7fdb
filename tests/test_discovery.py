"""Service discovery: the registry on the real Redis (leases, expiry), the cached round-robin
client, and the HTTP client's fail-over between nodes (HTTP mocked with respx)."""

import asyncio
import collections
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from redis.asyncio import Redis

from by_framework import DiscoveryClient, DiscoveryHttpClient, ServiceRegistry
from by_framework.discovery import (
    InvalidServiceError,
    NoHealthyNodeError,
    ServiceInstance,
    ServiceUnavailableError,
)
from tests.support import eventually


def addr(port: int) -> str:
    return f"127.0.0.1:{port}"


def url(port: int, path: str = "") -> str:
    return f"http://127.0.0.1:{port}{path}"


@pytest.fixture
def registry(redis: Redis, key_prefix: str) -> ServiceRegistry:
    return ServiceRegistry(redis, key_prefix=key_prefix)


@pytest.fixture
async def nodes3(registry: ServiceRegistry) -> list[ServiceInstance]:
    """Service "orders" on three nodes: n1 -> port 18001, n2 -> 18002, n3 -> 18003."""
    return [
        await registry.register("orders", f"n{i}", addr(18000 + i), {"zone": f"z{i}"})
        for i in (1, 2, 3)
    ]


@pytest.fixture
async def http(registry: ServiceRegistry) -> AsyncIterator[DiscoveryHttpClient]:
    async with DiscoveryHttpClient(DiscoveryClient(registry, cache_ttl=30)) as client:
        yield client


class CountingLookup:
    """A registry stand-in that counts look-ups and can be made to fail."""

    def __init__(self, registry: ServiceRegistry) -> None:
        self.registry = registry
        self.calls = 0
        self.fail = False

    async def instances(self, service: str) -> list[ServiceInstance]:
        self.calls += 1
        await asyncio.sleep(0.01)  # let concurrent callers pile up
        if self.fail:
            raise ConnectionError("registry unreachable")
        return await self.registry.instances(service)


# --- ServiceRegistry -------------------------------------------------------------------------


async def test_register_and_look_up(
    registry: ServiceRegistry, redis: Redis, key_prefix: str
) -> None:
    await registry.register("billing", "b-2", "https://billing-2.internal:8443/api/")
    first = await registry.register("billing", "b-1", " 127.0.0.1:9001 ", {"zone": "eu", "w": 2})
    await registry.register("search", "s-1", addr(9100))

    found = await registry.instances("billing")
    assert [node.node_id for node in found] == ["b-1", "b-2"]
    assert found[0] == first
    assert found[0].address == "127.0.0.1:9001"
    assert found[0].metadata == {"zone": "eu", "w": 2}
    assert found[0].base_url == "http://127.0.0.1:9001"
    assert found[1].base_url == "https://billing-2.internal:8443/api"
    assert found[1].url("/invoices/7") == "https://billing-2.internal:8443/api/invoices/7"
    assert await registry.services() == ["billing", "search"]
    assert await registry.instances("nobody") == []

    keys = [key.decode() async for key in redis.scan_iter(match=f"{key_prefix}:*")]
    assert keys and all(key.startswith(f"{key_prefix}:discovery:service:") for key in keys)


async def test_register_again_replaces_the_record(registry: ServiceRegistry) -> None:
    await registry.register("billing", "b-1", addr(9001), {"v": 1})
    await registry.register("billing", "b-1", addr(9002), {"v": 2})
    [node] = await registry.instances("billing")
    assert (node.address, node.metadata) == (addr(9002), {"v": 2})


async def test_nodes_expire_unless_heartbeats_renew_them(
    registry: ServiceRegistry, redis: Redis
) -> None:
    await registry.register("billing", "gone", addr(9001), ttl=0.3)
    await registry.register("billing", "kept", addr(9002), ttl=0.5)
    for _ in range(6):  # 0.6 s on purpose: past both leases, but "kept" is renewed every 0.1 s
        await asyncio.sleep(0.1)
        assert await registry.heartbeat("billing", "kept", ttl=0.5)

    assert [node.node_id for node in await registry.instances("billing")] == ["kept"]
    members = await redis.smembers(registry.keys.service_nodes("billing"))
    assert members == {b"kept"}, "the look-up prunes expired members"
    assert not await registry.heartbeat("billing", "gone"), "an expired node must re-register"

    async def all_expired() -> bool:
        return await registry.instances("billing") == [] and await registry.services() == []

    # The member set expires with the last lease.
    await eventually(all_expired, timeout=5, what="the last lease and the member set to expire")


async def test_deregister_removes_at_once(registry: ServiceRegistry, redis: Redis) -> None:
    await registry.register("billing", "b-1", addr(9001))
    await registry.register("billing", "b-2", addr(9002))
    assert await registry.deregister("billing", "b-1")
    assert not await registry.deregister("billing", "b-1")
    assert [node.node_id for node in await registry.instances("billing")] == ["b-2"]
    assert not await registry.heartbeat("billing", "b-1")

    assert await registry.deregister("billing", "b-2")
    assert await registry.instances("billing") == []
    assert not await redis.exists(registry.keys.service_nodes("billing"))


async def test_keep_alive_heartbeats_re_registers_and_deregisters(
    registry: ServiceRegistry,
) -> None:
    async with registry.keep_alive("billing", "b-1", addr(9001), {"v": 1}, ttl=0.6) as node:
        assert node.metadata == {"v": 1}
        await asyncio.sleep(0.8)  # on purpose, longer than the lease: the heartbeats renewed it
        assert await registry.instances("billing") == [node]

        await registry.deregister("billing", "b-1")  # lost (say, Redis was flushed)

        async def registered_again() -> bool:
            return await registry.instances("billing") == [node]

        # A beat is a third of the lease (0.2 s): the next one registers it again.
        await eventually(registered_again, timeout=5, what="the next beat to register it again")
    assert await registry.instances("billing") == []


BAD_NAMES = ["", "has space", "a:b", "{x}", "-lead", "x" * 129, "ünï", None, 7]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_bad_service_names_and_node_ids_are_refused(
    registry: ServiceRegistry, name: object
) -> None:
    with pytest.raises(InvalidServiceError, match="bad service name"):
        await registry.register(name, "n1", addr(9001))  # type: ignore[arg-type]
    with pytest.raises(InvalidServiceError, match="bad node id"):
        await registry.register("billing", name, addr(9001))  # type: ignore[arg-type]
    with pytest.raises(InvalidServiceError, match="bad service name"):
        await registry.instances(name)  # type: ignore[arg-type]
    with pytest.raises(InvalidServiceError, match="bad node id"):
        await registry.heartbeat("billing", name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "complaint"),
    [
        ("", "host:port"),
        ("localhost", "host:port"),
        ("10.0.0.5:8080/path", "host:port"),
        ("ftp://files:21", "scheme must be http or https"),
        ("http://u:secret@host:80", "no user or password"),
        ("host:0", "port must be 1 to 65535"),
        ("host:70000", "port must be 1 to 65535"),
        ("http://host:80/?q=1", "no query or fragment"),
        ("two words:80", "white space"),
        ("http://", "no host"),
        ("-bad-.example:80", "not a host name"),
        ("[not-ipv6]:80", "bad address"),
        (8080, "host:port"),
    ],
)
async def test_bad_addresses_are_refused(
    registry: ServiceRegistry, address: object, complaint: str
) -> None:
    with pytest.raises(InvalidServiceError, match="bad address") as caught:
        await registry.register("billing", "n1", address)  # type: ignore[arg-type]
    assert complaint in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert await registry.instances("billing") == []


@pytest.mark.parametrize(
    "address", ["127.0.0.1:80", "[::1]:9000", "svc_b:80", "http://h", "HTTPS://H.example:443/x/"]
)
def test_good_addresses(address: str) -> None:
    node = ServiceInstance("billing", "n1", address)
    assert node.base_url.startswith(("http://", "https://"))
    assert not node.base_url.endswith("/")


async def test_bad_metadata_and_ttls_are_refused(registry: ServiceRegistry) -> None:
    with pytest.raises(InvalidServiceError, match="must be JSON"):
        await registry.register("billing", "n1", addr(9001), {"when": object()})
    with pytest.raises(InvalidServiceError, match="keys must be strings"):
        await registry.register("billing", "n1", addr(9001), {1: "x"})  # type: ignore[dict-item]
    with pytest.raises(InvalidServiceError, match="mapping"):
        await registry.register("billing", "n1", addr(9001), ["x"])  # type: ignore[arg-type]
    with pytest.raises(InvalidServiceError, match="over 16384"):
        await registry.register("billing", "n1", addr(9001), {"blob": "x" * 20_000})
    for ttl in (0, -1, float("nan"), float("inf"), "5", True):
        with pytest.raises(InvalidServiceError, match="bad ttl"):
            await registry.register("billing", "n1", addr(9001), ttl=ttl)  # type: ignore[arg-type]
    with pytest.raises(InvalidServiceError, match="shorter than the lease"):
        async with registry.keep_alive("billing", "n1", addr(9001), ttl=1, interval=1):
            pass
    with pytest.raises(InvalidServiceError, match="cache_ttl"):
        DiscoveryClient(registry, cache_ttl=-1)
    with pytest.raises(InvalidServiceError, match="max_attempts"):
        DiscoveryHttpClient(DiscoveryClient(registry), max_attempts=0)
    assert await registry.instances("billing") == []


async def test_malformed_records_are_skipped(registry: ServiceRegistry, redis: Redis) -> None:
    await registry.register("billing", "good", addr(9001))
    await redis.sadd(registry.keys.service_nodes("billing"), "junk")
    await redis.set(registry.keys.service_node("billing", "junk"), b"{not json")
    assert [node.node_id for node in await registry.instances("billing")] == ["good"]


# --- DiscoveryClient -------------------------------------------------------------------------


async def test_round_robin_over_healthy_nodes(
    registry: ServiceRegistry, nodes3: list[ServiceInstance]
) -> None:
    discovery = DiscoveryClient(registry)
    picks = [(await discovery.choose("orders")).node_id for _ in range(7)]
    assert picks == ["n1", "n2", "n3", "n1", "n2", "n3", "n1"]
    order = [node.node_id for node in await discovery.candidates("orders")]
    assert order == ["n2", "n3", "n1"], "the pick first, then the nodes after it"
    with pytest.raises(NoHealthyNodeError, match="no healthy node of service 'nobody'"):
        await discovery.choose("nobody")


async def test_cache_refresh_picks_up_new_nodes_and_drops_expired_ones(
    registry: ServiceRegistry,
) -> None:
    discovery = DiscoveryClient(registry, cache_ttl=0.5)
    await registry.register("orders", "a", addr(18001))
    await registry.register("orders", "short", addr(18002), ttl=0.3)
    assert [n.node_id for n in await discovery.nodes("orders")] == ["a", "short"]

    await registry.register("orders", "b", addr(18003))
    assert [n.node_id for n in await discovery.nodes("orders")] == ["a", "short"], "cached"

    async def refreshed() -> list[str] | None:
        ids = [n.node_id for n in await discovery.nodes("orders")]
        return ids if ids == ["a", "b"] else None

    # Once the cache goes stale (0.5 s) the look-up finds "b", and "short" expired (0.3 s).
    await eventually(refreshed, timeout=5, what="the stale cache to be read again")

    await registry.deregister("orders", "a")
    assert [n.node_id for n in await discovery.nodes("orders")] == ["a", "b"], "cached"
    assert [n.node_id for n in await discovery.refresh("orders")] == ["b"]
    await registry.register("orders", "c", addr(18004))
    discovery.invalidate("orders")
    assert [n.node_id for n in await discovery.nodes("orders")] == ["b", "c"]


async def test_concurrent_look_ups_share_one_read(registry: ServiceRegistry) -> None:
    lookup = CountingLookup(registry)
    discovery = DiscoveryClient(lookup, cache_ttl=30)
    assert await discovery.nodes("orders") == [] and lookup.calls == 1
    assert await discovery.nodes("orders") == [] and lookup.calls == 2, "empty is not cached"

    await registry.register("orders", "n1", addr(18001))
    results = await asyncio.gather(*(discovery.choose("orders") for _ in range(50)))
    assert {node.node_id for node in results} == {"n1"}
    assert lookup.calls == 3


async def test_a_failing_registry_serves_the_cached_nodes(registry: ServiceRegistry) -> None:
    lookup = CountingLookup(registry)
    discovery = DiscoveryClient(lookup, cache_ttl=0.05)
    await registry.register("orders", "n1", addr(18001))
    assert [n.node_id for n in await discovery.nodes("orders")] == ["n1"]

    lookup.fail = True
    await asyncio.sleep(0.1)  # on purpose: past the cache's 0.05 s, so that it is read again
    assert [n.node_id for n in await discovery.nodes("orders")] == ["n1"]
    assert lookup.calls == 2, "the stale cache was read again, failed, and served the cached"
    with pytest.raises(ConnectionError):
        await discovery.nodes("other")  # nothing cached to fall back on


# --- DiscoveryHttpClient ---------------------------------------------------------------------


async def test_a_request_goes_to_a_node_and_round_robins(
    http: DiscoveryHttpClient, nodes3: list[ServiceInstance]
) -> None:
    with respx.mock(assert_all_called=False) as mock:
        routes = {
            i: mock.get(url(18000 + i, "/ping"), params={"x": "1"}).respond(200, json={"node": i})
            for i in (1, 2, 3)
        }
        answers = [(await http.get("orders", "/ping", params={"x": "1"})).json() for _ in range(6)]
    assert [answer["node"] for answer in answers] == [1, 2, 3, 1, 2, 3]
    assert all(route.call_count == 2 for route in routes.values())


async def test_retries_the_next_node_on_a_connection_error(
    http: DiscoveryHttpClient, nodes3: list[ServiceInstance]
) -> None:
    with respx.mock(assert_all_called=False) as mock:
        down = mock.post(url(18001, "/orders")).mock(side_effect=httpx.ConnectError)
        up = mock.post(url(18002, "/orders")).respond(201, json={"id": 7})
        spare = mock.post(url(18003, "/orders")).respond(201)
        response = await http.post("orders", "/orders", json={"item": "tea"})
    assert response.status_code == 201 and response.json() == {"id": 7}
    assert (down.call_count, up.call_count, spare.call_count) == (1, 1, 0)
    assert up.calls.last.request.content == b'{"item":"tea"}', "the body was sent again"


async def test_retries_the_next_node_on_a_5xx(
    http: DiscoveryHttpClient, nodes3: list[ServiceInstance]
) -> None:
    with respx.mock(assert_all_called=False) as mock:
        broken = mock.get(url(18001, "/stock")).respond(503, text="overloaded")
        failing = mock.get(url(18002, "/stock")).respond(500)
        up = mock.get(url(18003, "/stock")).respond(200, text="42")
        response = await http.get("orders", "stock")
    assert (response.status_code, response.text) == (200, "42")
    assert (broken.call_count, failing.call_count, up.call_count) == (1, 1, 1)


@pytest.mark.parametrize("status", [400, 404, 409, 422, 429])
async def test_a_4xx_is_returned_not_retried(
    http: DiscoveryHttpClient, nodes3: list[ServiceInstance], status: int
) -> None:
    with respx.mock(assert_all_called=False) as mock:
        first = mock.delete(url(18001, "/orders/9")).respond(status, json={"error": "no"})
        other = mock.delete(url(18002, "/orders/9")).respond(200)
        response = await http.delete("orders", "/orders/9")
    assert response.status_code == status and response.json() == {"error": "no"}
    assert (first.call_count, other.call_count) == (1, 0)


async def test_attempts_are_bounded_and_the_error_says_what_failed(
    registry: ServiceRegistry, nodes3: list[ServiceInstance]
) -> None:
    for i in (4, 5):
        await registry.register("orders", f"n{i}", addr(18000 + i))
    client = DiscoveryHttpClient(DiscoveryClient(registry), max_attempts=3)
    with respx.mock(assert_all_called=False) as mock:
        mock.get(url(18001, "/x")).mock(side_effect=httpx.ConnectError)
        mock.get(url(18002, "/x")).mock(side_effect=httpx.ReadTimeout)
        mock.get(url(18003, "/x")).respond(502)
        untouched = [mock.get(url(18000 + i, "/x")).respond(200) for i in (4, 5)]
        with pytest.raises(ServiceUnavailableError) as caught:
            await client.get("orders", "/x")
    await client.aclose()

    error = caught.value
    message = str(error)
    assert error.service == "orders" and "'orders'" in message
    assert [node.node_id for node in error.tried] == ["n1", "n2", "n3"]
    for part in (
        "3 of 5 healthy, max_attempts=3",
        "n1 (http://127.0.0.1:18001): ConnectError",
        "n2 (http://127.0.0.1:18002): ReadTimeout",
        "n3 (http://127.0.0.1:18003): HTTP 502 Bad Gateway",
        "last error: HTTP 502 Bad Gateway",
    ):
        assert part in message
    assert "n4" not in message
    assert isinstance(error.last_error, httpx.HTTPStatusError)
    assert error.__cause__ is error.last_error
    assert error.last_response is not None and error.last_response.status_code == 502
    assert all(route.call_count == 0 for route in untouched)


async def test_each_node_is_tried_once_when_there_are_fewer_than_max_attempts(
    registry: ServiceRegistry,
) -> None:
    await registry.register("orders", "n1", addr(18001))
    await registry.register("orders", "n2", addr(18002))
    client = DiscoveryHttpClient(DiscoveryClient(registry), max_attempts=5)
    with respx.mock() as mock:
        routes = [mock.get(url(18000 + i, "/x")).respond(500) for i in (1, 2)]
        with pytest.raises(ServiceUnavailableError, match="2 of 2 healthy") as caught:
            await client.get("orders", "/x")
    await client.aclose()
    assert [route.call_count for route in routes] == [1, 1]
    assert isinstance(caught.value.last_error, httpx.HTTPStatusError)


async def test_no_registered_node_is_a_clear_error(http: DiscoveryHttpClient) -> None:
    with respx.mock() as mock, pytest.raises(NoHealthyNodeError) as caught:
        await http.get("payments", "/health")
    assert "no healthy node of service 'payments'" in str(caught.value)
    assert isinstance(caught.value, ServiceUnavailableError) and caught.value.tried == []
    assert not mock.calls


async def test_a_real_refused_connection_fails_over(registry: ServiceRegistry) -> None:
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    await registry.register("orders", "a-dead", addr(closed))
    await registry.register("orders", "b-live", addr(18002))
    async with DiscoveryHttpClient(DiscoveryClient(registry), timeout=2.0) as client:
        with respx.mock(assert_all_called=False) as mock:
            mock.route(host="127.0.0.1", port=closed).pass_through()
            mock.get(url(18002, "/health")).respond(200, text="ok")
            response = await client.get("orders", "/health")
    assert response.text == "ok"


async def test_retry_methods_limit_resending(
    registry: ServiceRegistry, nodes3: list[ServiceInstance]
) -> None:
    discovery = DiscoveryClient(registry)
    async with DiscoveryHttpClient(discovery, retry_methods=["get"]) as client:
        with respx.mock(assert_all_called=False) as mock:
            mock.post(url(18001, "/pay")).respond(503)
            other = mock.post(url(18002, "/pay")).respond(200)
            # n1's turn: a 5xx to a POST may have been processed: returned, not resent
            response = await client.post("orders", "/pay")
            assert response.status_code == 503 and other.call_count == 0
            assert (await client.post("orders", "/pay")).status_code == 200  # n2's turn

            # n3's turn: a read timeout may also have been processed: raised, not resent
            mock.post(url(18003, "/pay")).mock(side_effect=httpx.ReadTimeout)
            with pytest.raises(httpx.ReadTimeout):
                await client.post("orders", "/pay")
            assert other.call_count == 1

            # n1's turn: a refused connection never delivered the request: sent to n2
            mock.post(url(18001, "/refund")).mock(side_effect=httpx.ConnectError)
            landed = mock.post(url(18002, "/refund")).respond(200)
            assert (await client.post("orders", "/refund")).status_code == 200
            assert landed.call_count == 1

            # GET is in retry_methods: its 5xx goes on to the next node (n3 after n2)
            mock.get(url(18002, "/status")).respond(503)
            mock.get(url(18003, "/status")).respond(200)
            assert (await client.get("orders", "/status")).status_code == 200


async def test_paths_join_base_urls_and_urls_are_refused(registry: ServiceRegistry) -> None:
    await registry.register("orders", "n1", "http://127.0.0.1:18001/api/v2/")
    async with DiscoveryHttpClient(DiscoveryClient(registry)) as client:
        with respx.mock() as mock:
            route = mock.get(url(18001, "/api/v2/items/3")).respond(200)
            await client.get("orders", "items/3")
            await client.get("orders", "/items/3")
            assert route.call_count == 2
            for bad in ("http://evil.example/x", "//evil.example/x"):
                with pytest.raises(InvalidServiceError, match="not a URL"):
                    await client.get("orders", bad)
            with pytest.raises(InvalidServiceError, match="bad service name"):
                await client.get("bad name", "/x")
            assert route.call_count == 2


async def test_concurrent_use(registry: ServiceRegistry) -> None:
    async with (
        registry.keep_alive("orders", "n1", addr(18001), ttl=1.0),
        registry.keep_alive("orders", "n2", addr(18002), ttl=1.0),
        registry.keep_alive("orders", "n3", addr(18003), ttl=1.0),
    ):
        discovery = DiscoveryClient(registry, cache_ttl=0.05)
        async with DiscoveryHttpClient(discovery) as client:
            with respx.mock() as mock:
                mock.get(url(18001, "/work")).respond(200, text="n1")
                sick = mock.get(url(18002, "/work")).respond(500)
                mock.get(url(18003, "/work")).respond(200, text="n3")

                async def call() -> str:
                    await asyncio.sleep(0)
                    return (await client.get("orders", "/work")).text

                answers = await asyncio.gather(*(call() for _ in range(90)))
    assert collections.Counter(answers) == {"n1": 30, "n3": 60}, "n2's turns failed over to n3"
    assert sick.call_count == 30
    assert await registry.instances("orders") == []


async def test_concurrent_registrations(registry: ServiceRegistry) -> None:
    await asyncio.gather(
        *(registry.register("orders", f"n{i:02}", addr(18000 + i)) for i in range(40))
    )
    discovery = DiscoveryClient(registry)
    found = await discovery.nodes("orders")
    assert [node.node_id for node in found] == [f"n{i:02}" for i in range(40)]
    await asyncio.gather(*(registry.deregister("orders", f"n{i:02}") for i in range(0, 40, 2)))
    assert len(await discovery.refresh("orders")) == 20


async def test_services_under_a_prefix_with_glob_characters(redis: Redis, key_prefix: str) -> None:
    """The SCAN pattern escapes the prefix: a deployment named like a pattern lists its own
    services only, not those of a deployment the pattern would match."""
    odd = ServiceRegistry(redis, key_prefix=f"{key_prefix}[a]*")
    plain = ServiceRegistry(redis, key_prefix=f"{key_prefix}a-other")
    await odd.register("billing", "b-1", addr(9001))
    await plain.register("search", "s-1", addr(9100))
    assert await odd.services() == ["billing"]
    assert await plain.services() == ["search"]
