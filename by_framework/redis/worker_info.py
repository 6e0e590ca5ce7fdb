"""The worker info hash: how a worker's profile and reports are laid out, and read back.

The worker writes its profile when it registers and its report with every heartbeat (the
HEARTBEAT script adds ``last_heartbeat`` by Redis's clock). Reading tolerates missing fields: a
lease renewed from the lease keeper's thread sets ``last_heartbeat`` alone.
"""

import json
import math
from collections.abc import Mapping
from typing import Any, cast

from by_framework.ports import WorkerInfo, WorkerProfile, WorkerReport, WorkerState

_STATES = frozenset({"running", "draining", "evicted", "stopping"})


def profile_fields(agent_types: list[str], profile: WorkerProfile) -> dict[str, str]:
    return {
        "agent_types": json.dumps(agent_types),
        "instance": profile.instance,
        "host": profile.host,
        "pid": str(profile.pid),
        "started_at": f"{profile.started_at:.3f}",
        "slots": str(profile.slots),
        "heartbeat_interval": f"{profile.heartbeat_interval:g}",
    }


def report_fields(report: WorkerReport) -> dict[str, str]:
    ended = {str(minute): dict(counts) for minute, counts in sorted(report.ended.items()) if counts}
    run_time = {
        str(minute): [round(total, 6), runs]
        for minute, (total, runs) in sorted(report.run_time.items())
    }
    return {
        "state": report.state,
        "in_flight": str(report.in_flight),
        "config_version": "" if report.config_version is None else str(report.config_version),
        "ended": json.dumps(ended, separators=(",", ":")),
        "run_time": json.dumps(run_time, separators=(",", ":")),
    }


def parse_info(
    worker_id: str, raw: Mapping[bytes, bytes], online: bool, read_at: float
) -> WorkerInfo:
    fields = {name.decode(): value.decode(errors="replace") for name, value in raw.items()}
    return WorkerInfo(
        worker_id=worker_id,
        online=online,
        agent_types=tuple(str(name) for name in _json_list(fields.get("agent_types"))),
        profile=_profile(fields),
        report=_report(fields),
        last_heartbeat=_number(fields.get("last_heartbeat")),
        read_at=read_at,
    )


def _profile(fields: dict[str, str]) -> WorkerProfile | None:
    if "instance" not in fields:
        return None
    return WorkerProfile(
        instance=fields["instance"],
        host=fields.get("host", ""),
        pid=int(_number(fields.get("pid")) or 0),
        started_at=_number(fields.get("started_at")) or 0.0,
        slots=int(_number(fields.get("slots")) or 0),
        heartbeat_interval=_number(fields.get("heartbeat_interval")) or 0.0,
    )


def _report(fields: dict[str, str]) -> WorkerReport | None:
    state = fields.get("state")
    if state not in _STATES:
        return None
    version = _number(fields.get("config_version"))
    ended = {
        int(minute): {
            str(status): count for status, count in counts.items() if isinstance(count, int)
        }
        for minute, counts in _json_dict(fields.get("ended")).items()
        if minute.isdigit() and isinstance(counts, dict)
    }
    return WorkerReport(
        state=cast(WorkerState, state),
        in_flight=int(_number(fields.get("in_flight")) or 0),
        config_version=None if version is None else int(version),
        ended=ended,
        run_time=_run_time(fields.get("run_time")),
    )


def _run_time(text: str | None) -> dict[int, tuple[float, int]]:
    """Minute -> (seconds summed, runs); what is not that shape is left out (an older worker
    publishes none)."""
    run_time: dict[int, tuple[float, int]] = {}
    for minute, pair in _json_dict(text).items():
        if not (minute.isdigit() and isinstance(pair, list) and len(pair) == 2):
            continue
        total, runs = pair
        if isinstance(total, int | float) and isinstance(runs, int) and runs > 0:
            run_time[int(minute)] = (float(total), runs)
    return run_time


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _json_list(text: str | None) -> list[Any]:
    value = _json(text)
    return value if isinstance(value, list) else []


def _json_dict(text: str | None) -> dict[str, Any]:
    value = _json(text)
    return value if isinstance(value, dict) else {}


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None
