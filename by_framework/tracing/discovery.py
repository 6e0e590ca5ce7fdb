"""Which providers a worker traces to: the installed ones whose environment is set.

A tracing package declares a ``TraceProviderFactory`` in the entry-point group
``by_framework.tracing``, for example::

    [project.entry-points."by_framework.tracing"]
    langfuse = "by_framework_trace_langfuse:factory"

At worker start every declared factory is loaded; its provider is created only when all its
``required_env`` variables are set. None enabled: no tracer, no spans, no cost.
"""

import logging
import os
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points

from by_framework.errors import ConfigurationError
from by_framework.tracing.port import TraceProvider, TraceProviderFactory
from by_framework.tracing.tracer import Tracer

ENTRY_POINT_GROUP = "by_framework.tracing"

log = logging.getLogger("by_framework.tracing")


def discover_tracer(
    env: Mapping[str, str] | None = None, declared: Iterable[EntryPoint] | None = None
) -> Tracer | None:
    """The tracer of the providers enabled by ``env`` (default: ``os.environ``) among the
    ``declared`` entry points (default: those installed), or None if there are none.

    A package that cannot be loaded, or that set only some of its variables, is logged and left
    out; one whose variables are all set but that cannot be created raises
    ``ConfigurationError``: the operator asked for it.
    """
    env = os.environ if env is None else env
    declared = entry_points(group=ENTRY_POINT_GROUP) if declared is None else declared
    providers: list[TraceProvider] = []
    for entry_point in declared:
        factory = _load(entry_point)
        if factory is None or not _configured(factory, env):
            continue
        try:
            providers.append(factory.create(env))
        except Exception as exc:
            raise ConfigurationError(
                f"tracing provider {factory.name!r} is configured "
                f"({', '.join(factory.required_env)}) but could not start: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    if not providers:
        return None
    tracer = Tracer(providers)
    log.info("tracing to %s", ", ".join(tracer.names))
    return tracer


def _load(entry_point: EntryPoint) -> TraceProviderFactory | None:
    try:
        factory = entry_point.load()
    except Exception as exc:
        log.warning(
            "tracing provider %s (%s) cannot be imported, so it is off: %s: %s",
            entry_point.name,
            entry_point.value,
            type(exc).__name__,
            exc,
        )
        return None
    if not isinstance(factory, TraceProviderFactory):
        log.warning(
            "tracing entry point %s (%s) is a %s, not a TraceProviderFactory; ignored",
            entry_point.name,
            entry_point.value,
            type(factory).__name__,
        )
        return None
    return factory


def _configured(factory: TraceProviderFactory, env: Mapping[str, str]) -> bool:
    missing = [name for name in factory.required_env if not env.get(name)]
    if missing and len(missing) < len(factory.required_env):
        log.warning(
            "tracing provider %s is off: %s set but %s not",
            factory.name,
            ", ".join(n for n in factory.required_env if n not in missing),
            ", ".join(missing),
        )
    return not missing
