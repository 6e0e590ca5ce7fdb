"""Control streams: sending commands, consuming them through one consumer group, settling them."""

import logging
import time
from collections.abc import Sequence
from itertools import chain
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from by_framework.common.aio import Backoff
from by_framework.errors import NoOnlineWorkerError
from by_framework.ports import Delivery, FinalEvents, Verdict
from by_framework.protocol import AgentTaskResult, MessageHeader
from by_framework.protocol.codec import ENTRY_FIELD
from by_framework.protocol.signing import SIGNATURE_FIELD, sign
from by_framework.redis.batching import CommandBatcher, evalsha
from by_framework.redis.connection import HeldConnection
from by_framework.redis.dead_letter import dead_letter_fields
from by_framework.redis.keys import KeySpace
from by_framework.redis.orchestration import NOTICE_FIELD
from by_framework.redis.records import new_record
from by_framework.redis.replies import stream_entries
from by_framework.redis.scripts import (
    BEGIN,
    ENQUEUE,
    FINISH,
    GIVE_UP,
    HAND_BACK,
    RENEW,
    TRIM_CONSUMED,
)

log = logging.getLogger("by_framework.worker")

WAKE_FIELD = b"wake"
_COPIED_ON_GIVE_UP = (ENTRY_FIELD, SIGNATURE_FIELD)  # what a replay needs of a valid command
SEND_ATTEMPTS = 8  # about 6 s of backoff before a send gives up on an unreachable Redis
PENDING_READ = 10_000  # entries of one consumer read at once (at most max_concurrency in use)
_ACTIONS: dict[str, Literal["run", "cancel", "skip", "give_back", "give_up"]] = {
    "run": "run",
    "cancel": "cancel",
    "skip": "skip",
    "busy": "give_back",
    "exhausted": "give_up",
}


