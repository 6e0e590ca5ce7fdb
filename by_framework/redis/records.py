"""Execution records: how they are laid out in a session's registry hash, and reading them back."""

import json
import time
from typing import Any

from pydantic_core import to_json

from by_framework.protocol import AgentState, MessageHeader
from by_framework.protocol.ids import new_id
from by_framework.protocol.records import TaskRecord
from by_framework.redis.connection import RedisClient
from by_framework.redis.keys import KeySpace
from by_framework.redis.replies import byte_hash, entries, text

RESULT_SUFFIX = ":r"


def new_record(
    header: MessageHeader, now: float | None = None, *, reply: bool = False, send_id: str = ""
) -> bytes:
    """The JSON of a QUEUED record for this command (the scripts update it in place); ``reply``:
    its parent waits for its result (it is woken when the task ends); ``send_id``: the send that
    wrote it, so that a retry of that send knows the record for its own.

    What is not set (a top-level task's parent and group, no user code, no metadata, no reply)
    is left out rather than written empty: readers and scripts take a missing field as not set,
    and each record is ~130 bytes smaller (a retained record kept under 1 KiB with its result)
    and quicker for the scripts to decode and encode."""
    at = time.time() if now is None else now
    record: dict[str, Any] = {
        "message_id": header.message_id,
        "session_id": header.session_id,
        "agent_type": header.target_agent_type,
        "trace_id": header.trace_id,
        "status": AgentState.QUEUED.value,
        "worker_id": "",
        "created_at": at,
        "updated_at": at,
        "send_id": send_id,
        "timeline": [[AgentState.QUEUED.value, at]],
    }
    optional = {
        "parent_message_id": header.parent_message_id,
        "task_group_id": header.task_group_id,
        "parent_span_id": header.parent_span_id,
        "user_code": header.user_code,
        "metadata": header.metadata,
        "reply": reply,
    }
    record.update((name, value) for name, value in optional.items() if value)
    return to_json(record)


def parse_record(raw: bytes | str, result_event: bytes | str | None) -> TaskRecord:
    """The record from its JSON and the envelope of its last run's result event."""
    data: dict[str, Any] = json.loads(raw)
    if result_event is not None:
        data["result"] = json.loads(result_event)["event"]["result"]
    return TaskRecord.model_validate(data)


class RedisTaskStore:
    def __init__(self, redis: RedisClient, keys: KeySpace) -> None:
        self._redis = redis
        self._keys = keys

    def new_message_id(self, session_id: str) -> str:
        return self._keys.placed_id(new_id(), session_id)

    async def session_of(self, message_id: str) -> str | None:
        session_id = await self._redis.get(self._keys.task_index(message_id))
        return text(session_id) if session_id is not None else None

    async def get(self, message_id: str) -> TaskRecord | None:
        session_id = await self.session_of(message_id)
        if session_id is None:
            return None
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(
            self._keys.session_registry(session_id), [message_id, message_id + RESULT_SUFFIX]
        )
        pipe.lrange(self._keys.task_children(session_id, message_id), 0, -1)
        (raw, result_raw), children = await pipe.execute()
        if raw is None:
            return None
        record = parse_record(raw, result_raw)
        record.children = [child.decode() for child in children]
        return record

    async def wait_point(self, session_id: str, message_id: str) -> tuple[str, TaskRecord | None]:
        pipe = self._redis.pipeline(transaction=False)  # one slot: the session's
        pipe.xrevrange(self._keys.session_data_stream(session_id), count=1)
        pipe.hmget(
            self._keys.session_registry(session_id), [message_id, message_id + RESULT_SUFFIX]
        )
        newest, (raw, result_raw) = await pipe.execute()
        after = entries(newest)[0][0].decode() if newest else "0-0"
        return after, parse_record(raw, result_raw) if raw is not None else None

    async def list_session(self, session_id: str) -> list[TaskRecord]:
        fields = byte_hash(await self._redis.hgetall(self._keys.session_registry(session_id)))
        suffix = RESULT_SUFFIX.encode()
        records = [
            parse_record(raw, fields.get(name + suffix))
            for name, raw in fields.items()
            if not name.endswith(suffix)
        ]
        by_id = {record.message_id: record for record in records}
        parents = sorted({r.parent_message_id or "" for r in records} & by_id.keys())
        if parents:
            pipe = self._redis.pipeline(transaction=False)
            for parent in parents:
                pipe.lrange(self._keys.task_children(session_id, parent), 0, -1)
            for parent, children in zip(parents, await pipe.execute(), strict=True):
                by_id[parent].children = [child.decode() for child in children]
        return sorted(records, key=lambda record: record.created_at)
