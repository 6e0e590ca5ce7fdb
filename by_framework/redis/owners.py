"""Who created each session: the HTTP gateway lets no one else near it."""

from by_framework.redis.batching import Batcher, evalsha
from by_framework.redis.keys import KeySpace
from by_framework.redis.scripts import CLAIM_SESSION, ClaimSessionArgs


class RedisSessionOwners:
    def __init__(self, batcher: Batcher, keys: KeySpace, retention: int) -> None:
        self._batcher = batcher
        self._keys = keys
        self._retention = retention

    async def claim(self, session_id: str, owner: str) -> str:
        """Record ``owner`` as the session's if it has none yet; the session's owner either way.
        Its owner's claims keep the record as long as the session's other records."""
        key = self._keys.session_owner(session_id)
        (current,) = await self._batcher.execute(
            evalsha(CLAIM_SESSION, [key], ClaimSessionArgs(owner, self._retention))
        )
        return _text(current)

    async def owner(self, session_id: str) -> str | None:
        (value,) = await self._batcher.execute(("GET", self._keys.session_owner(session_id)))
        return None if value is None else _text(value)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
