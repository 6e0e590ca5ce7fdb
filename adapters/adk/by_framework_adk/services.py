"""ADK session, artifact and memory services named by URL, as ADK's own command line names them."""

import logging
import os
from urllib.parse import urlsplit, urlunsplit

from google.adk.artifacts import BaseArtifactService, InMemoryArtifactService
from google.adk.cli.service_registry import get_service_registry
from google.adk.memory import BaseMemoryService
from google.adk.sessions import BaseSessionService, InMemorySessionService

log = logging.getLogger("by_framework_adk")

SESSION_URL_ENV = "BYAI_ADK_SESSION_URL"
ARTIFACT_URL_ENV = "BYAI_ADK_ARTIFACT_URL"
MEMORY_URL_ENV = "BYAI_ADK_MEMORY_URL"


def session_service_from_url(url: str) -> BaseSessionService:
    """The ADK session service a URL names.

    ``sqlite:///relative.db`` / ``sqlite:////absolute.db`` (ADK's ``SqliteSessionService``),
    ``postgresql+asyncpg://...``, ``mysql+aiomysql://...`` or any other SQLAlchemy async URL
    (ADK's ``DatabaseSessionService``, which needs ``google-adk[db]`` or this package's ``db``
    extra), ``memory://``, and any scheme registered in ADK's service registry.
    """
    service = get_service_registry().create_session_service(url)
    if service is not None:
        return service
    from google.adk.sessions import DatabaseSessionService

    return DatabaseSessionService(db_url=url)


def artifact_service_from_url(url: str) -> BaseArtifactService:
    """The ADK artifact service a URL names: ``file:///dir``, ``gs://bucket``, ``memory://``, or
    any scheme registered in ADK's service registry."""
    service = get_service_registry().create_artifact_service(url)
    if service is None:
        raise ValueError(f"no ADK artifact service for {_redacted(url)!r}")
    return service


def memory_service_from_url(url: str) -> BaseMemoryService:
    """The ADK memory service a URL names: ``memory://`` (this process only), ``sqlite:///x.db``
    (a file: processes of one host), ``rag://corpus`` / ``agentengine://id`` (Vertex AI: a
    Google Cloud project), or any scheme registered in ADK's service registry."""
    service = get_service_registry().create_memory_service(url)
    if service is None:
        raise ValueError(f"no ADK memory service for {_redacted(url)!r}")
    return service


def resolve_session_service(
    service: BaseSessionService | None, url: str | None, agent_type: str
) -> BaseSessionService:
    """The service passed in, else the one ``url`` (or ``$BYAI_ADK_SESSION_URL``) names, else an
    in-memory one with a warning: sessions then live and die with this one process."""
    if service is not None:
        return service
    url = url or os.environ.get(SESSION_URL_ENV)
    if url:
        log.info("ADK agent %s: sessions in %s", agent_type, _redacted(url))
        return session_service_from_url(url)
    log.warning(
        "ADK agent %s: sessions are kept in this process's memory (InMemorySessionService); "
        "fine for one worker, but a resume or a follow-up that another worker picks up will not "
        "see them. Share one store between replicas: session_url= or $%s (e.g. "
        "sqlite:////var/lib/app/sessions.db, postgresql+asyncpg://...).",
        agent_type,
        SESSION_URL_ENV,
    )
    return InMemorySessionService()


def resolve_artifact_service(
    service: BaseArtifactService | None, url: str | None
) -> BaseArtifactService:
    """The service passed in, else the one ``url`` (or ``$BYAI_ADK_ARTIFACT_URL``) names, else an
    in-memory one (artifacts saved by one run are then seen only by runs in this process)."""
    if service is not None:
        return service
    url = url or os.environ.get(ARTIFACT_URL_ENV)
    return artifact_service_from_url(url) if url else InMemoryArtifactService()


def resolve_memory_service(
    service: BaseMemoryService | None, url: str | None
) -> BaseMemoryService | None:
    """The service passed in, else the one ``url`` (or ``$BYAI_ADK_MEMORY_URL``) names, else
    none (as ADK's ``Runner`` has by default: memory tools then fail)."""
    if service is not None:
        return service
    url = url or os.environ.get(MEMORY_URL_ENV)
    return memory_service_from_url(url) if url else None


def _redacted(url: str) -> str:
    """The URL without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
