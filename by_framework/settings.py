"""One settings object: explicit arguments, then environment variables, then defaults."""

import json
import os
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from by_framework.errors import ConfigurationError


def _env(name: str) -> dict[str, Any]:
    return {"env": name}


class Settings(BaseModel):
    """Every tunable of a worker or client. ``docs/configuration.md`` is generated from this."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    worker_id: str = Field(
        "worker-1",
        min_length=1,
        description="Unique worker instance id.",
        json_schema_extra=_env("BYAI_WORKER_ID"),
    )
    redis_url: str | None = Field(
        None,
        description=(
            "redis:// or rediss:// URL, or redis+cluster://host:port[,host:port...] "
            "(rediss+cluster:// for TLS) for a Redis Cluster; wins over host/port."
        ),
        json_schema_extra=_env("REDIS_URL"),
    )
    redis_host: str = Field(
        "localhost", description="Redis host.", json_schema_extra=_env("BYAI_REDIS_HOST")
    )
    redis_port: int = Field(
        6379, description="Redis port.", json_schema_extra=_env("BYAI_REDIS_PORT")
    )
    redis_cluster: bool = Field(
        False,
        description="redis_host / redis_port name a node of a Redis Cluster (no redis_url).",
        json_schema_extra=_env("BYAI_REDIS_CLUSTER"),
    )
    redis_db: int = Field(
        0, ge=0, description="Redis database number.", json_schema_extra=_env("BYAI_REDIS_DB")
    )
    redis_password: str | None = Field(
        None, description="Redis password.", json_schema_extra=_env("BYAI_REDIS_PASSWORD")
    )
    redis_username: str | None = Field(
        None, description="Redis ACL user name.", json_schema_extra=_env("BYAI_REDIS_USERNAME")
    )
    redis_ssl_ca_certs: str | None = Field(
        None,
        description="CA bundle that signed the Redis server's certificate (rediss:// URLs).",
        json_schema_extra=_env("BYAI_REDIS_SSL_CA_CERTS"),
    )
    redis_ssl_certfile: str | None = Field(
        None,
        description="Client certificate, for Redis servers that require one (rediss://).",
        json_schema_extra=_env("BYAI_REDIS_SSL_CERTFILE"),
    )
    redis_ssl_keyfile: str | None = Field(
        None,
        description="Key of the client certificate (rediss://).",
        json_schema_extra=_env("BYAI_REDIS_SSL_KEYFILE"),
    )
    redis_max_connections: int | None = Field(
        None,
        ge=2,
        description="Connection pool size (default max_concurrency + 10); a full pool waits.",
        json_schema_extra=_env("BYAI_REDIS_MAX_CONNECTIONS"),
    )
    key_prefix: str = Field(
        "byai_gateway",
        min_length=1,
        description="Prefix of every Redis key.",
        json_schema_extra=_env("BYAI_KEY_PREFIX"),
    )
    consumer_group: str = Field(
        "agent_engines",
        min_length=1,
        description="Consumer group on every control stream.",
        json_schema_extra=_env("BYAI_CONSUMER_GROUP"),
    )
    agent_type_shards: dict[str, int] = Field(
        {},
        description="Hot agent types spread over several control streams (hash slots), as JSON: "
        '{"resizer": 4}; a session\'s commands go to one shard, its workers read them all. '
        "Senders and workers must agree.",
        json_schema_extra=_env("BYF_AGENT_TYPE_SHARDS"),
    )
    workspace_dir: str = Field(
        "/tmp/gateway-workspace",
        description="Root of the per-task workspace directories.",
        json_schema_extra=_env("BYAI_WORKSPACE_DIR"),
    )
    max_concurrency: int = Field(
        50,
        ge=1,
        description="Tasks run at once per worker.",
        json_schema_extra=_env("BYAI_WORKER_CONCURRENCY"),
    )
    fetch_count: int = Field(
        10,
        ge=1,
        description="Batch size of one XREADGROUP.",
        json_schema_extra=_env("BYAI_WORKER_FETCH_COUNT"),
    )
    heartbeat_interval: float = Field(
        5.0,
        gt=0,
        description="Seconds between heartbeats.",
        json_schema_extra=_env("BYAI_HEARTBEAT_INTERVAL"),
    )
    heartbeat_ttl: float = Field(
        15.0,
        gt=0,
        description="Seconds a worker stays online without a heartbeat.",
        json_schema_extra=_env("BYAI_HEARTBEAT_TTL"),
    )
    lease_seconds: float = Field(
        15.0,
        gt=0,
        description="An in-flight command not renewed for this long is reclaimed by a live "
        "worker; renewed every heartbeat while its task runs, however long.",
        json_schema_extra=_env("BYAI_LEASE_SECONDS"),
    )
    sweep_interval: float = Field(
        5.0,
        gt=0,
        description="Seconds between a worker's sweeps for abandoned commands (XAUTOCLAIM).",
        json_schema_extra=_env("BYAI_SWEEP_INTERVAL"),
    )
    schedule_interval: float = Field(
        1.0,
        gt=0,
        description="Seconds between a worker's looks for scheduled runs that are due: how late "
        "a schedule may fire.",
        json_schema_extra=_env("BYAI_SCHEDULE_INTERVAL"),
    )
    max_deliveries: int = Field(
        5,
        ge=1,
        description="Runs a command gets; past that it is dead-lettered and its task FAILED.",
        json_schema_extra=_env("BYAI_MAX_DELIVERIES"),
    )
    task_timeout: float | None = Field(
        None,
        gt=0,
        description="Seconds a task may run before it ends FAILED (None: no limit).",
        json_schema_extra=_env("BYAI_TASK_TIMEOUT"),
    )
    shutdown_timeout: float = Field(
        30.0,
        ge=0,
        description="Seconds in-flight tasks get to finish on shutdown; "
        "unfinished ones go back to their queue.",
        json_schema_extra=_env("BYAI_SHUTDOWN_TIMEOUT"),
    )
    cancel_grace_seconds: float = Field(
        10.0,
        ge=0,
        description="After a graceful cancel, seconds a running task gets to see "
        "context.cancelled and end on its own before it is cancelled outright.",
        json_schema_extra=_env("BYAI_CANCEL_GRACE_SECONDS"),
    )
    worker_wait_seconds: float = Field(
        10.0,
        ge=0,
        description="Seconds a send waits for an online worker of its agent type (one that "
        "registers again after a Redis restart) before NoOnlineWorkerError; 0: fail at once.",
        json_schema_extra=_env("BYAI_WORKER_WAIT_SECONDS"),
    )
    plugin_dir: str | None = Field(
        None,
        description="A directory whose modules define plugins (only its own *.py files).",
        json_schema_extra=_env("BYAI_PLUGIN_DIR"),
    )
    plugin_entry_points: bool = Field(
        True,
        description="Load the plugins installed packages declare in the entry-point group "
        "by_framework.plugins.",
        json_schema_extra=_env("BYAI_PLUGIN_ENTRY_POINTS"),
    )
    plugin_hook_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="Seconds a plugin hook may take; one that takes longer is abandoned, "
        "logged and counted, and the task goes on.",
        json_schema_extra=_env("BYAI_PLUGIN_HOOK_TIMEOUT_SECONDS"),
    )
    plugin_log_hook_stats_on_shutdown: bool = Field(
        True,
        description="Log per-plugin, per-hook success / failure / timeout counts at shutdown.",
        json_schema_extra=_env("BYAI_PLUGIN_LOG_HOOK_STATS_ON_SHUTDOWN"),
    )
    data_stream_maxlen: int = Field(
        10_000,
        ge=1,
        description="Approximate cap of a session stream.",
        json_schema_extra=_env("BYAI_DATA_STREAM_MAXLEN"),
    )
    data_stream_ttl: int = Field(
        86_400,
        ge=1,
        description=(
            "Seconds a session stream lives after its last write (within 1 %: a worker sets the"
            " TTL again at most once per hundredth of it)."
        ),
        json_schema_extra=_env("BYAI_DATA_STREAM_TTL"),
    )
    record_ttl: int = Field(
        604_800,
        ge=1,
        description=(
            "Seconds execution records live after their last update (a run's end counts within"
            " 1 %: it sets the TTL again only for a task sent more than a hundredth of it before)."
        ),
        json_schema_extra=_env("BYAI_RECORD_TTL"),
    )
    dead_letter_maxlen: int = Field(
        10_000,
        ge=1,
        description="Approximate cap of the dead-letter stream.",
        json_schema_extra=_env("BYAI_DEAD_LETTER_MAXLEN"),
    )
    dead_letter_entry_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="Most bytes of a rejected entry a dead letter keeps: a larger entry keeps "
        "its head, with the size and sha256 of what was cut, and cannot be replayed. The "
        "dead-letter stream holds about dead_letter_maxlen times this at most.",
        json_schema_extra=_env("BYAI_DEAD_LETTER_ENTRY_BYTES"),
    )
    history_url: str = Field(
        "memory://",
        min_length=1,
        description="Where workers keep session history: memory:// (each process its own) or "
        "postgresql://user@host/db?schema=... "
        "(pip install ./history/postgres, in a clone of by-framework).",
        json_schema_extra=_env("BYF_HISTORY_URL"),
    )
    signing_key: SecretStr | None = Field(
        None,
        description="Shared secret: clients sign every command (HMAC-SHA256) and workers "
        "dead-letter unsigned or forged ones.",
        json_schema_extra=_env("BYAI_SIGNING_KEY"),
    )
    command_max_age: int = Field(
        86_400,
        ge=1,
        description="Most seconds between a signed command's signing and Redis adding it to "
        "its stream (with signing_key): a later one is dead-lettered as expired, so that the "
        "bytes of a command cannot run again once its record is gone. At most record_ttl.",
        json_schema_extra=_env("BYAI_COMMAND_MAX_AGE"),
    )
    max_entry_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest control entry a worker accepts.",
        json_schema_extra=_env("BYAI_MAX_ENTRY_BYTES"),
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port of the worker's /metrics (Prometheus), /healthz and /readyz; None: "
        "off. Needs the [metrics] extra (pip install 'by-framework[metrics]').",
        json_schema_extra=_env("BYAI_METRICS_PORT"),
    )
    metrics_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address the metrics port listens on (0.0.0.0: every interface, as a "
        "container needs for its probes).",
        json_schema_extra=_env("BYAI_METRICS_HOST"),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO",
        description="Lowest level logged (any case). INFO includes one line per task end.",
        json_schema_extra=_env("BYAI_LOG_LEVEL"),
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="text: one readable line per record; json: one JSON object per line, with "
        "a record's fields (message_id, agent_type, status, duration_s) as keys.",
        json_schema_extra=_env("BYAI_LOG_FORMAT"),
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("agent_type_shards", mode="before")
    @classmethod
    def _shards_from_json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(
                f'write a JSON object such as {{"resizer": 4}}, not {value!r}'
            ) from None

    @field_validator("agent_type_shards")
    @classmethod
    def _positive_shards(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {name: count for name, count in value.items() if count < 1}
        if bad:
            raise ValueError(f"an agent type has one control stream at least: {bad}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> "Settings":
        if self.heartbeat_ttl <= self.heartbeat_interval:
            raise ValueError(
                f"heartbeat_ttl ({self.heartbeat_ttl}) must exceed heartbeat_interval "
                f"({self.heartbeat_interval}), or workers flicker offline between heartbeats"
            )
        if self.redis_url:
            _check_redis_url(self.redis_url)
        _check_tls_files(self.tls_options)
        if self.tls_options and not (self.redis_url or "").startswith(("rediss://", "rediss+")):
            raise ValueError("the redis_ssl_* options need a rediss:// redis_url")
        if self.lease_seconds <= 2 * self.heartbeat_interval:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds}) must exceed two heartbeat intervals "
                f"({self.heartbeat_interval}), or live tasks get reclaimed"
            )
        if self.signing_key and self.command_max_age > self.record_ttl:
            raise ValueError(
                f"command_max_age ({self.command_max_age}) must not exceed record_ttl "
                f"({self.record_ttl}), or a signed command could run again once its record "
                "expired: lower BYAI_COMMAND_MAX_AGE or raise BYAI_RECORD_TTL"
            )
        return self

    @property
    def turn_lease(self) -> float:
        """Seconds a session turn outlasts its last renewal: long enough for the task of a run
        killed while holding it to be reclaimed (``lease_seconds``, its worker offline:
        ``heartbeat_ttl``) and re-run (a sweep late, and one more) while the turn is still that
        task's, so that a message waiting for the turn runs after the re-run."""
        return max(self.lease_seconds, self.heartbeat_ttl) + 2 * self.sweep_interval

    @property
    def signing_key_bytes(self) -> bytes | None:
        return self.signing_key.get_secret_value().encode() if self.signing_key else None

    @property
    def tls_options(self) -> dict[str, str]:
        """The TLS file options that are set, named as redis-py's connection takes them."""
        options = {
            "ssl_ca_certs": self.redis_ssl_ca_certs,
            "ssl_certfile": self.redis_ssl_certfile,
            "ssl_keyfile": self.redis_ssl_keyfile,
        }
        return {name: value for name, value in options.items() if value}

    @property
    def pool_size(self) -> int:
        return self.redis_max_connections or self.max_concurrency + 10

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> "Settings":
        """Explicit (non-None) arguments win, then environment variables, then defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            extra = field.json_schema_extra
            env_name = extra.get("env") if isinstance(extra, dict) else None
            if explicit.get(name) is not None:
                values[name] = explicit[name]
            elif isinstance(env_name, str) and environ.get(env_name):
                values[name] = environ[env_name]
        unknown = set(explicit) - set(cls.model_fields)
        if unknown:
            raise ConfigurationError(f"unknown settings: {sorted(unknown)}")
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigurationError(_one_line(exc)) from None


REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


def _check_redis_url(url: str) -> None:
    """redis-py takes only these schemes; a bare ``host:port`` would fail deep inside it."""
    if urlsplit(url).scheme in REDIS_SCHEMES:
        return
    rest = url.split("://", 1)[-1]
    if "@" in rest:  # never show a password
        rest = "***@" + rest.rpartition("@")[2]
    raise ValueError(
        f"redis_url must start with redis://, rediss://, unix:// or redis+cluster://: "
        f"write redis://{rest} "
        "(--redis-url / REDIS_URL)"
    )


def _check_tls_files(options: Mapping[str, str]) -> None:
    for name, path in options.items():
        if not os.path.isfile(path):
            raise ValueError(
                f"redis_{name} {path!r} is not a file: give the path of a PEM file "
                f"(--redis-{name.replace('_', '-')} / BYAI_REDIS_{name.upper()})"
            )


def _one_line(error: ValidationError) -> str:
    """Each problem as ``field (ENV): message``, without the values given: they may hold the
    password or the signing key."""
    problems = []
    for problem in error.errors(include_url=False, include_input=False):
        message = problem["msg"].removeprefix("Value error, ")
        name = ".".join(str(part) for part in problem["loc"])
        field = Settings.model_fields.get(name)
        extra = field.json_schema_extra if field is not None else None
        env_name = extra.get("env") if isinstance(extra, dict) else None
        problems.append(f"{name} ({env_name}): {message}" if env_name else message)
    return "; ".join(problems)


def reference_table() -> str:
    """The Markdown table of every setting: ``docs/configuration.md`` embeds it verbatim."""
    rows = [
        "| Parameter | Environment variable | Default | Description |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra
        env_name = extra.get("env") if isinstance(extra, dict) else None
        default = "max_concurrency + 10" if name == "redis_max_connections" else field.default
        rows.append(f"| `{name}` | `{env_name}` | `{default}` | {field.description} |")
    return "\n".join(rows) + "\n"
