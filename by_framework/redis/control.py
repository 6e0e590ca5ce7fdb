"""Control streams: sending commands, consuming them through one consumer group, settling them."""

import logging
import secrets
import time
from collections.abc import Sequence
from itertools import chain
from typing import Any, Literal

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from by_framework.common.aio import Backoff
from by_framework.errors import NoOnlineWorkerError
from by_framework.ports import Delivery, FinalEvents, Verdict
from by_framework.protocol import AgentTaskResult, MessageHeader
from by_framework.protocol.codec import ENTRY_FIELD, with_send_id
from by_framework.protocol.signing import SIGNATURE_FIELD, sign
from by_framework.redis.batching import Batcher, RedisCommand, evalsha
from by_framework.redis.connection import RedisClient
from by_framework.redis.dead_letter import dead_letter_fields
from by_framework.redis.fetcher import (
    WAKE_FIELD,
    ClusterFetcher,
    Markers,
    RedisFetcher,
    create_groups,
    fetcher_for,
)
from by_framework.redis.keys import KeySpace
from by_framework.redis.orchestration import command_entry, wake_commands
from by_framework.redis.records import new_record
from by_framework.redis.scripts import (
    BEGIN,
    CLAIM,
    FINISH,
    GIVE_UP,
    ONLINE,
    RELEASE_RUN,
    RENEW,
    REQUEUE,
    TRIM_CONSUMED,
    UNCLAIM,
    BeginArgs,
    ClaimArgs,
    FinishArgs,
    GiveUpArgs,
    NoArgs,
    OnlineArgs,
    ReleaseRunArgs,
    RenewArgs,
    RequeueArgs,
    UnclaimArgs,
)
from by_framework.redis.sightings import OnlineSightings, agent_type_seen, worker_seen
from by_framework.redis.ttl_refreshes import TtlRefreshes

log = logging.getLogger("by_framework.worker")

_COPIED_ON_GIVE_UP = (ENTRY_FIELD, SIGNATURE_FIELD)  # what a replay needs of a valid command
SEND_ATTEMPTS = 8  # about 6 s of backoff before a send gives up on an unreachable Redis
TAKEOVER_ATTEMPTS = 3  # a reclaimed record changing hands again between begin's two calls
PENDING_READ = 10_000  # entries of one consumer read at once (at most max_concurrency in use)
_ACTIONS: dict[str, Literal["run", "cancel", "skip", "give_back", "give_up"]] = {
    "run": "run",
    "cancel": "cancel",
    "skip": "skip",
    "exhausted": "give_up",
}


