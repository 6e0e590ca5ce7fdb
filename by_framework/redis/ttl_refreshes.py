"""When this process last set each session stream's TTL: a task's steps refresh it once per
hundredth of the TTL, not at every write (the begin and the end of every task did: two EXPIREs).

Between refreshes a script is passed the TTL negated: it sets the TTL only where its append
creates the stream (``XADD ... NOMKSTREAM`` finds none: deleted or expired meanwhile), so no
stream is ever left without one. A session's events live at least 99 % of the TTL past its last
write: each write either refreshes the TTL or comes less than a hundredth of it after a write of
the same process that did.
"""

import math
import time

REFRESHES_PER_TTL = 100

KEPT = 10_000
"""Streams remembered before those refreshed longer ago than a hundredth of the TTL go."""


class TtlRefreshes:
    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self._every = ttl / REFRESHES_PER_TTL
        self._at: dict[str, float] = {}
        self._limit = KEPT

    def ttl_arg(self, stream: str) -> int:
        """The TTL for a script appending to ``stream`` now: negated when this process set it
        less than a hundredth of it ago (set then only on a stream the append creates)."""
        if time.monotonic() - self._at.get(stream, -math.inf) < self._every:
            return -self.ttl
        return self.ttl

    def refreshed(self, stream: str, asked_at: float) -> None:
        """A script passed the TTL set it; ``asked_at``: ``time.monotonic()`` before the call
        (the TTL runs at least from then). Only a script known to have run counts: one that
        returned before its append left the TTL as it was."""
        self._at[stream] = asked_at
        if len(self._at) > self._limit:
            now = time.monotonic()
            self._at = {key: at for key, at in self._at.items() if now - at < self._every}
            self._limit = max(KEPT, 2 * len(self._at))  # pruned again only once it doubles
