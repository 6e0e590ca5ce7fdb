"""Firing due schedules: every worker takes part, and each tick's task is sent once.

A worker takes a due tick for ``LEASE_S`` (one script: no other worker takes it meanwhile),
sends its task under the tick's own message id and send id, then settles it (the next tick,
or removed). If the worker dies between the two, another takes the tick over once the lease
runs out and sends it again under the same ids: a send that was delivered is not repeated,
one that was not is. A tick with no online worker to get its task is tried again
``RETRY_S`` later, with the reason in the schedule's state.
"""

import asyncio
import logging
import time
from datetime import UTC, datetime

from by_framework.errors import NoOnlineWorkerError
from by_framework.ports import DueFiring, Engine
from by_framework.protocol import AskAgentCommand, MessageHeader, encode_command
from by_framework.protocol.schedules import Schedule, ScheduleState, tick_message_id
from by_framework.scheduling.cron import Cron

log = logging.getLogger(__name__)

LEASE_S = 15.0
"""How long a taken tick is the taker's: longer than a send takes, its retries through a Redis
outage included (about 6 s), and no longer, for a tick whose taker was killed holding it is late
by that much (another worker sending it early is safe too: the same ids)."""
RETRY_S = 5.0
BATCH = 16


class ScheduleFirer:
    def __init__(self, engine: Engine, interval: float) -> None:
        self._engine = engine
        self._interval = interval

    async def run_forever(self) -> None:
        while True:
            try:
                while await self.fire_due() == BATCH:  # more are due: no wait
                    pass
            except self._engine.transient_errors as exc:
                log.warning("firing schedules failed (%s); retrying", exc)
            await asyncio.sleep(self._interval)

    async def fire_due(self) -> int:
        """Fire what is due now; how many ticks were taken."""
        now = time.time()
        firings = await self._engine.schedules.take_due(now, LEASE_S, BATCH)
        for firing in firings:
            try:
                await self._fire(firing, now)
            except self._engine.transient_errors:
                raise
            except Exception:  # one bad schedule must not stop the others, nor this loop
                log.exception(
                    "schedule %s could not be fired; it is tried again in %gs",
                    firing.schedule.schedule_id, LEASE_S,
                )  # fmt: skip
        return len(firings)

    async def _fire(self, firing: DueFiring, now: float) -> None:
        schedule, tick = firing.schedule, firing.tick
        header = MessageHeader(
            message_id=tick_message_id(schedule.schedule_id, tick),
            session_id=schedule.session_id,
            target_agent_type=schedule.target_agent_type,
            user_code=schedule.user_code,
            metadata={**schedule.metadata, "schedule_id": schedule.schedule_id,
                      "scheduled_for": tick},
        )  # fmt: skip
        envelope = encode_command(header, AskAgentCommand(content=schedule.content))
        state = schedule.state
        try:
            await self._engine.control.send(header, envelope, None, send_id=f"tick-{tick}")
        except NoOnlineWorkerError as exc:
            log.warning("schedule %s: %s; trying again in %gs", schedule.schedule_id, exc, RETRY_S)
            error = state.model_copy(update={"last_error": str(exc)})
            await self._engine.schedules.settle(firing, now + RETRY_S, error, fired=False)
            return
        done = ScheduleState(
            fired=state.fired + 1,
            last_message_id=header.message_id,
            last_fired_at=now,
        )
        if await self._engine.schedules.settle(firing, next_tick(schedule, now), done, fired=True):
            log.info("schedule %s sent %s", schedule.schedule_id, header.message_id)


def next_tick(schedule: Schedule, after: float) -> float | None:
    """When a cron schedule fires next after ``after`` (missed ticks are not made up: one fires
    late, then the schedule goes on from now); None for a one-time one."""
    if schedule.cron is None:
        return None
    cron = Cron.parse(schedule.cron, schedule.timezone)
    return cron.next_after(datetime.fromtimestamp(after, UTC)).timestamp()
