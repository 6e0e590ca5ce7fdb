"""Keeps a worker's leases while its event loop is blocked (a task calling ``time.sleep`` or
running CPU-bound code in ``process_command``): the async heartbeat cannot run then, and without
this the worker would look dead and its tasks be reclaimed and run again elsewhere.

A thread with a synchronous Redis connection of its own watches a tick that the event loop sets
every quarter of a heartbeat interval. Once no tick came for half an interval, it renews the
worker's heartbeat, its in-flight entries and the session turns its runs hold itself, as the
loop's own tasks do, and logs the blocked time. A loop blocked for more than
``BLOCKED_LEASES_KEPT`` leases counts as hung: the thread stops renewing, and the worker's tasks
are reclaimed by live workers as if it had died.

It starts as soon as the worker holds its id's lock: while the worker starts (``on_startup`` may
load a model for minutes, with its loop blocked or not), the thread renews that lock alone every
heartbeat interval, so that no second process takes the id meanwhile; the worker is not online
and has no heartbeat yet. ``serving`` ends that mode once it has registered.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from redis import Redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisError

from by_framework.redis.connection import DEFAULT_REPLY_TIMEOUT, cluster_address, cluster_url
from by_framework.redis.keys import KeySpace
from by_framework.redis.registry import heartbeat_args
from by_framework.redis.scripts import HEARTBEAT, KEEP_TURN, RENEW, RenewArgs, TurnArgs
from by_framework.settings import Settings

log = logging.getLogger("by_framework.worker")

BLOCKED_LEASES_KEPT = 10
"""How many leases a blocked loop's tasks are kept for (150 s with the default lease)."""

InFlight = Callable[[], Mapping[str, Sequence[str]]]
HeldTurns = Callable[[], Sequence[tuple[str, str, str]]]
"""The session turns a worker's runs hold: (session id, agent type, message id)."""


