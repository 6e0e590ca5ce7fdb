"""Every benchmark side by side, in one run on one Redis, and one table against the targets.

In order, each with its own report (the modules named say how they measure):
1. No-op tasks, by-framework beside a raw redis-py loop, arq and taskiq, 1 and 2 worker processes:
   throughput, send -> done latency, commands per task (``bench/run.py``; the medians of three
   rounds, one with --quick).
2. Chunk streaming rate, worker -> reader (``bench/chunks.py``).
3. Fan-out of 100 children to the gathered result (``bench/fanout.py``, its part (a) and the
   reference (c) only).
4. Redis memory after N no-op tasks (100,000; 10,000 with --quick; --tasks N), and recovery after
   a worker is SIGKILLed (``bench/soak.py``).
Then one table: each figure the issue sets a target for, beside that target, met or missed; and
the figures without a target.

Redis: REDIS_URL, else 127.0.0.1:6379, else an embedded redis-server; only a Redis on this machine
is accepted. One key prefix for the run, every key whose name contains it deleted at the end.

Run from the project root:  .venv/bin/python bench/all.py [--quick] [--tasks N] [--arq-python PATH]
"""

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: this checkout's bench and by_framework first
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import chunks, fanout, run, soak, targets
from bench.measure import METHOD, Figures, median_figures
from bench.session import bench_session
from bench.targets import Target

QUICK_ROUNDS = 1  # rounds of the no-op comparison with --quick (run.ROUNDS without)
FANOUT_SIZE = 100
FANOUT_REPEATS = 30
QUICK_FANOUT_REPEATS = 10
RSS_DRIFT = 0.05  # issue 21: a worker's RSS flat within 5 % over the soak (default history)


@dataclass(frozen=True, slots=True)
class Results:
    figures: list[Figures]  # the medians of the rounds
    round_rates: list[str]  # each system's tasks/s in each round
    chunks: chunks.ChunkReport
    fanout: fanout.Report
    memory: soak.MemoryReport
    recovery: soak.RecoveryReport


def _run_all(
    url: str, prefix: str, logs: Path, peers: tuple[run.PeerCommand, ...], args: argparse.Namespace
) -> Results:
    tasks, samples = (1_000, 100) if args.quick else (5_000, 300)
    plan = run.Plan(url, f"{prefix}:cmp", tasks, samples, logs, peers)
    measured = run.rounds(plan, QUICK_ROUNDS if args.quick else run.ROUNDS)
    repeats = chunks.QUICK_REPEATS if args.quick else chunks.REPEATS
    chunk_report = chunks.run(url, f"{prefix}:chunks", logs, repeats)
    fanout_repeats = QUICK_FANOUT_REPEATS if args.quick else FANOUT_REPEATS
    fanout_plan = fanout.Plan(
        url, f"{prefix}:fanout", ((FANOUT_SIZE, fanout_repeats),), chains=0, logs=logs
    )
    fanout_report = fanout._run(fanout_plan)
    soak_tasks = args.tasks or (soak.QUICK_TASKS if args.quick else soak.DEFAULT_TASKS)
    memory = soak._run_memory(url, f"{prefix}:mem", soak_tasks, logs)
    recovery = soak._run_recovery(url, f"{prefix}:kill", logs)
    return Results(
        median_figures(measured),
        run.round_rates(measured),
        chunk_report,
        fanout_report,
        memory,
        recovery,
    )


def _target_rows(results: Results) -> list[Target]:
    rows = targets.comparison(results.figures)
    rows.append(targets.chunk_rate(results.chunks.median))
    group, reference = results.fanout.rows[:2]  # (a) the group, (c) as many top-level tasks
    rows.append(
        Target(
            f"fan-out of {FANOUT_SIZE} -> gathered result, p50 (send -> parent's result read)",
            f"{group.p50:,.1f} ms ({reference.p50:,.1f} ms as top-level tasks)",
        )
    )
    recovery = results.recovery
    bound = soak.LEASE_S + soak.SWEEP_S + soak.TASK_S
    reclaim = recovery.first_reclaimed
    rows.append(
        Target(
            "reclaim after SIGKILL (kill -> first held task completed elsewhere)",
            "never" if reclaim is None else f"{reclaim:.2f} s",
            f"<= {bound:g} s (lease + sweep + task)",
            reclaim is not None and reclaim <= bound,
        )
    )
    rows.append(
        Target(
            "after the kill: lost / duplicated / failed / left pending",
            f"{recovery.lost} / {recovery.duplicated} / {recovery.failed} / {recovery.pending}",
            "all 0",
            recovery.ok,
        )
    )
    memory = results.memory
    base = memory.before.used_memory
    wait = soak.RETENTION_S + soak.RETENTION_MARGIN_S
    rows += [
        Target(
            f"Redis used_memory after {memory.tasks:,} tasks (end - before)",
            soak._size(memory.end.used_memory - base, signed=True),
        ),
        Target(
            "Redis used_memory, highest during the soak, per task",
            soak._size(memory.per_task),
        ),
        Target(
            f"Redis used_memory after retention (end + {wait:g} s, workers running)",
            soak._size(memory.retained.used_memory - base, signed=True),
        ),
    ]
    growth = soak.rss_growth(memory)
    rows.append(
        Target(
            "worker RSS, half the soak's tasks ended -> its end",
            "not measured" if growth is None else f"{growth:+.1%}",
            "within 5 %",
            None if growth is None else abs(growth) <= RSS_DRIFT,
        )
    )
    return rows


def _print(results: Results, header: str, notes: list[str]) -> None:
    print(header)
    print("\n".join(f"  {line}" for line in (*METHOD, *notes)))
    print()
    print("1. No-op tasks, side by side")
    print("\n".join(run.table(results.figures)))
    print(f"by-framework commands per task (1 worker): {run.command_breakdown(results.figures)}")
    print("tasks/s of each round:")
    print("\n".join(results.round_rates))
    print()
    print("2. " + "\n".join(results.chunks.lines()))
    print()
    print(f"3. Fan-out of {FANOUT_SIZE} (bench/fanout.py: (a) and its reference (c))")
    print("\n".join(fanout._table(results.fanout.rows)))
    print("\n".join(results.fanout.inside))
    print()
    print("4. Soak (bench/soak.py)")
    print("\n".join(soak._memory_lines(results.memory)))
    print()
    print("\n".join(soak._recovery_lines(results.recovery)))
    print()
    print("Targets (issues 9 and 21)")
    print("\n".join(targets.render(_target_rows(results))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1000 tasks and 100 latency samples, fewer repetitions, 10,000 soak tasks",
    )
    parser.add_argument("--tasks", type=int, help="tasks of the memory soak")
    parser.add_argument(
        "--arq-python", type=Path, default=run.ARQ_PYTHON, help=f"arq's Python ({run.ARQ_PYTHON})"
    )
    args = parser.parse_args()
    if args.tasks is not None and args.tasks < 1:
        parser.error("--tasks must be at least 1")
    peers, notes = run._peers(args.arq_python)
    started = time.perf_counter()
    with bench_session("all") as session:
        results = _run_all(session.url, session.prefix, session.logs, peers, args)
    header = (
        f"by-framework, every benchmark side by side: {session.machine}, "
        f"{time.perf_counter() - started:.0f} s"
        + (" (--quick: fewer tasks and repetitions)" if args.quick else "")
    )
    _print(results, header, notes)
    if not results.recovery.ok:
        raise SystemExit("bench/all: tasks were lost, duplicated, failed or left pending")


if __name__ == "__main__":
    main()
