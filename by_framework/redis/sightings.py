"""When this process last found workers online: the advisory online check before a send or a
sub-call's dispatch stands for the next ones to the same agent types (or worker) for a second.

The check is advisory either way (a crashed worker stays online for heartbeat_ttl), and busy
senders spare a script and a round trip per send. A send or dispatch within that second of the
last worker's graceful stop is queued for the next worker instead of refused.
"""

import math
import time
from collections.abc import Iterable

ONLINE_SEEN_FOR = 1.0
"""Seconds one online check stands for."""

KEPT = 4096
"""Sightings kept at most; past it, those older than ONLINE_SEEN_FOR go (they no longer count)."""


def agent_type_seen(agent_type: str) -> str:
    return f"t:{agent_type}"


def worker_seen(worker_id: str) -> str:
    return f"w:{worker_id}"


class OnlineSightings:
    """Agent types and workers (``agent_type_seen`` / ``worker_seen`` names) found online, and
    when; shared by the engine's sends and dispatches."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}

    def recent(self, names: Iterable[str]) -> bool:
        """Whether each was found online less than ONLINE_SEEN_FOR ago."""
        now = time.monotonic()
        return all(now - self._at.get(name, -math.inf) < ONLINE_SEEN_FOR for name in names)

    def saw(self, names: Iterable[str]) -> None:
        now = time.monotonic()
        for name in names:
            self._at[name] = now
        if len(self._at) > KEPT:
            self._at = {name: at for name, at in self._at.items() if now - at < ONLINE_SEEN_FOR}
