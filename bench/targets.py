"""The issues' targets beside the figures that answer them, each marked met or missed.

Targets (issue 21, raising issue 9's): throughput >= 70 % of the raw loop with one worker and
>= 85 % with two (DESIGN.md's pipelined raw loop: the per-task one), >= 3x arq's and >= 3x
taskiq's at the same worker count; a call (one task at a time, sent and awaited by a read of its
own) p50 <= 1.3x the raw loop's and p99 <= 2 ms; Redis commands per task <= 12 and Redis CPU per
task <= taskiq's; p50 dispatch (send -> first chunk read) <= 1.5 ms; >= 100k chunks/s from a
worker to a reader.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from bench.measure import Figures, percentile

FRAMEWORK = "by-framework"
RAW_TASK = "raw, per task"

SHARE_OF_RAW = {1: 0.70, 2: 0.85}  # by worker count
TIMES_ARQ = 3.0
TIMES_TASKIQ = 3.0
CALL_P50_OF_RAW = 1.3
CALL_P99_MS = 2.0
COMMANDS_PER_TASK = 12
DISPATCH_P50_MS = 1.5
CHUNKS_PER_S = 100_000
NOT_MEASURED = "not measured"


@dataclass(frozen=True, slots=True)
class Target:
    figure: str
    value: str
    target: str = "-"
    met: bool | None = None  # None: no target, or nothing measured

    @property
    def verdict(self) -> str:
        if self.value == NOT_MEASURED:
            return NOT_MEASURED
        if self.met is None:
            return "-"
        return "met" if self.met else "MISSED"


def comparison(figures: Sequence[Figures]) -> list[Target]:
    """Throughput against raw, arq and taskiq at each worker count; calls against the raw
    loop's; Redis's work per task; p50 dispatch."""
    rows = []
    for workers in sorted({f.workers for f in figures}):
        at = [f for f in figures if f.workers == workers]
        ours = next(f for f in at if f.system == FRAMEWORK)
        share = SHARE_OF_RAW.get(workers, SHARE_OF_RAW[2])
        for other, goal, target in (
            (RAW_TASK, share, f">= {share:.0%}"),
            ("arq", TIMES_ARQ, f">= {TIMES_ARQ:g}x"),
            ("taskiq", TIMES_TASKIQ, f">= {TIMES_TASKIQ:g}x"),
        ):
            figure = f"throughput / {other}, {_workers(workers)}"
            theirs = next((f for f in at if f.system.startswith(other)), None)
            if theirs is None:
                rows.append(Target(figure, NOT_MEASURED, target))
                continue
            ratio = ours.tasks_per_s / theirs.tasks_per_s
            value = f"{ratio:.0%}" if goal < 1 else f"{ratio:.2f}x"
            rows.append(Target(figure, value, target, ratio >= goal))
        rows += _calls(ours, next((f for f in at if f.system == RAW_TASK), None))
        rows += _redis_work(ours, next((f for f in at if f.system.startswith("taskiq")), None))
        p50 = percentile(ours.first_ms, 0.50)
        rows.append(
            Target(
                f"p50 dispatch (send -> first chunk read), {_workers(workers)}",
                f"{p50:.2f} ms",
                f"<= {DISPATCH_P50_MS:g} ms",
                p50 <= DISPATCH_P50_MS,
            )
        )
    return rows


def _calls(ours: Figures, raw: Figures | None) -> list[Target]:
    """A call's latency (one task at a time, sent and awaited by a read of its own)."""
    workers = _workers(ours.workers)
    p50, p99 = percentile(ours.call_ms, 0.50), percentile(ours.call_ms, 0.99)
    rows = [Target(f"call p99, {workers}", f"{p99:.2f} ms", f"<= {CALL_P99_MS:g} ms",
                   p99 <= CALL_P99_MS)]  # fmt: skip
    figure, target = f"call p50 / raw per task's, {workers}", f"<= {CALL_P50_OF_RAW:g}x"
    if raw is None:
        return [Target(figure, NOT_MEASURED, target), *rows]
    ratio = p50 / percentile(raw.call_ms, 0.50)
    value = f"{ratio:.2f}x ({p50:.2f} ms)"
    return [Target(figure, value, target, ratio <= CALL_P50_OF_RAW), *rows]


def _redis_work(ours: Figures, taskiq: Figures | None) -> list[Target]:
    """Redis commands and Redis CPU per task, the CPU against taskiq's."""
    workers = _workers(ours.workers)
    commands = sum(ours.commands.values())
    rows = [Target(f"Redis commands per task, {workers}", f"{commands:.1f}",
                   f"<= {COMMANDS_PER_TASK}", commands <= COMMANDS_PER_TASK)]  # fmt: skip
    figure, target = f"Redis CPU per task, {workers}", "<= taskiq's"
    mine = f"{ours.redis_cpu_ms * 1000:.0f} us"
    if taskiq is None:
        return [*rows, Target(figure, NOT_MEASURED, target)]
    theirs = f"{mine} (taskiq {taskiq.redis_cpu_ms * 1000:.0f} us)"
    return [*rows, Target(figure, theirs, target, ours.redis_cpu_ms <= taskiq.redis_cpu_ms)]


def _workers(count: int) -> str:
    return f"{count} worker" + ("" if count == 1 else "s")


def chunk_rate(chunks_per_s: float) -> Target:
    return Target(
        "chunk streaming rate, worker -> reader",
        f"{chunks_per_s:,.0f} chunks/s",
        f">= {CHUNKS_PER_S:,} chunks/s",
        chunks_per_s >= CHUNKS_PER_S,
    )


def render(rows: Sequence[Target]) -> list[str]:
    cells = [("figure", "value", "target", "")]
    cells += [(row.figure, row.value, row.target, row.verdict) for row in rows]
    return columns(cells, left=(0, 2, 3))


def columns(cells: Sequence[Sequence[str]], left: Sequence[int] = (0,)) -> list[str]:
    """A text table: a rule under the header; the ``left`` columns left-aligned, others right."""
    widths = [max(len(row[column]) for row in cells) for column in range(len(cells[0]))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if column in left else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    return [line(cells[0]), line(["-" * width for width in widths]), *map(line, cells[1:])]
