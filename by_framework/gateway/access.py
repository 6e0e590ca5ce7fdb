"""Whose session is it: a session belongs to the user whose send created it."""

from fastapi import HTTPException

from by_framework.gateway.auth import Identity
from by_framework.ports import SessionOwners


def _not_found(session_id: str) -> HTTPException:
    # 404, not 403: another user's session must not even be seen to exist.
    return HTTPException(404, f"no session {session_id!r}")


class Access:
    """Checks every use of a session against its owner; with no auth configured there is one
    user and nothing to check."""

    def __init__(self, owners: SessionOwners, enforced: bool) -> None:
        self._owners = owners
        self._enforced = enforced

    async def claim(self, identity: Identity, session_id: str) -> None:
        """Before a send: the session becomes the caller's if it is no one's yet."""
        if self._enforced and await self._owners.claim(session_id, identity.subject) != (
            identity.subject
        ):
            raise _not_found(session_id)

    async def check_read(self, identity: Identity, session_id: str) -> None:
        if self._enforced and not identity.admin:
            await self.check_write(identity, session_id)

    async def check_write(self, identity: Identity, session_id: str) -> None:
        if self._enforced and await self._owners.owner(session_id) != identity.subject:
            raise _not_found(session_id)
