"""Sub-calls, their journal, resumes and cancellation, on the session's keys.

The journal of a task is its children's execution records: a child's id is derived from its
parent's id, run and call number, its record is written before its command is sent (so a re-run
of the parent sees it went out, and sends again what never was), and its outcome is recorded by
``finish`` in the same script that names the parent to wake. Parent, children, groups and records
share the session's hash tag; the children's control streams and the notice streams are other
slots, written in a step of their own (docs/execution.md, "Atomic steps and crashes").
"""

import json
import time
from collections.abc import Sequence

from by_framework.errors import (
    NoOnlineWorkerError,
    ReplayDivergedError,
    TaskCancelledError,
    TaskNotWaitingError,
)
from by_framework.ports import CancelReport, SubCall
from by_framework.protocol import AgentTaskResult, MessageHeader
from by_framework.protocol.signing import sign
from by_framework.redis.batching import Batcher, RedisCommand, evalsha
from by_framework.redis.connection import RedisClient
from by_framework.redis.keys import KeySpace
from by_framework.redis.records import RESULT_SUFFIX, new_record, parse_record
from by_framework.redis.scripts import (
    CANCEL_TREE,
    DISPATCH,
    ONLINE,
    RESUME,
    SET_WAITING,
    CancelTreeArgs,
    DispatchArgs,
    OnlineArgs,
    ResumeArgs,
    SetWaitingArgs,
)
from by_framework.redis.sightings import OnlineSightings, agent_type_seen
from by_framework.redis.ttl_refreshes import TtlRefreshes

NOTICE_FIELD = b"n"
NOTICE_MAXLEN = 1000


def command_entry(stream: str, envelope: bytes, signature: bytes | str) -> RedisCommand:
    """The XADD of a command to a control stream (with its signature, when signed)."""
    signed = ("s", signature) if signature else ()
    return ("XADD", stream, "*", "e", envelope, *signed)


def wake_commands(keys: KeySpace, wakes: Sequence[bytes]) -> list[RedisCommand]:
    """The notices a script named (worker id, then the child's or group's id, per wake-up): each
    to the notice stream of the worker that holds the waiting parent."""
    return [
        ("XADD", keys.worker_notices(worker.decode()), "MAXLEN", "~", NOTICE_MAXLEN, "*",
         NOTICE_FIELD, key)
        for worker, key in zip(wakes[::2], wakes[1::2], strict=True)
    ]  # fmt: skip


