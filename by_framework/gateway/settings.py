"""The gateway's own settings: flags first, then env ``BYAI_GATEWAY_*``, then the defaults."""

import ipaddress
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from by_framework.errors import ConfigurationError

ENV_PREFIX = "BYAI_GATEWAY_"
LOOPBACK_NAMES = {"localhost"}


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class GatewaySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    api_keys: dict[str, str] = Field(
        default_factory=dict,
        description="Static API keys by subject; env 'subject:token,subject2:token2'.",
    )
    admin_keys: frozenset[str] = Field(
        default=frozenset(), description="Subjects of the API keys that may read every session."
    )
    jwt_secret: str | None = Field(default=None, description="HS256 secret of end users' JWTs.")
    jwt_public_key: str | None = Field(
        default=None, description="RS256 public key of end users' JWTs: PEM text or a file path."
    )
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    admin_scope: str = "by:admin"
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    rate: float = Field(default=20.0, gt=0, description="Requests per second per caller.")
    burst: int = Field(default=40, ge=1, description="The token bucket's size.")
    insecure: bool = Field(default=False, description="Serve without auth on a non-loopback host.")
    dashboard: bool = Field(
        default=False,
        description="Mount the dashboard at /dashboard: every valid token may look at the "
        "whole fleet there, every session and dead letter (docs/dashboard.md).",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        keys: dict[str, str] = {}
        for pair in _comma_list(value):
            subject, sep, token = pair.partition(":")
            if not sep or not subject or not token:
                raise ValueError(f"api key {pair!r} is not 'subject:token'")
            keys[subject] = token
        return keys

    @field_validator("admin_keys", "cors_origins", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("jwt_public_key")
    @classmethod
    def _pem(cls, value: str | None) -> str | None:
        """PEM text as given, or read from the file it names."""
        if value is None or value.lstrip().startswith("-----BEGIN"):
            return value
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"{value!r} is neither PEM text nor the path of a PEM file")
        return path.read_text()

    @classmethod
    def resolve(cls, **flags: Any) -> "GatewaySettings":
        """Flags not None, else env ``BYAI_GATEWAY_<NAME>``, else the default."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            env = os.environ.get(ENV_PREFIX + name.upper())
            if env is not None and env != "":
                values[name] = env
        values.update({name: value for name, value in flags.items() if value is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigurationError(f"gateway settings: {problems}") from None

    @property
    def has_auth(self) -> bool:
        return bool(self.api_keys or self.jwt_secret or self.jwt_public_key)

    def check_host(self, host: str) -> None:
        """Refuse to serve without auth anywhere but on this machine, unless ``insecure``."""
        if self.has_auth or self.insecure or _is_loopback(host):
            return
        raise ConfigurationError(
            f"no auth configured and --host {host} is not a loopback address: anyone who can "
            "reach it could read every session. Set BYAI_GATEWAY_API_KEYS or "
            "BYAI_GATEWAY_JWT_SECRET / BYAI_GATEWAY_JWT_PUBLIC_KEY, or pass --insecure"
        )


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
