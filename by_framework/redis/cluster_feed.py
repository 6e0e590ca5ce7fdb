"""The session feed on a Redis Cluster: woken by sharded Pub/Sub, read without blocking.

One blocking XREAD cannot cover sessions of different slots there, and one blocking read per
session costs a connection each. Instead the feed subscribes (SSUBSCRIBE) to each followed
session's wake channel, on a connection per master, and the batcher publishes there (SPUBLISH)
at the end of every pipeline that writes the session's stream (an XADD, a script given the
stream): the channel is named like the stream, so it lives in the stream's slot and on its master
(``session_streams``, ``NodeBatcher``). A wake-up marks its session; the feed then
reads the marked sessions with one non-blocking XRANGE each, batched per master by the batcher.

Pub/Sub is at most once (a message sent while a subscription is being moved, or by a writer that
does not publish, is lost): every ``POLL_SECONDS`` the feed reads all its sessions anyway, so a
missed wake-up delays events by that much at most and loses none. A subscription is made (and
confirmed) before its session's first read, so what lands after that read wakes the feed.
"""

import asyncio
import math
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio.cluster import ClusterNode
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from by_framework.common.aio import cancel_and_wait
from by_framework.redis.batching import RedisCommand
from by_framework.redis.cluster_batching import ClusterBatcher, ClusterTopology
from by_framework.redis.connection import node_connection
from by_framework.redis.feed import READ_COUNT, FeedFollower, SessionFeed
from by_framework.redis.keys import KeySpace

POLL_SECONDS = 1.0
"""The longest a followed session goes unread when no wake-up came (lost, or never sent)."""
CONFIRM_SECONDS = 5.0  # the longest a subscription may take to be confirmed

Entries = dict[str, list[tuple[str, dict[bytes, bytes]]]]


def wake_channel(stream: str) -> str:
    """A session stream's wake channel: the stream's own name (channels and keys are apart)."""
    return stream


def session_streams(keys: KeySpace) -> Callable[[str], bool]:
    """Whether a key is a session's event stream (whose writes the batcher announces)."""
    head, _, tail = keys.session_data_stream("\0").partition("\0")
    return lambda key: key.startswith(head) and key.endswith(tail)


class ClusterSessionFeed(SessionFeed):
    def __init__(self, batcher: ClusterBatcher, keys: KeySpace) -> None:
        super().__init__(batcher.topology.cluster, batcher, keys)
        self._cluster_batcher = batcher
        self._marked: set[str] = set()  # streams woken (or new), to read next
        self._woken = asyncio.Event()
        self._channels = ShardChannels(batcher.topology, self._mark)

    def _mark(self, stream: str) -> None:
        self._marked.add(stream)
        self._woken.set()

    def _wake_up(self, follower: FeedFollower) -> list[RedisCommand]:
        self._mark(follower.stream)  # read for it at once (the wait below is local)
        return []

    async def aclose(self) -> None:
        await super().aclose()
        await self._channels.aclose()

    async def _read(self, positions: dict[str, tuple[int, int]]) -> Entries:
        """The entries past each position of the streams woken (all of them every
        ``POLL_SECONDS``), once every stream followed is subscribed to."""
        await self._cluster_batcher.topology.ready()
        self._marked.intersection_update(self._followers)  # forget streams no longer followed
        self._marked |= await self._channels.follow(positions)
        if not self._marked & positions.keys():
            self._woken.clear()
            try:
                async with asyncio.timeout(POLL_SECONDS):
                    await self._woken.wait()
                streams = [stream for stream in positions if stream in self._marked]
            except TimeoutError:
                streams = list(positions)
        else:
            streams = [stream for stream in positions if stream in self._marked]
        if not streams:  # woken for a stream not read for now (its follower's backlog is full)
            return {}
        self._marked.difference_update(streams)
        try:
            replies = await self._cluster_batcher.execute(
                *(("XRANGE", s, "({}-{}".format(*positions[s]), "+", "COUNT", READ_COUNT)
                  for s in streams)
            )  # fmt: skip
        except BaseException:
            self._marked.update(streams)  # read them again
            raise
        entries: Entries = {}
        for stream, read in zip(streams, replies, strict=True):
            if read:
                entries[stream] = [(entry_id.decode(), fields) for entry_id, fields in read]
            if len(read) == READ_COUNT:  # more may be waiting
                self._marked.add(stream)
        return entries