class RedisControlPlane:
    def __init__(
        self,
        redis: Redis,
        batcher: CommandBatcher,
        keys: KeySpace,
        *,
        group: str,
        record_ttl: int,
        data_maxlen: int,
        data_ttl: int,
        dead_letter_maxlen: int,
        dead_letter_entry_bytes: int,
        max_deliveries: int,
        signing_key: bytes | None,
    ) -> None:
        self._redis = redis
        self._batcher = batcher
        self._keys = keys
        self._group = group
        self._record_ttl = record_ttl
        self._data_maxlen = data_maxlen
        self._data_ttl = data_ttl
        self._dead_letter_maxlen = dead_letter_maxlen
        self._dead_letter_entry_bytes = dead_letter_entry_bytes
        self._max_deliveries = max_deliveries
        self._signing_key = signing_key
        self._sweep_cursors: dict[str, str] = {}

    # Client side

    async def send(
        self, header: MessageHeader, envelope: bytes, target_worker_id: str | None
    ) -> None:
        agent_type = header.target_agent_type
        if target_worker_id:
            stream = self._keys.worker_stream(target_worker_id)
        else:
            stream = self._keys.agent_type_stream(agent_type)
        keys = [
            self._keys.agent_type_workers(agent_type),
            self._keys.session_registry(header.session_id),
            self._keys.task_index(header.message_id),
            stream,
        ]
        args = [
            self._keys.worker_online_prefix(),
            target_worker_id or "",
            header.message_id,
            new_record(header),
            envelope,
            self._record_ttl,
            header.session_id,
            sign(envelope, self._signing_key, stream) if self._signing_key else "",
        ]
        reply = await self._enqueue(keys, args)
        if reply == 0:
            if target_worker_id:
                raise NoOnlineWorkerError(
                    f"worker {target_worker_id!r} is not online: start it, or send by agent type "
                    "without target_worker_id"
                )
            raise NoOnlineWorkerError(
                f"no online worker serves agent type {agent_type!r}: start one "
                f"(python -m by_framework --worker-class ...) or check the agent type's spelling"
            )
        if reply == -1:
            raise ValueError(f"message id {header.message_id!r} was already used")

    async def _enqueue(self, keys: list[str], args: list[object]) -> object:
        """Run the enqueue script, retrying through connection trouble. A retry that finds the
        message id taken means an earlier attempt landed (its reply was lost): that is success."""
        backoff = Backoff()
        for attempt in range(SEND_ATTEMPTS):
            try:
                (reply,) = await self._batcher.execute(evalsha(ENQUEUE, keys, args))
            except (RedisConnectionError, RedisTimeoutError):
                if attempt == SEND_ATTEMPTS - 1:
                    raise
                await backoff.pause()
                continue
            return 1 if attempt > 0 and reply == -1 else reply
        raise AssertionError("unreachable")

    # Worker side

    def streams(self, agent_types: Sequence[str], worker_id: str) -> list[str]:
        by_type = [self._keys.agent_type_stream(agent_type) for agent_type in agent_types]
        return [*by_type, self._keys.worker_stream(worker_id)]

    def notice_stream(self, worker_id: str) -> str:
        return self._keys.worker_notices(worker_id)

    async def prepare(self, streams: Sequence[str]) -> None:
        await create_groups(self._redis, self._group, streams)

    def fetcher(self, streams: Sequence[str], consumer: str) -> "RedisFetcher":
        return RedisFetcher(self._redis, self._batcher, self._group, streams, consumer)

    async def begin(
        self,
        delivery: Delivery,
        header: MessageHeader,
        worker_id: str,
        running_event: bytes,
        config_version: int = 0,
    ) -> Verdict:
        keys = [
            self._keys.session_registry(header.session_id),
            self._keys.session_data_stream(header.session_id),
        ]
        args = [
            header.message_id,
            worker_id,
            time.time(),
            self._record_ttl,
            "",  # the record the client wrote; a rare missing one is sent on a second call
            running_event,
            self._data_maxlen,
            self._data_ttl,
            delivery.entry_id,
            self._keys.worker_online_prefix(),
            self._max_deliveries,
            config_version,
        ]
        (reply,) = await self._batcher.execute(evalsha(BEGIN, keys, args))
        if reply == b"missing":  # sent by a bare XADD, or its record expired
            args[4] = new_record(header, reply=header.parent_message_id is not None)
            (reply,) = await self._batcher.execute(evalsha(BEGIN, keys, args))
        verdict, _, detail = reply.decode().partition(":")
        return Verdict(_ACTIONS[verdict], detail)

    async def finish(
        self,
        delivery: Delivery,
        header: MessageHeader,
        worker_id: str,
        result: AgentTaskResult,
        events: FinalEvents,
    ) -> bool:
        keys = [
            self._keys.session_registry(header.session_id),
            self._keys.session_data_stream(header.session_id),
            delivery.stream,
            self._keys.task_index(header.message_id),
        ]
        args = [
            header.message_id,
            worker_id,
            time.time(),
            result.status.value,
            result.error or "",
            events.result,
            events.end,
            self._record_ttl,
            self._data_maxlen,
            self._data_ttl,
            self._group,
            delivery.entry_id,
            events.state or "",
            self._keys.worker_notices_prefix(),
            self._keys.task_group(header.session_id, ""),
            *events.leading,
        ]
        (reply,) = await self._batcher.execute(evalsha(FINISH, keys, args))
        return reply == b"ok"

    async def acknowledge(self, delivery: Delivery) -> None:
        await self._batcher.execute(("XACK", delivery.stream, self._group, delivery.entry_id))

    async def give_back(self, delivery: Delivery, holder: str) -> None:
        # Not through the batcher: its reply parser would read a JUSTID reply as full entries.
        await self._redis.xclaim(
            delivery.stream, self._group, holder, 0, [delivery.entry_id], justid=True
        )

    async def give_up(
        self, delivery: Delivery, header: MessageHeader, reason: str, events: FinalEvents
    ) -> None:
        dead_letter = self._dead_letter(delivery, reason, _COPIED_ON_GIVE_UP)
        keys = [
            self._keys.session_registry(header.session_id),
            self._keys.session_data_stream(header.session_id),
            delivery.stream,
            self._keys.dead_letter_stream(),
        ]
        args = [
            header.message_id,
            time.time(),
            reason,
            events.result,
            events.end,
            self._record_ttl,
            self._data_maxlen,
            self._data_ttl,
            self._group,
            delivery.entry_id,
            self._dead_letter_maxlen,
            self._keys.worker_notices_prefix(),
            self._keys.task_group(header.session_id, ""),
            *chain.from_iterable(dead_letter.items()),
        ]
        await self._batcher.execute(evalsha(GIVE_UP, keys, args))

    async def renew(self, in_flight: dict[str, list[str]], consumer: str) -> None:
        commands = [
            evalsha(RENEW, [stream], [self._group, consumer, *entry_ids])
            for stream, entry_ids in in_flight.items()
            if entry_ids
        ]
        if commands:
            await self._batcher.execute(*commands)

    async def reclaim(
        self, streams: Sequence[str], consumer: str, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        pipe = self._redis.pipeline(transaction=False)
        for stream in streams:
            start = self._sweep_cursors.get(stream, "0-0")
            pipe.xautoclaim(stream, self._group, consumer, min_idle_ms, start, count=count)
        deliveries = []
        for stream, reply in zip(streams, await pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, ResponseError):  # NOGROUP: the stream is made again by a fetch
                self._sweep_cursors.pop(stream, None)
                continue
            # Redis 6.2 answers [next, entries]; 7.x adds the ids it found deleted. The next
            # sweep goes on from the cursor, so a long pending list is covered over sweeps.
            self._sweep_cursors[stream] = reply[0].decode()
            for entry_id, fields in reply[1]:
                deliveries.append(Delivery(stream, entry_id.decode(), fields or {}))
        return deliveries

    async def trim(self, streams: Sequence[str]) -> int:
        replies = await self._batcher.execute(
            *(evalsha(TRIM_CONSUMED, [stream], []) for stream in streams)
        )
        return sum(replies)

    async def reject(
        self, delivery: Delivery, reason: str, session_id: str | None, error_event: bytes | None
    ) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.xadd(
            self._keys.dead_letter_stream(),
            self._dead_letter(delivery, reason),  # type: ignore[arg-type]  # as in plugin_store
            maxlen=self._dead_letter_maxlen,
            approximate=True,
        )
        if session_id is not None and error_event is not None:
            data_stream = self._keys.session_data_stream(session_id)
            pipe.xadd(data_stream, {b"e": error_event}, maxlen=self._data_maxlen, approximate=True)
            pipe.expire(data_stream, self._data_ttl)
        pipe.xack(delivery.stream, self._group, delivery.entry_id)
        await pipe.execute()

    def _dead_letter(
        self, delivery: Delivery, reason: str, names: Sequence[bytes] | None = None
    ) -> dict[bytes, bytes]:
        """The dead letter of a delivery, its entry's fields (``names`` alone, when given) kept
        within ``dead_letter_entry_bytes``."""
        entry = delivery.fields
        if names is not None:
            entry = {name: entry[name] for name in names if name in entry}
        return dead_letter_fields(
            reason, delivery.stream, delivery.entry_id, time.time(), entry,
            self._dead_letter_entry_bytes,
        )  # fmt: skip

    async def hand_back(
        self, delivery: Delivery, header: MessageHeader, worker_id: str, *, crashed: bool = False
    ) -> None:
        """Re-add the (verified) entry for another worker, signed anew: added again now, it
        would be refused as expired if it had been signed more than command_max_age ago."""
        entry = delivery.fields[ENTRY_FIELD]
        signature = delivery.fields.get(SIGNATURE_FIELD, b"")
        if self._signing_key:
            signature = sign(entry, self._signing_key, delivery.stream)
        keys = [self._keys.session_registry(header.session_id), delivery.stream]
        args = [
            header.message_id,
            worker_id,
            time.time(),
            self._group,
            delivery.entry_id,
            entry,
            signature,
            "crashed" if crashed else "",
        ]
        await self._batcher.execute(evalsha(HAND_BACK, keys, args))

    async def pending_of(self, streams: Sequence[str], consumer: str) -> list[Delivery]:
        """Pending ids per stream (bounded by PENDING_READ), then their entries, in two round
        trips; an entry deleted meanwhile comes back with no fields (like a fetch's)."""
        pipe = self._redis.pipeline(transaction=False)
        for stream in streams:
            pipe.xpending_range(stream, self._group, "-", "+", PENDING_READ, consumername=consumer)
        found = [
            (stream, entry["message_id"])
            for stream, reply in zip(streams, await pipe.execute(raise_on_error=False), strict=True)
            if not isinstance(reply, ResponseError)  # no stream or group: nothing pending
            for entry in reply
        ]
        pipe = self._redis.pipeline(transaction=False)
        for stream, entry_id in found:
            pipe.xrange(stream, entry_id, entry_id)
        deliveries = []
        for (stream, entry_id), entries in zip(found, await pipe.execute(), strict=True):
            fields = entries[0][1] if entries else {}
            deliveries.append(Delivery(stream, entry_id.decode(), fields))
        return deliveries

    async def wake(self, stream: str) -> None:
        await self._redis.xadd(stream, {WAKE_FIELD: b"1"})


async def create_groups(redis: Redis, group: str, streams: Sequence[str]) -> None:
    """Create the consumer group on each stream (and the stream), from its first entry: entries
    a client added to a stream that had lost its group are read too. An existing group stays."""
    pipe = redis.pipeline(transaction=False)
    for stream in streams:
        pipe.xgroup_create(stream, group, id="0", mkstream=True)
    for reply in await pipe.execute(raise_on_error=False):
        if isinstance(reply, ResponseError) and "BUSYGROUP" not in str(reply):
            raise reply


def _lost_stream(error: ResponseError) -> bool:
    """Whether a read failed because a stream or its group is gone: deleted, flushed, or lost
    with a restart that kept no data (NOGROUP), or deleted while the read blocked on it."""
    return str(error).startswith(("NOGROUP", "UNBLOCKED"))


class RedisFetcher:
    """XREADGROUPs a set of control streams for one consumer, on a connection held for the loop
    that fetches (a worker's consumption loop, its notice loop)."""

    def __init__(
        self,
        redis: Redis,
        batcher: CommandBatcher,
        group: str,
        streams: Sequence[str],
        consumer: str,
    ) -> None:
        self._redis = redis
        self._batcher = batcher
        self._connection = HeldConnection(redis)
        self._group = group
        self._streams = list(streams)
        self._consumer = consumer

    async def fetch(self, count: int, block_ms: int, *, own_pending: bool) -> list[Delivery]:
        """The deliveries read; none when a stream or group was gone, which is made again."""
        start = "0" if own_pending else ">"
        block = () if own_pending else ("BLOCK", block_ms)
        command = ("XREADGROUP", "GROUP", self._group, self._consumer, "COUNT", count, *block,
                   "STREAMS", *self._streams, *[start] * len(self._streams))  # fmt: skip
        try:
            reply = await self._connection.call(command, None if own_pending else block_ms)
        except ResponseError as error:
            if not _lost_stream(error):
                raise
            log.warning("%s; recreating the consumer group %r", error, self._group)
            await create_groups(self._redis, self._group, self._streams)
            return []
        deliveries = []
        wakes = []
        for stream, entries in stream_entries(reply):
            name = stream.decode()
            for entry_id, fields in entries:
                if WAKE_FIELD in fields:
                    wakes.append(("XACK", name, self._group, entry_id))
                elif NOTICE_FIELD in fields:
                    wakes.append(("XACK", name, self._group, entry_id))
                    notice = fields[NOTICE_FIELD].decode(errors="replace")
                    deliveries.append(Delivery(name, entry_id.decode(), {}, notice=notice))
                else:
                    # A pending entry deleted from the stream (trimmed) comes back with no fields.
                    deliveries.append(Delivery(name, entry_id.decode(), fields))
        if wakes:
            await self._batcher.execute(*wakes)
        return deliveries

    async def aclose(self) -> None:
        await self._connection.aclose()
