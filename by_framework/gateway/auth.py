"""Who is calling: a bearer token checked as a static API key or a JWT."""

import hmac
from dataclasses import dataclass

import jwt

from by_framework.gateway.settings import GatewaySettings

ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Identity:
    subject: str
    """The caller's user: its tasks' ``user_code`` and its sessions' owner."""
    admin: bool = False
    """May read every session."""


class Unauthorized(Exception):
    """No token, or one that is not valid: the message says which."""


def bearer_token(authorization: str | None, access_token: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, else of ``?access_token=`` (a browser's
    EventSource cannot set headers)."""
    if authorization is None:
        return access_token
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return value.strip()


class Authenticator:
    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._keys = [(token.encode(), subject) for subject, token in settings.api_keys.items()]
        self._jwt_keys = {
            algorithm: key
            for algorithm, key in (
                ("HS256", settings.jwt_secret),
                ("RS256", settings.jwt_public_key),
            )
            if key
        }

    def identify(self, token: str | None) -> Identity:
        if not self._settings.has_auth:
            return Identity(ANONYMOUS, admin=True)
        if not token:
            raise Unauthorized(
                "no bearer token: send 'Authorization: Bearer <token>' (or ?access_token=)"
            )
        subject = self._api_key_subject(token)
        if subject is not None:
            return Identity(subject, admin=subject in self._settings.admin_keys)
        return self._jwt_identity(token)

    def _api_key_subject(self, token: str) -> str | None:
        given = token.encode()
        found = None
        for key, subject in self._keys:  # compare with every key, in constant time
            if hmac.compare_digest(given, key):
                found = subject
        return found

    def _jwt_identity(self, token: str) -> Identity:
        if not self._jwt_keys:
            raise Unauthorized("unknown API key")
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if not isinstance(algorithm, str) or algorithm not in self._jwt_keys:
                raise Unauthorized(
                    f"token is neither a known API key nor a JWT signed with "
                    f"{' or '.join(self._jwt_keys)}"
                )
            claims = jwt.decode(
                token,
                self._jwt_keys[algorithm],
                algorithms=[algorithm],
                issuer=self._settings.jwt_issuer,
                audience=self._settings.jwt_audience,
                options={
                    "require": ["sub", "exp"],
                    "verify_aud": bool(self._settings.jwt_audience),
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        scopes = str(claims.get("scope", "")).split()
        return Identity(str(claims["sub"]), admin=self._settings.admin_scope in scopes)
