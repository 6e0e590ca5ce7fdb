"""A session's turn per agent type, as one key of the session's slot holding its run's message
id under a lease."""

from by_framework.redis.batching import Batcher, evalsha
from by_framework.redis.keys import KeySpace
from by_framework.redis.scripts import KEEP_TURN, RELEASE_LOCK, TAKE_TURN, ReleaseLockArgs, TurnArgs


class RedisSessionTurns:
    def __init__(self, batcher: Batcher, keys: KeySpace) -> None:
        self._batcher = batcher
        self._keys = keys

    async def take(
        self, session_id: str, agent_type: str, message_id: str, lease: float
    ) -> str | None:
        key = self._keys.session_turn(session_id, agent_type)
        take = evalsha(TAKE_TURN, [key], TurnArgs(message_id, _ms(lease)))
        (holder,) = await self._batcher.execute(take)
        return None if holder is None else _text(holder)

    async def keep(self, session_id: str, agent_type: str, message_id: str, lease: float) -> bool:
        key = self._keys.session_turn(session_id, agent_type)
        keep = evalsha(KEEP_TURN, [key], TurnArgs(message_id, _ms(lease)))
        (kept,) = await self._batcher.execute(keep)
        return bool(kept)

    async def give_up(self, session_id: str, agent_type: str, message_id: str) -> None:
        key = self._keys.session_turn(session_id, agent_type)
        await self._batcher.execute(evalsha(RELEASE_LOCK, [key], ReleaseLockArgs(message_id)))

    async def holder(self, session_id: str, agent_type: str) -> str | None:
        key = self._keys.session_turn(session_id, agent_type)
        (value,) = await self._batcher.execute(("GET", key))
        return None if value is None else _text(value)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