class RedisControlPlane:
    def __init__(
        self,
        redis: RedisClient,
        batcher: Batcher,
        keys: KeySpace,
        *,
        group: str,
        record_ttl: int,
        data_maxlen: int,
        dead_letter_maxlen: int,
        dead_letter_entry_bytes: int,
        max_deliveries: int,
        signing_key: bytes | None,
        sightings: OnlineSightings,
        stream_ttls: TtlRefreshes,
    ) -> None:
        self._redis = redis
        self._batcher = batcher
        self._keys = keys
        self._group = group
        self._record_ttl = record_ttl
        self._data_maxlen = data_maxlen
        self._dead_letter_maxlen = dead_letter_maxlen
        self._dead_letter_entry_bytes = dead_letter_entry_bytes
        self._max_deliveries = max_deliveries
        self._signing_key = signing_key
        self._sweep_cursors: dict[str, str] = {}
        self._sightings = sightings
        self._stream_ttls = stream_ttls

    # Client side

    async def send(
        self,
        header: MessageHeader,
        envelope: bytes,
        target_worker_id: str | None,
        *,
        send_id: str | None = None,
    ) -> None:
        """The record and the delivery (docs/execution.md). The command carries the send's id
        (a worker runs it only against that send's record). While this process saw a worker
        online within ``ONLINE_SEEN_FOR`` (sightings.py), one batch: the record, the task index
        and the command; otherwise two steps: the record beside the online check, then the rest
        unless no worker was online."""
        agent_type = header.target_agent_type
        if target_worker_id:
            stream = self._keys.worker_stream(target_worker_id)
        else:
            stream = self._keys.send_stream(agent_type, header.session_id)
        registry = self._keys.session_registry(header.session_id)
        send_id = send_id or secrets.token_hex(8)
        record = new_record(header, send_id=send_id)
        claim = evalsha(
            CLAIM, [registry], ClaimArgs(header.message_id, record, self._record_ttl, send_id)
        )
        stamped = with_send_id(envelope, send_id)
        if stamped is not None:
            envelope = stamped
        signature = sign(envelope, self._signing_key, stream) if self._signing_key else ""
        delivery: list[RedisCommand] = [
            ("SET", self._keys.task_index(header.message_id), header.session_id,
             "EX", self._record_ttl),
            command_entry(stream, envelope, signature),
        ]  # fmt: skip
        seen_as = [
            worker_seen(target_worker_id) if target_worker_id else agent_type_seen(agent_type)
        ]
        if stamped is not None and self._sightings.recent(seen_as):
            # A command of an id another command took is skipped by begin (another send's
            # record); a retried batch's second copy is skipped as a duplicate.
            claimed, *_ = await self._with_retries(claim, *delivery)
            if claimed == b"taken":
                raise ValueError(f"message id {header.message_id!r} was already used")
            return
        online = evalsha(
            ONLINE,
            [self._keys.agent_type_workers(agent_type)],
            OnlineArgs(self._keys.worker_online_prefix(), target_worker_id or ""),
        )
        offline, claimed = await self._with_retries(online, claim)
        if not offline:
            self._sightings.saw(seen_as)
        if claimed == b"taken":
            raise ValueError(f"message id {header.message_id!r} was already used")
        if claimed == b"sent":  # an earlier attempt delivered it and it ran: done
            return
        if offline:
            unclaim = evalsha(UNCLAIM, [registry], UnclaimArgs(header.message_id, send_id))
            await self._with_retries(unclaim)
            if target_worker_id:
                raise NoOnlineWorkerError(
                    f"worker {target_worker_id!r} is not online: start it, or send by agent type "
                    "without target_worker_id"
                )
            raise NoOnlineWorkerError(
                f"no online worker serves agent type {agent_type!r}: start one "
                f"(python -m by_framework --worker-class ...) or check the agent type's spelling"
            )
        await self._with_retries(*delivery)

    async def _with_retries(self, *commands: RedisCommand) -> list[Any]:
        """Run a batch, retrying through connection trouble: each step of a send is idempotent
        (a retried claim of this send's own record answers "again" or "sent")."""
        backoff = Backoff()
        for attempt in range(SEND_ATTEMPTS):
            try:
                return await self._batcher.execute(*commands)
            except (RedisConnectionError, RedisTimeoutError):
                if attempt == SEND_ATTEMPTS - 1:
                    raise
                await backoff.pause()
        raise AssertionError("unreachable")

    # Worker side

    def streams(self, agent_types: Sequence[str], worker_id: str) -> list[str]:
        """Every shard of each agent type's stream, then the worker's own stream."""
        by_type = [stream for name in agent_types for stream in self._keys.agent_type_streams(name)]
        return [*by_type, self._keys.worker_stream(worker_id)]

    def notice_stream(self, worker_id: str) -> str:
        return self._keys.worker_notices(worker_id)

    async def prepare(self, streams: Sequence[str]) -> None:
        await create_groups(self._redis, self._group, streams)

    def fetcher(self, streams: Sequence[str], consumer: str) -> RedisFetcher | ClusterFetcher:
        markers = Markers(self._keys.worker_stream(consumer), self._keys.worker_notices(consumer))
        return fetcher_for(self._redis, self._batcher, self._group, streams, consumer, markers)

    async def begin(
        self,
        delivery: Delivery,
        header: MessageHeader,
        worker_id: str,
        running_event: bytes,
        config_version: int = 0,
        send_id: str = "",
    ) -> Verdict:
        stream = self._keys.session_data_stream(header.session_id)
        keys = [self._keys.session_registry(header.session_id), stream]
        asked_at = time.monotonic()
        args = BeginArgs(
            message_id=header.message_id,
            worker_id=worker_id,
            now=time.time(),
            record_ttl=self._record_ttl,
            record="",  # the record the client wrote; a rare missing one is sent on a second call
            running_event=running_event,
            data_maxlen=self._data_maxlen,
            data_ttl=self._stream_ttls.ttl_arg(stream),
            entry_id=delivery.entry_id,
            offline_holder="",  # named on a second call when another worker holds it
            max_deliveries=self._max_deliveries,
            config_version=config_version,
            send_id=send_id,
        )
        (reply,) = await self._batcher.execute(evalsha(BEGIN, keys, args))
        if reply == b"missing":  # a bare XADD, its record expired, or its send's claim is late
            # (a cluster's other node): the send's id goes in, and its claim then finds it sent
            record = new_record(header, reply=header.parent_message_id is not None, send_id=send_id)
            args = args._replace(record=record)
            (reply,) = await self._batcher.execute(evalsha(BEGIN, keys, args))
        for _ in range(TAKEOVER_ATTEMPTS):
            verdict, _, detail = reply.decode().partition(":")
            if verdict != "held":
                if verdict in ("run", "cancel") and args.data_ttl > 0:  # its append ran
                    self._stream_ttls.refreshed(stream, asked_at)
                return Verdict(_ACTIONS[verdict], detail)
            # Reclaimed from another worker: take it over only if that one is offline (its
            # online key is in the registry's slot, so it is read here, between two calls).
            (online,) = await self._batcher.execute(("EXISTS", self._keys.worker_online(detail)))
            if online:
                return Verdict("give_back", detail)
            args = args._replace(offline_holder=detail)
            (reply,) = await self._batcher.execute(evalsha(BEGIN, keys, args))
        return Verdict("give_back", detail)  # the record changed hands each time: leave it

    async def finish(
        self,
        delivery: Delivery,
        header: MessageHeader,
        worker_id: str,
        result: AgentTaskResult,
        events: FinalEvents,
    ) -> bool:
        """The record's end, then the acknowledgement and the parent's wake-up (other slots):
        acknowledged only once the end is written; a lost acknowledgement is a redelivery that
        ``begin`` skips. False if another worker or run holds the record now."""
        stream = self._keys.session_data_stream(header.session_id)
        keys = [self._keys.session_registry(header.session_id), stream]
        asked_at = time.monotonic()
        args = FinishArgs(
            message_id=header.message_id,
            worker_id=worker_id,
            now=time.time(),
            status=result.status.value,
            error=result.error or "",
            result_event=events.result,
            end_event=events.end,
            record_ttl=self._record_ttl,
            data_maxlen=self._data_maxlen,
            data_ttl=self._stream_ttls.ttl_arg(stream),
            entry_id=delivery.entry_id,
            state_event=events.state or "",
            group_prefix=self._keys.task_group(header.session_id, ""),
        )
        (reply,) = await self._batcher.execute(evalsha(FINISH, keys, args, *events.leading))
        if reply[0] == b"stale":
            return False
        after: list[RedisCommand] = []
        if reply[0] == b"ok":
            if args.data_ttl > 0:  # its append ran
                self._stream_ttls.refreshed(stream, asked_at)
            renew, wakes = reply[1] == b"1", reply[2:]
            after += wake_commands(self._keys, wakes)
            if renew:  # the task index lives as long as the record
                index = self._keys.task_index(header.message_id)
                after.append(("EXPIRE", index, self._record_ttl))
        if after:  # in one batch with the acknowledgement
            await self._batcher.execute(
                ("XACK", delivery.stream, self._group, delivery.entry_id), *after
            )
        else:  # most tasks: with the other acknowledgements of the next flush
            await self.acknowledge(delivery)
        return True

    async def acknowledge(self, delivery: Delivery) -> None:
        await self._batcher.acknowledge(delivery.stream, self._group, delivery.entry_id)

    async def give_back(self, delivery: Delivery, holder: str) -> None:
        # Not through the batcher: its reply parser would read a JUSTID reply as full entries.
        await self._redis.xclaim(
            delivery.stream, self._group, holder, 0, [delivery.entry_id], justid=True
        )

    async def give_up(
        self, delivery: Delivery, header: MessageHeader, reason: str, events: FinalEvents
    ) -> None:
        """The record's failure beside the dead letter, then the acknowledgement and the parent's
        wake-up: a crash between them redelivers an entry that ``begin`` skips (failed)."""
        dead_letter = self._dead_letter(delivery, reason, _COPIED_ON_GIVE_UP)
        keys = [
            self._keys.session_registry(header.session_id),
            self._keys.session_data_stream(header.session_id),
        ]
        args = GiveUpArgs(
            message_id=header.message_id,
            now=time.time(),
            error=reason,
            result_event=events.result,
            end_event=events.end,
            record_ttl=self._record_ttl,
            data_maxlen=self._data_maxlen,
            data_ttl=self._stream_ttls.ttl,
            group_prefix=self._keys.task_group(header.session_id, ""),
        )
        reply, _ = await self._batcher.execute(
            evalsha(GIVE_UP, keys, args),
            ("XADD", self._keys.dead_letter_stream(), "MAXLEN", "~", self._dead_letter_maxlen,
             "*", *chain.from_iterable(dead_letter.items())),
        )  # fmt: skip
        await self._batcher.execute(
            ("XACK", delivery.stream, self._group, delivery.entry_id),
            *wake_commands(self._keys, reply[1:]),
        )

    async def renew(self, in_flight: dict[str, list[str]], consumer: str) -> None:
        commands = [
            evalsha(RENEW, [stream], RenewArgs(self._group, consumer), *entry_ids)
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
            *(evalsha(TRIM_CONSUMED, [stream], NoArgs()) for stream in streams)
        )
        return sum(replies)

    async def reject(
        self, delivery: Delivery, reason: str, session_id: str | None, error_event: bytes | None
    ) -> None:
        """The dead letter and the session's error event, then the acknowledgement: a crash
        between them redelivers the entry, rejected again (one more dead letter)."""
        dead_letter = self._dead_letter(delivery, reason)
        writes: list[RedisCommand] = [
            ("XADD", self._keys.dead_letter_stream(), "MAXLEN", "~", self._dead_letter_maxlen,
             "*", *chain.from_iterable(dead_letter.items())),
        ]  # fmt: skip
        if session_id is not None and error_event is not None:
            data_stream = self._keys.session_data_stream(session_id)
            writes.append(("XADD", data_stream, "MAXLEN", "~", self._data_maxlen, "*", "e",
                           error_event))  # fmt: skip
            writes.append(("EXPIRE", data_stream, self._stream_ttls.ttl))
        await self._batcher.execute(*writes)
        await self.acknowledge(delivery)

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
        would be refused as expired if it had been signed more than command_max_age ago. The
        record returns to QUEUED first, then the entry moves to the stream's end."""
        entry = delivery.fields[ENTRY_FIELD]
        signature = delivery.fields.get(SIGNATURE_FIELD, b"")
        if self._signing_key:
            signature = sign(entry, self._signing_key, delivery.stream)
        registry = self._keys.session_registry(header.session_id)
        crash = "crashed" if crashed else ""
        args = ReleaseRunArgs(header.message_id, worker_id, time.time(), crash)
        # The record first: a copy delivered while the record still named this worker would be
        # skipped as a duplicate of a running entry. A crash between the steps leaves the old
        # entry pending, reclaimed like any other, and the QUEUED record runs from it.
        await self._batcher.execute(evalsha(RELEASE_RUN, [registry], args))
        requeue = RequeueArgs(self._group, delivery.entry_id, entry, signature)
        await self._batcher.execute(evalsha(REQUEUE, [delivery.stream], requeue))

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
