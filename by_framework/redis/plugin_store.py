"""Plugin config snapshots (a string per worker kind) and the reload answer stream."""

import time

from redis.asyncio import Redis

from by_framework.ports import ReloadAck
from by_framework.redis.batching import CommandBatcher, evalsha
from by_framework.redis.keys import KeySpace
from by_framework.redis.scripts import CONFIG_VERSION

ACKS_MAXLEN = 10_000
READ_BLOCK_MS = 1_000


class RedisPluginStore:
    def __init__(
        self, redis: Redis, batcher: CommandBatcher, keys: KeySpace, retention: int
    ) -> None:
        self._redis = redis
        self._batcher = batcher
        self._keys = keys
        self._retention = retention

    async def save_snapshot(self, key: str, snapshot: bytes) -> None:
        await self._redis.set(self._keys.config_snapshot(key), snapshot, ex=self._retention)

    async def load_snapshot(self, key: str) -> bytes | None:
        value: bytes | None = await self._redis.get(self._keys.config_snapshot(key))
        return value

    async def version_for(self, key: str, fingerprint: str) -> int:
        keys = [self._keys.config_versions(key)]
        (version,) = await self._batcher.execute(
            evalsha(CONFIG_VERSION, keys, [fingerprint, self._retention])
        )
        return int(version)

    async def answer(self, ack: ReloadAck) -> None:
        fields = {
            "reload_id": ack.reload_id,
            "worker_id": ack.worker_id,
            "status": ack.status,
            "version_before": ack.version_before,
            "version_after": ack.version_after,
            "error": ack.error or "",
        }
        stream = self._keys.reload_acks()
        pipe = self._redis.pipeline(transaction=False)
        pipe.xadd(stream, fields, maxlen=ACKS_MAXLEN, approximate=True)  # type: ignore[arg-type]
        pipe.expire(stream, self._retention)
        await pipe.execute()

    async def last_answer_id(self) -> str:
        newest = await self._redis.xrevrange(self._keys.reload_acks(), count=1)
        return newest[0][0].decode() if newest else "0-0"

    async def answers(
        self, reload_id: str, after: str, expected: set[str], timeout: float
    ) -> dict[str, ReloadAck]:
        stream = self._keys.reload_acks()
        found: dict[str, ReloadAck] = {}
        deadline = time.monotonic() + timeout
        while not expected <= found.keys():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            block = max(1, min(READ_BLOCK_MS, int(left * 1000)))
            reply = await self._redis.xread({stream: after}, block=block)
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    after = entry_id.decode()
                    ack = _parse(fields)
                    if ack is not None and ack.reload_id == reload_id:
                        found[ack.worker_id] = ack
        return found


def _parse(fields: dict[bytes, bytes]) -> ReloadAck | None:
    """An answer entry, or None for one that is not (the stream is open to anyone who can write
    to Redis: never trust its shape)."""
    try:
        status = fields[b"status"].decode()
        if status not in ("ok", "failed"):
            return None
        return ReloadAck(
            reload_id=fields[b"reload_id"].decode(),
            worker_id=fields[b"worker_id"].decode(),
            status=status,  # type: ignore[arg-type]
            version_before=int(fields[b"version_before"]),
            version_after=int(fields[b"version_after"]),
            error=fields.get(b"error", b"").decode() or None,
        )
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
