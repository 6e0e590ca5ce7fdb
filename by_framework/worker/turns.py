"""A task's run taking its session's turn (per agent type), as its message's multitask
strategy says: wait for the run holding it, refuse to run, or stop that run and go next.

The turn is a lease in the engine (``SessionTurns``), renewed while the run holds it: a worker
killed mid-run leaves a turn that lapses after ``Settings.turn_lease``, longer than the killed
task takes to be reclaimed, and its re-run (the same message id) takes it back at once."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from by_framework.cancellation import cancel_tasks
from by_framework.errors import SessionBusyError, TaskCancelledError
from by_framework.ports import Orchestration, SessionTurns
from by_framework.protocol import MessageHeader, MultitaskStrategy

log = logging.getLogger("by_framework.worker")

Retrying = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]
"""The worker's retry of an engine call through a Redis outage."""

FIRST_WAIT_S = 0.02
LONGEST_WAIT_S = 0.25
"""Polls for a busy turn start this far apart and double up to this (a freed turn is seen
within it)."""


@dataclass(frozen=True, slots=True)
class Turn:
    """A run's hold of its session's turn."""

    superseded: str | None
    """The message id of the run this one stopped to take the turn (``interrupt`` or
    ``rollback``), else None: an adapter undoes that run's writes on ``rollback``."""


class SessionTurnTaker:
    """Takes turns for one worker's runs."""

    def __init__(
        self,
        turns: SessionTurns,
        orchestration: Orchestration,
        lease: float,
        retrying: Retrying,
    ) -> None:
        self._turns = turns
        self._orchestration = orchestration
        self._lease = lease
        self._retrying = retrying
        self._held: set[tuple[str, str, str]] = set()

    def held_now(self) -> list[tuple[str, str, str]]:
        """The turns this worker's runs hold: (session id, agent type, message id). The lease
        thread calls it too, while the loop is blocked (``sorted(set)``: one call under the
        GIL, so the loop cannot change the set mid-copy)."""
        return sorted(self._held)

    @contextlib.asynccontextmanager
    async def hold(
        self, header: MessageHeader, strategy: MultitaskStrategy, cancelled: Callable[[], bool]
    ) -> AsyncIterator[Turn]:
        session, agent_type, me = header.session_id, header.target_agent_type, header.message_id
        superseded = await self._take(session, agent_type, me, strategy, cancelled)
        held = (session, agent_type, me)
        self._held.add(held)
        keeper = asyncio.create_task(self._keep(session, agent_type, me))
        try:
            yield Turn(superseded)
        finally:
            self._held.discard(held)
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            # A turn left behind (Redis away, or this task cancelled meanwhile) lapses with its
            # lease: nothing waits on it for longer than that.
            with contextlib.suppress(Exception):
                await self._turns.give_up(session, agent_type, me)

    async def _take(
        self,
        session: str,
        agent_type: str,
        me: str,
        strategy: MultitaskStrategy,
        cancelled: Callable[[], bool],
    ) -> str | None:
        """Wait for the turn; the run stopped to get it, if any."""
        holder = await self._try(session, agent_type, me)
        if holder is None:
            return None
        if strategy == "reject":
            raise SessionBusyError(session, agent_type, holder)
        superseded: str | None = None
        if strategy in ("interrupt", "rollback"):
            superseded = stopped = holder
            verb = "interrupted" if strategy == "interrupt" else "rolled back"
            reason = f"{verb} by task {me} (multitask_strategy={strategy!r})"
            log.info("task %s: stopping task %s of session %s (%s)", me, holder, session, strategy)
            await self._retrying(
                lambda: cancel_tasks(self._orchestration, session, [stopped], reason, "graceful")
            )
        wait = FIRST_WAIT_S
        while holder is not None:
            if cancelled():
                raise TaskCancelledError(f"cancelled while waiting for task {holder}'s turn")
            await asyncio.sleep(wait)
            wait = min(wait * 2, LONGEST_WAIT_S)
            holder = await self._try(session, agent_type, me)
        return superseded

    async def _try(self, session: str, agent_type: str, me: str) -> str | None:
        return await self._retrying(lambda: self._turns.take(session, agent_type, me, self._lease))

    async def _keep(self, session: str, agent_type: str, me: str) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                kept = await self._turns.keep(session, agent_type, me, self._lease)
            except Exception as exc:  # the next renewal tries again; the lease covers two misses
                log.warning("task %s: could not renew its session turn: %s", me, exc)
                continue
            if not kept:
                log.warning(
                    "task %s lost its turn in session %s (its lease lapsed): another run of %s "
                    "may run beside it",
                    me,
                    session,
                    agent_type,
                )
                return
