"""The issue's targets beside the figures that answer them, each marked met or missed.

Targets (issue 9): throughput >= 40 % of the raw loop (DESIGN.md's pipelined raw loop: the
per-task one), >= 3x arq's and >= 1.5x taskiq's at the same worker count; p50 dispatch (send ->
first chunk read) <= 1.5 ms; >= 20k chunks/s from a worker to a reader.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from bench.measure import Figures, percentile

FRAMEWORK = "by-framework"
RAW_TASK = "raw, per task"

SHARE_OF_RAW = 0.40
TIMES_ARQ = 3.0
TIMES_TASKIQ = 1.5
DISPATCH_P50_MS = 1.5
CHUNKS_PER_S = 20_000
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
    """Throughput against raw, arq and taskiq at each worker count; p50 dispatch."""
    rows = []
    for workers in sorted({f.workers for f in figures}):
        at = [f for f in figures if f.workers == workers]
        ours = next(f for f in at if f.system == FRAMEWORK)
        for other, goal, target in (
            (RAW_TASK, SHARE_OF_RAW, f">= {SHARE_OF_RAW:.0%}"),
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
    for f in figures:
        if f.system == FRAMEWORK:
            p50 = percentile(f.first_ms, 0.50)
            rows.append(
                Target(
                    f"p50 dispatch (send -> first chunk read), {_workers(f.workers)}",
                    f"{p50:.2f} ms",
                    f"<= {DISPATCH_P50_MS:g} ms",
                    p50 <= DISPATCH_P50_MS,
                )
            )
    return rows


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
