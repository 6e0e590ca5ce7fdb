"""Plugin config snapshots (a string per worker kind) and the reload answer stream."""

import logging
import time

from by_framework.ports import ReloadAck
from by_framework.protocol.signing import data_signature_holds, sign_data
from by_framework.redis.batching import Batcher, evalsha
from by_framework.redis.connection import RedisClient
from by_framework.redis.keys import KeySpace
from by_framework.redis.replies import entries, read_entries
from by_framework.redis.scripts import CONFIG_VERSION, ConfigVersionArgs

ACKS_MAXLEN = 10_000
READ_BLOCK_MS = 1_000
SIGNED_HEAD = b"hmac-sha256:"
"""A signed snapshot is stored as ``hmac-sha256:<hex signature>\n<snapshot JSON>``."""

log = logging.getLogger("by_framework.plugins")


class RedisPluginStore:
    def __init__(
        self,
        redis: RedisClient,
        batcher: Batcher,
        keys: KeySpace,
        retention: int,
        signing_key: bytes | None,
    ) -> None:
        self._redis = redis
        self._batcher = batcher
        self._keys = keys
        self._retention = retention
        self._signing_key = signing_key

    async def save_snapshot(self, key: str, snapshot: bytes) -> None:
        name = self._keys.config_snapshot(key)
        if self._signing_key:
            signature = sign_data(snapshot, self._signing_key, name)
            snapshot = SIGNED_HEAD + signature + b"\n" + snapshot
        await self._redis.set(name, snapshot, ex=self._retention)

    async def load_snapshot(self, key: str) -> bytes | None:
        """The snapshot; with a signing key, only one whose signature holds (any other is
        logged and treated as no snapshot, like a forged command)."""
        name = self._keys.config_snapshot(key)
        value = await self._redis.get(name)
        if isinstance(value, str):  # never: this client returns bytes
            value = value.encode()
        if value is None:
            return None
        signature, snapshot = _split_signed(value)
        if self._signing_key is None:
            return snapshot
        if signature is None:
            problem = "unsigned, and this worker has a signing key (BYAI_SIGNING_KEY)"
        elif not data_signature_holds(snapshot, signature, self._signing_key, name):
            problem = "bad signature: forged, altered, or signed with another key"
        else:
            return snapshot
        log.error("config snapshot refused: %s (%s); going on without it", problem, name)
        return None

    async def version_for(self, key: str, fingerprint: str) -> int:
        keys = [self._keys.config_versions(key)]
        (version,) = await self._batcher.execute(
            evalsha(CONFIG_VERSION, keys, ConfigVersionArgs(fingerprint, self._retention))
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
        # redis-py's fields type is a dict of its own key and value unions: dict is invariant
        pipe.xadd(stream, fields, maxlen=ACKS_MAXLEN, approximate=True)  # type: ignore[arg-type]
        pipe.expire(stream, self._retention)
        await pipe.execute()

    async def last_answer_id(self) -> str:
        newest = entries(await self._redis.xrevrange(self._keys.reload_acks(), count=1))
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
            for entry_id, fields in read_entries(reply):
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


def _split_signed(value: bytes) -> tuple[bytes | None, bytes]:
    """The signature of a stored snapshot (None if it has none) and the snapshot itself."""
    if not value.startswith(SIGNED_HEAD):
        return None, value
    head, _, snapshot = value.partition(b"\n")
    return head.removeprefix(SIGNED_HEAD), snapshot
