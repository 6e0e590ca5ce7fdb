"""Who is looking: a bearer token checked exactly as the gateway checks it. Any valid token may
look at everything; only an admin's (``admin_keys``, or a JWT with ``admin_scope``) may act.
Without auth configured there is one user, who may do everything."""

from fastapi import HTTPException

from by_framework.gateway.auth import Authenticator, Identity, Unauthorized, bearer_token
from by_framework.gateway.settings import GatewaySettings


class Viewers:
    def __init__(self, gateway: GatewaySettings) -> None:
        self._authenticator = Authenticator(gateway)
        self.enforced = gateway.has_auth

    def identify(self, authorization: str | None, access_token: str | None) -> Identity:
        """The caller; 401 without a valid token (when auth is configured)."""
        try:
            return self._authenticator.identify(bearer_token(authorization, access_token))
        except Unauthorized as exc:
            raise HTTPException(401, str(exc), {"WWW-Authenticate": "Bearer"}) from None


def check_admin(identity: Identity) -> None:
    """403 for anyone but an admin: what changes anything is theirs alone."""
    if not identity.admin:
        raise HTTPException(
            403,
            f"{identity.subject!r} may look, not act: this takes a token with the admin scope "
            "(an API key named in BYAI_GATEWAY_ADMIN_KEYS, or a JWT whose scope holds "
            "BYAI_GATEWAY_ADMIN_SCOPE)",
        )
