"""An operator's orders to one worker: drain, resume, evict.

An order is a signed command on the worker's notice stream (read whatever its load), naming the
worker process it is meant for; the worker publishes its new state at once, and the order is
done when the worker's info shows it. A worker that is not alive cannot obey: evicting one hands
its pending entries back to their queues from here, through the same hand-back a worker uses.
"""

import asyncio
from typing import Literal

from by_framework.errors import WorkerOrderError
from by_framework.fleet.status import is_alive
from by_framework.ports import Engine, WorkerInfo, WorkerState
from by_framework.protocol import (
    DrainWorkerCommand,
    EvictWorkerCommand,
    MalformedEntry,
    MessageHeader,
    ResumeWorkerCommand,
    decode_command,
    encode_command,
)
from by_framework.protocol.ids import new_id
from by_framework.settings import Settings

Order = Literal["drain", "resume", "evict"]
ORDERS: tuple[Order, ...] = ("drain", "resume", "evict")
_COMMANDS = {
    "drain": DrainWorkerCommand,
    "resume": ResumeWorkerCommand,
    "evict": EvictWorkerCommand,
}
_STATES: dict[Order, WorkerState] = {"drain": "draining", "resume": "running", "evict": "evicted"}
POLL_S = 0.1


async def order_worker(
    engine: Engine, settings: Settings, worker_id: str, order: Order, timeout: float
) -> str:
    """Carry out the order; what was done, in a sentence. ``WorkerOrderError`` when it could
    not be, or the worker did not confirm within ``timeout`` seconds."""
    info = await engine.fleet.worker(worker_id)
    if info is None:
        raise WorkerOrderError(
            f"worker {worker_id!r} is not registered (never started, shut down, or gone longer "
            "than record_ttl); `status` lists the workers"
        )
    if order == "evict" and not is_alive(info):
        return await _take_over(engine, settings, info)
    instance = _commandable(info, order)
    header = MessageHeader(session_id=f"order-{new_id()}", target_agent_type="*")
    command = _COMMANDS[order](worker_id=worker_id, instance=instance)
    await engine.orchestration.send_to_worker(worker_id, encode_command(header, command))
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await asyncio.sleep(POLL_S)
        seen = await engine.fleet.worker(worker_id)
        if seen is not None and _obeyed(seen, instance, _STATES[order]):
            return _done(seen, order)
        if seen is None or seen.profile is None or seen.profile.instance != instance:
            raise WorkerOrderError(
                f"worker {worker_id!r} stopped or restarted before it confirmed the {order}"
            )
        if not is_alive(seen):  # died meanwhile, or had died before its key expired
            if order == "evict":
                return await _take_over(engine, settings, seen)
            raise WorkerOrderError(_not_alive(seen))
        if asyncio.get_running_loop().time() >= deadline:
            state = seen.report.state if seen.report is not None else "unknown"
            raise WorkerOrderError(
                f"worker {worker_id!r} did not confirm the {order} within {timeout:g}s (it "
                f"reports {state}): is its event loop blocked, or does it refuse the command "
                "(a worker with a signing key takes only commands signed with it: set "
                "BYAI_SIGNING_KEY here too)?"
            )


def _commandable(info: WorkerInfo, order: Order) -> str:
    """The instance to address the order to, if the worker can take it."""
    if not is_alive(info):
        raise WorkerOrderError(_not_alive(info))
    if info.profile is None:
        raise WorkerOrderError(
            f"worker {info.worker_id!r} publishes no profile (an older version): it cannot "
            f"take a {order}"
        )
    if info.report is not None and info.report.state == "stopping":
        raise WorkerOrderError(f"worker {info.worker_id!r} is shutting down")
    return info.profile.instance


def _not_alive(info: WorkerInfo) -> str:
    return (
        f"worker {info.worker_id!r} is not alive ({_last_heartbeat(info)}); "
        f"`workers evict {info.worker_id}` hands back what it left pending"
    )


def _last_heartbeat(info: WorkerInfo) -> str:
    age = info.heartbeat_age
    return "no heartbeat seen" if age is None else f"last heartbeat {age:.1f}s ago"


def _obeyed(info: WorkerInfo, instance: str, state: WorkerState) -> bool:
    return (
        info.profile is not None
        and info.profile.instance == instance
        and info.report is not None
        and info.report.state == state
    )


def _done(info: WorkerInfo, order: Order) -> str:
    in_flight = info.report.in_flight if info.report is not None else 0
    name = info.worker_id
    if order == "drain":
        return (
            f"worker {name} is draining: it takes no new work from its agent types; its "
            f"{in_flight} task(s) in flight finish there (`workers resume {name}` undoes it)"
        )
    if order == "resume":
        return f"worker {name} is running: it takes new work again"
    return (
        f"worker {name} is evicted: its work not yet started went back to the queues; its "
        f"{in_flight} running task(s) finish there (`workers resume {name}` undoes it)"
    )


async def _take_over(engine: Engine, settings: Settings, info: WorkerInfo) -> str:
    """Hand a dead worker's pending entries back to their queues now, rather than after its
    lease. Only entries that verify are handed back (re-signed when a signing key is set);
    the others are left to the sweep, which dead-letters them."""
    control = engine.control
    shared = control.streams(info.agent_types, info.worker_id)[:-1]  # its own stream waits
    handed = left = 0
    for delivery in await control.pending_of(shared, info.worker_id):
        try:
            envelope = decode_command(
                delivery.fields,
                settings.max_entry_bytes,
                settings.signing_key_bytes,
                stream=delivery.stream,
                entry_id=delivery.entry_id,
                max_age=settings.command_max_age,
            )
        except MalformedEntry:
            left += 1
            continue
        await control.hand_back(delivery, envelope.header, info.worker_id, crashed=True)
        handed += 1
    message = (
        f"worker {info.worker_id} is not alive ({_last_heartbeat(info)}): handed {handed} "
        "pending task(s) back to their queues"
    )
    if left:
        message += f"; {left} that did not verify are left to the sweep, which dead-letters them"
    return message