class LeaseKeeper:
    """Renews a worker's leases from a thread of its own while its event loop is blocked."""

    def __init__(
        self,
        settings: Settings,
        keys: KeySpace,
        worker_id: str,
        agent_types: Sequence[str],
        in_flight: InFlight,
        turns: HeldTurns,
        token: Callable[[], str | None],
    ) -> None:
        self._redis = _sync_client(settings)
        self._keys = keys
        self._settings = settings
        self._worker_id = worker_id
        self._agent_types = list(agent_types)
        self._in_flight = in_flight
        self._turns = turns
        self._token = token
        self._heartbeat = self._redis.register_script(HEARTBEAT.source)
        self._renew = self._redis.register_script(RENEW.source)
        self._keep_lease = self._redis.register_script(KEEP_TURN.source)  # a turn's, a lock's
        self._look_every = settings.heartbeat_interval / 4
        self._late_after = settings.heartbeat_interval / 2
        self._max_blocked = BLOCKED_LEASES_KEPT * settings.lease_seconds
        self._last_tick = time.monotonic()
        self._blocked_for = 0.0  # how late the tick was at the last look, while it is late
        self._serving = threading.Event()  # set once the worker has registered
        self._lock_kept_at = time.monotonic()  # the lock was just taken
        self._lock_lost = False  # found gone (or another's) while starting
        self._ticker: asyncio.TimerHandle | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name=f"lease-keeper-{worker_id}", daemon=True
        )

    def start(self) -> None:
        """Start ticking on the running loop, and the watching thread."""
        self._tick()
        self._thread.start()

    def serving(self) -> None:
        """The worker has registered: its loop's heartbeat keeps the lock from now on, and the
        thread renews its leases only while the loop is blocked."""
        self._serving.set()

    def stop(self) -> None:
        """Stop the tick and the thread (blocks until the thread ends: call it off the loop)."""
        if self._ticker is not None:
            self._ticker.cancel()
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()
        self._redis.close()

    def _tick(self) -> None:
        self._last_tick = time.monotonic()
        self._ticker = asyncio.get_running_loop().call_later(self._look_every, self._tick)

    def _watch(self) -> None:
        """The loop ticks four times per heartbeat interval and the thread looks as often: it
        takes over once no tick came for half an interval. A loop blocked right before its next
        heartbeat then has its leases renewed at most 1.5 intervals after its last heartbeat
        (7.5 s with the defaults), well within a lease (15 s)."""
        while not self._stopped.wait(self._look_every):
            if not self._serving.is_set():
                self._keep_lock()
                continue
            blocked = time.monotonic() - self._last_tick
            if blocked < self._late_after:  # ticking: the loop's own heartbeat renews
                self._unblocked()
            elif blocked <= self._max_blocked:
                self._keep(blocked)
            elif self._blocked_for <= self._max_blocked:
                log.error(
                    "event loop of worker %s blocked for %.1fs, more than %d leases: counted as "
                    "hung, its leases are no longer renewed and its tasks will be reclaimed",
                    self._worker_id,
                    blocked,
                    BLOCKED_LEASES_KEPT,
                )
                self._blocked_for = blocked

    def _keep(self, blocked: float) -> None:
        if not self._blocked_for:
            log.warning(
                "event loop of worker %s blocked (%.1fs so far): renewing its leases from a "
                "thread for up to %gs",
                self._worker_id,
                blocked,
                self._max_blocked,
            )
        self._blocked_for = blocked
        try:
            self._renew_all()
        except RedisError as exc:
            log.warning("lease renewal from the thread failed: %s", exc)

    def _keep_lock(self) -> None:
        """While the worker starts: its id's lock, every heartbeat interval."""
        now = time.monotonic()
        token = self._token()
        if token is None or self._lock_lost:
            return
        if now - self._lock_kept_at < self._settings.heartbeat_interval:
            return
        self._lock_kept_at = now
        lock = self._keys.worker_lock(self._worker_id)
        lease = TurnArgs(token, round(self._settings.heartbeat_ttl * 1000))
        try:
            if not self._keep_lease(keys=[lock], args=KEEP_TURN.argv(lease)):
                # Said once: the heartbeat takes the id again after the start-up, or stops
                # the worker if another process holds it (WorkerRunner._reclaim_identity).
                log.warning("worker %s lost its id's lock while starting", self._worker_id)
                self._lock_lost = True
        except RedisError as exc:
            log.warning("renewing the lock of starting worker %s failed: %s", self._worker_id, exc)

    def _unblocked(self) -> None:
        if self._blocked_for:
            log.warning(
                "event loop of worker %s was blocked for %.1fs: time.sleep or CPU-bound code in "
                "a task? Run it with asyncio.to_thread",
                self._worker_id,
                self._blocked_for,
            )
            self._blocked_for = 0.0

    def _renew_all(self) -> None:
        token = self._token()
        if token is None:
            return
        settings = self._settings
        keys, args = heartbeat_args(
            self._keys,
            self._worker_id,
            self._agent_types,
            token,
            settings.heartbeat_ttl,
            settings.record_ttl,
        )
        self._heartbeat(keys=keys, args=args)
        group = settings.consumer_group
        for stream, entry_ids in self._in_flight().items():
            if entry_ids:
                args = RENEW.argv(RenewArgs(group, self._worker_id), *entry_ids)
                self._renew(keys=[stream], args=args)
        lease_ms = round(settings.turn_lease * 1000)
        for session, agent_type, message_id in self._turns():
            key = self._keys.session_turn(session, agent_type)
            self._keep_lease(keys=[key], args=KEEP_TURN.argv(TurnArgs(message_id, lease_ms)))


def _sync_client(settings: Settings) -> Redis | RedisCluster:
    """A synchronous client of its own, to the Redis (or Redis Cluster) the settings name."""
    options: dict[str, Any] = {
        "socket_connect_timeout": DEFAULT_REPLY_TIMEOUT,
        "socket_timeout": DEFAULT_REPLY_TIMEOUT,
        **settings.tls_options,
    }
    url = cluster_url(settings)
    if url is not None:
        nodes, username, password, secure = cluster_address(url)
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],
            username=username or settings.redis_username,
            password=password or settings.redis_password,
            ssl=secure,
            **options,
        )
    if settings.redis_url:
        return Redis.from_url(settings.redis_url, **options)
    return Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        db=settings.redis_db,
        password=settings.redis_password,
        username=settings.redis_username,
        **options,
    )
