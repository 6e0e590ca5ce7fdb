"""Whose session is it: a session belongs to the user whose send created it."""

import time
from collections import OrderedDict

from fastapi import HTTPException

from by_framework.gateway.auth import Identity
from by_framework.ports import SessionOwners

KNOWN_FOR_S = 60.0
"""How long a session's owner, once Redis confirmed it, is known here without asking again: a
session never changes owner while its owner record lives (the retention, days), and a claim
refreshes that record, so within a minute nothing can change but its expiry time."""
MAX_KNOWN = 10_000


def _not_found(session_id: str) -> HTTPException:
    # 404, not 403: another user's session must not even be seen to exist.
    return HTTPException(404, f"no session {session_id!r}")


class Access:
    """Checks every use of a session against its owner; with no auth configured there is one
    user and nothing to check."""

    def __init__(self, owners: SessionOwners, enforced: bool) -> None:
        self._owners = owners
        self._enforced = enforced
        self._known: OrderedDict[tuple[str, str], float] = OrderedDict()  # -> known until

    async def claim(self, identity: Identity, session_id: str) -> None:
        """Before a send: the session becomes the caller's if it is no one's yet."""
        if not self._enforced or self._is_known(identity, session_id):
            return
        if await self._owners.claim(session_id, identity.subject) != identity.subject:
            raise _not_found(session_id)
        self._know(identity, session_id)

    async def check_read(self, identity: Identity, session_id: str) -> None:
        if self._enforced and not identity.admin:
            await self.check_write(identity, session_id)

    async def check_write(self, identity: Identity, session_id: str) -> None:
        if not self._enforced or self._is_known(identity, session_id):
            return
        if await self._owners.owner(session_id) != identity.subject:
            raise _not_found(session_id)
        self._know(identity, session_id)

    def _is_known(self, identity: Identity, session_id: str) -> bool:
        until = self._known.get((session_id, identity.subject))
        return until is not None and until > time.monotonic()

    def _know(self, identity: Identity, session_id: str) -> None:
        key = (session_id, identity.subject)
        self._known[key] = time.monotonic() + KNOWN_FOR_S
        self._known.move_to_end(key)
        while len(self._known) > MAX_KNOWN:
            self._known.popitem(last=False)
