"""Which backend serves a history URL: the URL's scheme names it.

``memory`` is built in. Other backends are installed packages that declare a factory (a callable
taking the URL and returning an unstarted ``HistoryStore``) in the entry-point group
``by_framework.history``, under the scheme they serve, for example::

    [project.entry-points."by_framework.history"]
    postgresql = "by_framework_history_postgres:from_url"
"""

from collections.abc import Callable
from importlib.metadata import entry_points
from urllib.parse import urlsplit, urlunsplit

from by_framework.errors import ConfigurationError
from by_framework.history.memory import MemoryHistoryStore
from by_framework.ports import HistoryStore

ENTRY_POINT_GROUP = "by_framework.history"

BUILT_IN: dict[str, Callable[[str], HistoryStore]] = {"memory": MemoryHistoryStore.from_url}

PACKAGES = {
    "postgresql": "history/postgres",
    "postgres": "history/postgres",
}
"""Where, in a clone of this repository, the package to install for a scheme whose backend is
not installed lives (not on the public package index: the names there are another project's)."""


def open_history_store(url: str) -> HistoryStore:
    """The (unstarted) store a history URL names: ``memory://`` or ``postgresql://...``.

    Raises ``ConfigurationError`` for a malformed URL, a scheme no installed package serves
    (naming the package to install) or options the backend refuses.
    """
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if not scheme:
        raise ConfigurationError(
            f"history_url {redact(url)!r} is not a URL; use memory:// or postgresql://..."
        )
    factory = BUILT_IN.get(scheme)
    if factory is None:
        factory = _installed(scheme, url)
    try:
        return factory(url)
    except ValueError as exc:
        raise ConfigurationError(f"history_url {redact(url)!r}: {exc}") from None


def _installed(scheme: str, url: str) -> Callable[[str], HistoryStore]:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == scheme]
    package = PACKAGES.get(scheme)
    if not found:
        if package:
            raise ConfigurationError(
                f"history_url {redact(url)!r} needs the {scheme}:// history backend, which is "
                f"not installed: pip install ./{package} (in a clone of by-framework)"
            )
        known = sorted({*BUILT_IN, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})
        raise ConfigurationError(
            f"no history backend serves {scheme}:// (history_url {redact(url)!r}); "
            f"installed: {', '.join(known)}"
        )
    try:
        factory: Callable[[str], HistoryStore] = found[0].load()
    except ImportError as exc:
        hint = (
            f"; reinstall it: pip install ./{package} (in a clone of by-framework)"
            if package
            else ""
        )
        raise ConfigurationError(
            f"the {scheme}:// history backend ({found[0].value}) cannot be imported: {exc}{hint}"
        ) from None
    return factory


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))