class ShardChannels:
    """Sharded Pub/Sub subscriptions to the wake channels of followed streams, a connection per
    master; a message, or a subscription lost (slot moved, connection lost), marks its stream."""

    def __init__(self, topology: ClusterTopology, mark: Callable[[str], None]) -> None:
        self._topology = topology
        self._mark = mark
        self._subscribers: dict[str, _Subscriber] = {}  # by node name
        self._where: dict[str, _Subscriber] = {}  # stream -> its subscriber

    async def follow(self, streams: Iterable[str]) -> set[str]:
        """Subscribe to the streams' channels not subscribed yet, and from those no longer
        followed; the streams newly subscribed (to read now: they may hold news)."""
        wanted = set(streams)
        for stream in [s for s in self._where if s not in wanted]:
            await self._where.pop(stream).unsubscribe(wake_channel(stream))
        for stream, subscriber in list(self._where.items()):
            if wake_channel(stream) not in subscriber.channels:  # lost: moved or disconnected
                del self._where[stream]
        new = {stream for stream in wanted if stream not in self._where}
        for stream in new:
            channel = wake_channel(stream)
            subscriber = self._subscriber(self._topology.node_of(("SSUBSCRIBE", channel)))
            await subscriber.subscribe(channel)
            self._where[stream] = subscriber
        return new

    def _subscriber(self, node: ClusterNode) -> "_Subscriber":
        subscriber = self._subscribers.get(node.name)
        if subscriber is None or subscriber.closed:
            subscriber = _Subscriber(node, self._topology, self._mark)
            self._subscribers[node.name] = subscriber
        return subscriber

    async def aclose(self) -> None:
        subscribers, self._subscribers = self._subscribers, {}
        self._where = {}
        for subscriber in subscribers.values():
            await subscriber.aclose()


class _Subscriber:
    """One connection to one master in subscribed mode, and the task that reads its messages."""

    def __init__(
        self, node: ClusterNode, topology: ClusterTopology, mark: Callable[[str], None]
    ) -> None:
        self._connection = node_connection(node)
        self._topology = topology
        self._mark = mark
        self.channels: set[str] = set()  # subscribed, confirmed
        self._confirming: dict[str, asyncio.Future[None]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.closed = False

    async def subscribe(self, channel: str) -> None:
        """SSUBSCRIBE, confirmed. A failure (connection lost, or MOVED: the slot moved, and the
        map is refreshed for the next try) is raised as a ConnectionError: the feed reads again."""
        confirmed = asyncio.get_running_loop().create_future()
        self._confirming[channel] = confirmed
        try:
            await self._connection.send_command("SSUBSCRIBE", channel)
            if self._reader is None:
                self._reader = asyncio.create_task(self._read_forever(), name="feed-wakeups")
            async with asyncio.timeout(CONFIRM_SECONDS):
                await confirmed
        except TimeoutError:
            await self._lose()
            raise RedisTimeoutError(f"no confirmation of SSUBSCRIBE {channel}") from None
        finally:
            self._confirming.pop(channel, None)
        self.channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)
        if not self.closed:
            try:
                await self._connection.send_command("SUNSUBSCRIBE", channel)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                await self._lose()

    async def _read_forever(self) -> None:
        try:
            while True:
                message = await self._connection.read_response(
                    timeout=math.inf,
                    push_request=True,  # RESP3 sends them as push frames
                )
                self._take(message)
        except (RedisConnectionError, RedisTimeoutError, OSError, ResponseError) as error:
            if isinstance(error, ResponseError):  # MOVED: the slot is elsewhere now
                self._topology.doubt()
            await self._lose(error)

    def _take(self, message: Any) -> None:
        kind, channel = message[0], message[1].decode()
        if kind == b"smessage":
            self._mark(channel)
        elif kind == b"ssubscribe":
            confirmed = self._confirming.pop(channel, None)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
        elif kind == b"sunsubscribe" and channel in self.channels:
            # Not asked for: the slot moved to another master. Subscribed again there next.
            self.channels.discard(channel)
            self._topology.doubt()
            self._mark(channel)

    async def _lose(self, error: BaseException | None = None) -> None:
        """The connection is gone: every channel is to be subscribed again, its stream read."""
        self.closed = True
        for confirmed in self._confirming.values():
            if not confirmed.done():
                confirmed.set_exception(RedisConnectionError(f"subscription lost: {error}"))
        self._confirming = {}
        for channel in self.channels:
            self._mark(channel)
        self.channels = set()
        self._topology.doubt()
        await self._connection.disconnect()

    async def aclose(self) -> None:
        self.closed = True
        if self._reader is not None:
            await cancel_and_wait(self._reader)
        await self._connection.disconnect()