class RedisOrchestration:
    def __init__(
        self,
        redis: RedisClient,
        batcher: Batcher,
        keys: KeySpace,
        *,
        record_ttl: int,
        data_maxlen: int,
        signing_key: bytes | None,
        sightings: OnlineSightings,
        stream_ttls: TtlRefreshes,
    ) -> None:
        self._redis = redis
        self._batcher = batcher
        self._keys = keys
        self._sightings = sightings
        self._stream_ttls = stream_ttls
        self._record_ttl = record_ttl
        self._data_maxlen = data_maxlen
        self._signing_key = signing_key

    def _signature(self, envelope: bytes, stream: str) -> bytes | str:
        return sign(envelope, self._signing_key, stream) if self._signing_key else ""

    async def dispatch(
        self, parent: MessageHeader, calls: Sequence[SubCall], group_id: str | None
    ) -> bool:
        """Send the sub-calls, unless they went out before; True if sent now.

        Three steps: the advisory online check (the registry's slot; skipped while this process
        found each agent type online within ``ONLINE_SEEN_FOR``, sightings.py), the children's
        task indexes (their own slots) with their records (the session's), then their commands
        (other slots), which a re-run of the parent sends again for the children never
        delivered. Raises
        ``NoOnlineWorkerError`` (nothing sent) or ``TaskCancelledError`` (the parent is
        cancelled: no new children)."""
        session = parent.session_id
        registry = self._keys.session_registry(session)
        agent_types = list(dict.fromkeys(call.header.target_agent_type for call in calls))
        seen_as = [agent_type_seen(agent_type) for agent_type in agent_types]
        offline = 0
        if not self._sightings.recent(seen_as):
            online = evalsha(
                ONLINE,
                [self._keys.agent_type_workers(agent_type) for agent_type in agent_types],
                OnlineArgs(self._keys.worker_online_prefix(), ""),
            )
            (offline,) = await self._batcher.execute(online)
            if not offline:
                self._sightings.saw(seen_as)
        first_offline = 0
        if offline:
            missing = agent_types[offline - 1]
            first_offline = next(
                i for i, call in enumerate(calls, 1) if call.header.target_agent_type == missing
            )
        keys = [
            registry,
            self._keys.task_children(session, parent.message_id),
            self._keys.task_group(session, group_id) if group_id else registry,
        ]
        args = DispatchArgs(
            parent_id=parent.message_id,
            group_id=group_id or "",
            group_children=(
                json.dumps([call.header.message_id for call in calls]) if group_id else ""
            ),
            record_ttl=self._record_ttl,
            offline_child=first_offline,
        )
        children = [
            part
            for call in calls
            for part in (call.header.message_id, new_record(call.header, reply=call.wait_for_reply))
        ]
        # The task indexes go first: a child listed in its parent's record can be looked up
        # (one of a refused dispatch points at no record, as an unknown id does).
        indexes = [
            ("SET", self._keys.task_index(call.header.message_id), session, "EX", self._record_ttl)
            for call in calls
        ]
        *_, reply = await self._batcher.execute(*indexes, evalsha(DISPATCH, keys, args, *children))
        verdict, _, detail = reply.decode().partition(":")
        if verdict == "offline":
            agent_type = calls[int(detail) - 1].header.target_agent_type
            raise NoOnlineWorkerError(
                f"no online worker serves agent type {agent_type!r}: start one, or check the "
                "agent type's spelling (nothing was dispatched)"
            )
        if verdict == "diverged":
            wanted = calls[0].header
            asked = f"a group of {len(calls)}" if group_id else "a call"
            raise ReplayDivergedError(
                f"task {parent.message_id} is re-running and now makes {asked} to "
                f"{wanted.target_agent_type!r} where its earlier run made {detail}: sub-calls "
                "are matched by their order, so make them in the same order on every run "
                "(no branching on time, randomness or outside reads before a call)"
            )
        if verdict == "cancelled":
            raise TaskCancelledError(
                f"task {parent.message_id} may not dispatch sub-calls: cancelled ({detail})",
                reason=detail,
            )
        if verdict == "stopped":
            raise TaskCancelledError(
                f"task {parent.message_id} may not dispatch sub-calls: {detail}"
            )
        if verdict == "ok":
            await self._deliver(session, calls)
            return True
        again = [calls[int(index) - 1] for index in detail.split(",") if index]
        if again:
            await self._deliver(session, again)
        return False

    async def _deliver(self, session_id: str, calls: Sequence[SubCall]) -> None:
        """The children's commands, in one batch (their records and task indexes are written)."""
        commands: list[RedisCommand] = []
        for call in calls:
            stream = self._keys.send_stream(call.header.target_agent_type, session_id)
            commands.append(
                command_entry(stream, call.envelope, self._signature(call.envelope, stream))
            )
        await self._batcher.execute(*commands)

    async def results(
        self, session_id: str, message_ids: Sequence[str]
    ) -> dict[str, AgentTaskResult | None]:
        """Each child's final result; None while it has not ended (or never was)."""
        fields = [
            name for message_id in message_ids for name in (message_id, message_id + RESULT_SUFFIX)
        ]
        (values,) = await self._batcher.execute(
            ("HMGET", self._keys.session_registry(session_id), *fields)
        )
        results: dict[str, AgentTaskResult | None] = {}
        for index, message_id in enumerate(message_ids):
            raw, result_raw = values[2 * index], values[2 * index + 1]
            record = parse_record(raw, result_raw) if raw is not None else None
            ended = record is not None and record.status.is_terminal
            results[message_id] = record.result if record is not None and ended else None
        return results

    async def group(self, session_id: str, group_id: str) -> tuple[list[str], int] | None:
        """A group's children in dispatch order and how many have not ended; None if unknown."""
        children, remaining = await self._redis.hmget(
            self._keys.task_group(session_id, group_id), ["children", "remaining"]
        )
        if children is None or remaining is None:
            return None
        return json.loads(children), int(remaining)

    async def set_waiting(
        self, header: MessageHeader, worker_id: str, waiting: bool, state_event: bytes
    ) -> bool:
        """Record that the task waits for its sub-calls (or runs again); False if this worker
        does not hold it."""
        stream = self._keys.session_data_stream(header.session_id)
        keys = [self._keys.session_registry(header.session_id), stream]
        asked_at = time.monotonic()
        args = SetWaitingArgs(
            message_id=header.message_id,
            worker_id=worker_id,
            status="waiting_reply" if waiting else "running",
            now=time.time(),
            state_event=state_event,
            data_maxlen=self._data_maxlen,
            data_ttl=self._stream_ttls.ttl_arg(stream),
        )
        (reply,) = await self._batcher.execute(evalsha(SET_WAITING, keys, args))
        if reply == 1 and args.data_ttl > 0:  # its append ran
            self._stream_ttls.refreshed(stream, asked_at)
        return reply == 1

    async def resume(self, header: MessageHeader, envelope: bytes) -> None:
        """Queue a ResumeCommand for a task waiting for the user: its record, then the command;
        ``TaskNotWaitingError`` (and nothing changes) if it is not waiting."""
        registry = self._keys.session_registry(header.session_id)
        args = ResumeArgs(header.message_id, time.time(), self._record_ttl)
        (reply,) = await self._batcher.execute(evalsha(RESUME, [registry], args))
        if reply == b"missing":
            raise TaskNotWaitingError(
                f"no task {header.message_id!r} in session {header.session_id!r}: never sent, "
                "or past its retention"
            )
        if reply.startswith(b"status:"):
            status = reply.decode().partition(":")[2]
            raise TaskNotWaitingError(
                f"task {header.message_id!r} is {status}, not waiting for the user: only a task "
                "that called ask_user (status waiting_user) can be resumed, once per question"
            )
        # The record is QUEUED for its next run: now the command (its stream's slot).
        stream = self._keys.send_stream(header.target_agent_type, header.session_id)
        index = self._keys.task_index(header.message_id)
        await self._batcher.execute(
            command_entry(stream, envelope, self._signature(envelope, stream)),
            ("EXPIRE", index, self._record_ttl),
        )

    async def cancel_tree(
        self,
        session_id: str,
        message_ids: Sequence[str],
        reason: str,
        absent: Sequence[str] = (),
    ) -> CancelReport:
        """Cancel the tasks and everything under them (breadth-first), see CANCEL_TREE: a first
        call (the tasks of ``absent`` holders end like an offline holder's), then (when tasks
        run on workers found offline) a second one ending those; the parents' wake-ups after
        each."""
        cancelled, running, wakes = await self._cancel_tree(
            session_id, message_ids, reason, list(absent)
        )
        holders = sorted(set(running.values()))
        if holders:
            online = await self._batcher.execute(
                *(("EXISTS", self._keys.worker_online(worker)) for worker in holders)
            )
            offline = [worker for worker, up in zip(holders, online, strict=True) if not up]
            if offline:
                more, running, more_wakes = await self._cancel_tree(
                    session_id, message_ids, reason, offline
                )
                cancelled += more
                wakes += more_wakes
        if wakes:
            await self._batcher.execute(*wake_commands(self._keys, wakes))
        return CancelReport(cancelled, running)

    async def _cancel_tree(
        self, session_id: str, message_ids: Sequence[str], reason: str, offline: list[str]
    ) -> tuple[int, dict[str, str], list[bytes]]:
        keys = [
            self._keys.session_registry(session_id),
            self._keys.session_data_stream(session_id),
        ]
        args = CancelTreeArgs(
            roots=json.dumps(list(message_ids)),
            reason=reason,
            now=time.time(),
            record_ttl=self._record_ttl,
            data_maxlen=self._data_maxlen,
            data_ttl=self._stream_ttls.ttl,
            offline=json.dumps(offline),
            children_prefix=self._keys.task_children_prefix(session_id),
            group_prefix=self._keys.task_group(session_id, ""),
        )
        (reply,) = await self._batcher.execute(evalsha(CANCEL_TREE, keys, args))
        cancelled, running, wakes = reply
        pairs = [item.decode() for item in running]
        return int(cancelled), dict(zip(pairs[::2], pairs[1::2], strict=True)), list(wakes)

    async def send_to_worker(self, worker_id: str, envelope: bytes) -> None:
        """Add a (signed) command to one worker's notice stream, which it reads even when all
        its slots are busy (a cancel must reach a worker full of long tasks)."""
        stream = self._keys.worker_notices(worker_id)
        fields = ["e", envelope]
        if self._signing_key:
            fields += ["s", self._signature(envelope, stream)]
        await self._batcher.execute(("XADD", stream, "MAXLEN", "~", NOTICE_MAXLEN, "*", *fields))
