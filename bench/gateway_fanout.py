"""HTTP gateway fan-out: many SSE followers on one gateway process while 50 sessions stream.

One run on the real Redis (REDIS_URL, else 127.0.0.1:6379, else an embedded redis-server; only a
Redis on this machine is accepted), under a key prefix of its own whose keys are deleted at the
end. Every process is real and talks over 127.0.0.1 only:

- one gateway process, ``python -m by_framework gateway``, with one API key (subject "bench",
  a random token): every request goes through the auth, the Redis rate limiter (raised for the
  run: every follower is the one caller) and the session ownership checks, as in production;
- ``--workers`` worker processes (2) of ``bench.agents.PacedChunkAgent`` through the CLI, every
  setting at its default;
- ``--client-procs`` client processes (2) of ``bench/sse_followers.py`` holding ``--followers``
  SSE followers (1,000), spread evenly over 50 sessions; they count the events they receive
  without parsing them, so that their own cost stays small (their CPU is reported: one near
  100 % of a core would mean the figures are the client's, not the gateway's);
- this process: the load's sends, and the latency probe.

Steps: warm-up; latency probe with no follower and no load ("idle"); gateway RSS; a POST of a
one-chunk task per session (the sessions become the caller's); the followers connect (from the
start of their session); gateway RSS again; one task per session starts streaming a chunk every
``--interval`` seconds; then for ``--seconds`` (10) the gateway's CPU time (/proc/<pid>/stat),
the machine's (/proc/stat) and the events the followers received are measured, with nothing else
going on; then for ``--seconds`` more the probe runs again under the same load ("under load").
At the end every follower must have received every event of its session (checked against the
session read with ``client.events``).

``--interval`` (0.5 s): with 1,000 followers, 2,000 SSE events/s to deliver, below what one
gateway process delivered on a shared 2-core machine, so that the latency is the gateway's and
not a queue's; lower it to find where the gateway saturates.

The latency probe sends, one at a time, 20 ms apart, tasks of one chunk on a session of its own,
which this process follows both over the gateway's SSE and with ``client.events`` (the Python
client, straight on Redis). Sends rotate between the gateway's ``POST .../messages`` from a
minimal HTTP/1.1 client on a keep-alive connection (``bench/http1.py``: what a browser's native
``fetch`` costs, next to nothing), the same POST from httpx, and ``client.send_message``.
Reported, p50 / p99 nearest-rank:
- HTTP: POST (the minimal client) -> the first byte of that task's chunk event on the SSE stream;
- httpx: the same with the POST sent by httpx (its own cost included, for comparison);
- Python: ``send_message`` -> that task's chunk read by ``client.events``;
- added: HTTP p50 minus Python p50 (the goal: <= 2 ms);
- per task, every probe: SSE read minus ``client.events`` read of the same chunk (the gateway's
  delivery alone, without the send's cost).

Run from the project root:  .venv/bin/python bench/gateway_fanout.py [--followers N] [...]
"""

import argparse
import asyncio
import functools
import json
import math
import os
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

if __package__ in (None, ""):  # run as a script: this checkout's bench and by_framework first
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.http1 import Http1Connection
from bench.measure import percentile
from bench.procs import (
    ROOT,
    BenchError,
    Child,
    children,
    deadline,
    free_port,
    spawn,
    stop_children,
    wait_ready,
    worker_command,
)
from bench.procstat import cpu_seconds, machine_cpu, rss_bytes
from bench.session import bench_session
from by_framework import AgentState, GatewayClient, StreamChunkEvent, init_redis

WORKER_CLASS = "bench.agents.PacedChunkAgent"
AGENT_TYPE = "bench-paced"
SESSIONS = 50
PROBE_SESSION = "probe"
PROBE_CONTENT = {"n": 1, "interval": 0}
PROBE_PAUSE_S = 0.02
WARMUP_PROBES = 20
IDLE_PROBES = 100  # of each kind
SETTLE_S = 1.0  # after the followers connect, and after the load starts
LOAD_SLACK_S = 1.0  # the load's tasks stream this long past the measured window
DELIVERY_TIMEOUT_S = 30.0  # for the followers to receive the last events, at the end
TOKEN_ENV = "BENCH_GATEWAY_TOKEN"  # how the client processes get the API key
# Every request is the one caller "bench": the default bucket (20/s) would refuse the followers.
UNLIMITED = "1000000"
HTTP, HTTPX, PYTHON = "http", "httpx", "python"


@dataclass(frozen=True, slots=True)
class Plan:
    url: str
    prefix: str
    logs: Path
    followers: int
    workers: int
    client_procs: int
    seconds: float
    interval: float
    port: int
    token: str  # the API key of the run

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sessions(self, proc: int) -> list[str]:
        """The session of each follower of client process ``proc``: follower i follows session
        i % 50 and lives in process (i // 50) % client_procs, so every process follows every
        session about equally."""
        return [
            load_session(index % SESSIONS)
            for index in range(self.followers)
            if (index // SESSIONS) % self.client_procs == proc
        ]


def load_session(index: int) -> str:
    return f"load-{index}"


@dataclass(frozen=True, slots=True)
class Probes:
    http_ms: list[float]  # POST (minimal client) -> first SSE byte of the task's chunk
    httpx_ms: list[float]  # the same, POST sent by httpx
    python_ms: list[float]  # send_message -> the chunk read by client.events
    post_ms: list[float]  # POST (minimal client) -> its 202 response
    httpx_post_ms: list[float]  # POST (httpx) -> its 202 response
    send_ms: list[float]  # send_message -> it returned
    delivery_ms: list[float]  # same task: SSE read - client.events read


@dataclass(frozen=True, slots=True)
class Report:
    idle: Probes
    idle_cpu_s: float  # the gateway's, over the idle probes
    load: Probes
    window_s: float
    delivered: int  # SSE events the followers received in the window
    gateway_cpu_s: float  # in the window
    client_cpu_s: list[float]  # each client process, in the window
    machine_busy: float  # share of the machine's cores busy in the window (every process)
    rss_idle: int
    rss_followers: int
    rss_load: int
    expected_total: int  # events every follower should have received by the end
    received_total: int


# Processes


def run(plan: Plan) -> Report:
    api_keys = {"BYAI_GATEWAY_API_KEYS": f"bench:{plan.token}"}
    commands = {
        f"worker-{index}": worker_command(plan.url, plan.prefix, WORKER_CLASS, f"paced-{index}", [])
        for index in range(plan.workers)
    }
    commands["gateway"] = [
        sys.executable, "-m", "by_framework", "gateway",
        "--host", "127.0.0.1", "--port", str(plan.port),
        "--rate", UNLIMITED, "--burst", UNLIMITED,
        "--redis-url", plan.url, "--key-prefix", plan.prefix,
    ]  # fmt: skip
    with children(commands, plan.logs, api_keys) as started:
        return asyncio.run(_measure(plan, started))


@dataclass(frozen=True, slots=True)
class Clients:
    """The client processes holding the followers, and how to ask them for their counts."""

    procs: list[Child]
    counts: list[Path]

    async def snapshot(self) -> int:
        """Events received so far by every follower; a BenchError if one failed."""
        sizes = [_lines(path) for path in self.counts]
        for child in self.procs:
            child.process.send_signal(signal.SIGUSR1)
        total = 0
        for child, path, size in zip(self.procs, self.counts, sizes, strict=True):
            while _lines(path) == size:
                if child.process.poll() is not None:
                    raise BenchError(f"{child.name} exited:\n{child.log_tail()}")
                await asyncio.sleep(0.01)
            events, failed = map(int, path.read_text().split("\n")[size].split())
            if failed:
                raise BenchError(f"{failed} followers of {child.name} failed:\n{child.log_tail()}")
            total += events
        return total

    def cpu(self) -> list[float]:
        return [cpu_seconds(child.process.pid) for child in self.procs]


def _lines(path: Path) -> int:
    """Complete lines: a line being written is not counted until its end."""
    return path.read_text().count("\n") if path.exists() else 0


def _start_clients(plan: Plan) -> Clients:
    procs, counts = [], []
    for proc in range(plan.client_procs):
        name = f"followers-{proc}"
        ready, count = plan.logs / f"{name}.ready", plan.logs / f"{name}.counts"
        command = [
            sys.executable, str(ROOT / "bench" / "sse_followers.py"),
            "--base", plan.base, "--ready", str(ready), "--counts", str(count),
            *plan.sessions(proc),
        ]  # fmt: skip
        procs.append(spawn(name, command, plan.logs / f"{name}.log", {TOKEN_ENV: plan.token}))
        counts.append(count)
    return Clients(procs, counts)


async def _clients_ready(plan: Plan, clients: Clients) -> None:
    readies = [plan.logs / f"{child.name}.ready" for child in clients.procs]

    async def all_ready() -> bool:
        return all(path.exists() and path.read_text() for path in readies)

    await wait_ready(all_ready, clients.procs)
    for child, path in zip(clients.procs, readies, strict=True):
        if int(path.read_text()):
            raise BenchError(
                f"{path.read_text()} followers of {child.name} could not connect:\n"
                f"{child.log_tail()}"
            )


# The latency probe


class Firsts:
    """When each task's first chunk was read by one reader, by message id."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}
        self._changed = asyncio.Event()

    def mark(self, message_id: str, at: float) -> None:
        self._at.setdefault(message_id, at)
        self._changed.set()

    async def of(self, message_id: str) -> float:
        while message_id not in self._at:
            self._changed.clear()
            await self._changed.wait()
        return self._at.pop(message_id)


async def _read_sse(http: httpx.AsyncClient, firsts: Firsts) -> None:
    """Follow the probe session over the gateway's SSE; the time of each event is when its
    ``id:`` line, the event's first line, arrived."""
    async with http.stream("GET", f"/v1/sessions/{PROBE_SESSION}/events") as response:
        if response.status_code != 200:
            await response.aread()
            raise BenchError(f"probe SSE: {response.status_code} {response.text[:300]}")
        at, name = 0.0, ""
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                at = time.perf_counter()
            elif line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:") and name == "chunk":
                firsts.mark(json.loads(line.removeprefix("data:"))["message_id"], at)
    raise BenchError("the gateway ended the probe's SSE stream")


async def _read_events(client: GatewayClient, firsts: Firsts) -> None:
    async for event in client.events(PROBE_SESSION):
        if isinstance(event.event, StreamChunkEvent):
            firsts.mark(event.message_id, time.perf_counter())


class Probe:
    """Tasks of one chunk, one at a time, on the probe session followed both ways."""

    def __init__(
        self, http: httpx.AsyncClient, lean: Http1Connection, token: str, client: GatewayClient
    ) -> None:
        self._http, self._lean, self._client = http, lean, client
        self._headers = {"Authorization": f"Bearer {token}"}
        self._sse, self._events = Firsts(), Firsts()
        self._readers = [
            asyncio.create_task(_read_sse(http, self._sse)),
            asyncio.create_task(_read_events(client, self._events)),
        ]

    async def one(self, kind: str) -> tuple[float, float, float]:
        """(send -> first chunk read the ``kind`` way, send -> it returned, SSE read -
        client.events read), in ms."""
        started = time.perf_counter()
        if kind == HTTP:
            message_id = await self._lean_post()
        elif kind == HTTPX:
            message_id = await _post(self._http, PROBE_SESSION, PROBE_CONTENT)
        else:
            sent = await self._client.send_message(AGENT_TYPE, PROBE_SESSION, PROBE_CONTENT)
            message_id = sent.message_id
        sent_ms = (time.perf_counter() - started) * 1000
        marks = asyncio.ensure_future(
            asyncio.gather(self._sse.of(message_id), self._events.of(message_id))
        )
        await asyncio.wait({marks, *self._readers}, return_when=asyncio.FIRST_COMPLETED)
        if not marks.done():  # a reader ended: raise what ended it
            marks.cancel()
            for reader in self._readers:
                if reader.done():
                    reader.result()
        sse_at, events_at = marks.result()
        first = events_at if kind == PYTHON else sse_at
        return (first - started) * 1000, sent_ms, (sse_at - events_at) * 1000

    async def _lean_post(self) -> str:
        body = {"agent_type": AGENT_TYPE, "content": PROBE_CONTENT}
        path = f"/v1/sessions/{PROBE_SESSION}/messages"
        status, content = await self._lean.post_json(path, body, self._headers)
        if status != 202:
            raise BenchError(f"probe POST: {status} {content[:300]!r}")
        return str(json.loads(content)["message_id"])

    async def run(self, count: int | None = None, seconds: float | None = None) -> Probes:
        """``count`` probes of each kind, or as many as fit in ``seconds``, alternating."""
        samples: dict[str, list[float]] = {HTTP: [], HTTPX: [], PYTHON: []}
        sends: dict[str, list[float]] = {HTTP: [], HTTPX: [], PYTHON: []}
        delivery: list[float] = []
        end = None if seconds is None else time.perf_counter() + seconds
        while (count is not None and len(samples[PYTHON]) < count) or (
            end is not None and time.perf_counter() < end
        ):
            for kind in (HTTP, HTTPX, PYTHON):
                elapsed, sent, delivered = await self.one(kind)
                samples[kind].append(elapsed)
                sends[kind].append(sent)
                delivery.append(delivered)
                await asyncio.sleep(PROBE_PAUSE_S)
        return Probes(
            samples[HTTP], samples[HTTPX], samples[PYTHON], sends[HTTP], sends[HTTPX],
            sends[PYTHON], delivery,
        )  # fmt: skip

    async def aclose(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


# Measurements


async def _measure(plan: Plan, started: list[Child]) -> Report:
    gateway = next(child for child in started if child.name == "gateway")
    redis = init_redis(url=plan.url)
    client = GatewayClient(redis, key_prefix=plan.prefix)
    http = httpx.AsyncClient(
        base_url=plan.base,
        headers={"Authorization": f"Bearer {plan.token}"},
        timeout=httpx.Timeout(10.0, read=None),
    )
    lean, probe = Http1Connection("127.0.0.1", plan.port), None
    try:
        for index in range(plan.workers):
            worker_id = f"paced-{index}"
            await wait_ready(functools.partial(client.registry.is_online, worker_id), started)
        await wait_ready(functools.partial(_gateway_ready, http, plan.workers), started)
        await _post(http, PROBE_SESSION, PROBE_CONTENT)  # the session becomes the caller's
        probe = Probe(http, lean, plan.token, client)
        await deadline("warm-up", probe.run(count=WARMUP_PROBES))
        idle_cpu = cpu_seconds(gateway.process.pid)
        idle = await deadline("idle probes", probe.run(count=IDLE_PROBES))
        idle_cpu = cpu_seconds(gateway.process.pid) - idle_cpu
        rss_idle = rss_bytes(gateway.process.pid)
        for index in range(SESSIONS):
            await _post(http, load_session(index), PROBE_CONTENT)

        clients = _start_clients(plan)
        try:
            await _clients_ready(plan, clients)
            await asyncio.sleep(SETTLE_S)
            rss_followers = rss_bytes(gateway.process.pid)
            streaming_s = SETTLE_S + 2 * plan.seconds + LOAD_SLACK_S
            load = {"n": math.ceil(streaming_s / plan.interval), "interval": plan.interval}
            sends = [_post(http, load_session(index), load) for index in range(SESSIONS)]
            tasks = await asyncio.gather(*sends)
            await asyncio.sleep(SETTLE_S)

            received_before = await clients.snapshot()
            gateway_before, clients_before = cpu_seconds(gateway.process.pid), clients.cpu()
            busy_before, total_before = machine_cpu()
            window_start = time.perf_counter()
            await asyncio.sleep(plan.seconds)
            window_s = time.perf_counter() - window_start
            gateway_cpu = cpu_seconds(gateway.process.pid) - gateway_before
            client_cpu = [b - a for a, b in zip(clients_before, clients.cpu(), strict=True)]
            busy_after, total_after = machine_cpu()
            machine_busy = (busy_after - busy_before) / (total_after - total_before)
            delivered = await clients.snapshot() - received_before
            rss_load = rss_bytes(gateway.process.pid)
            loaded = await deadline("probes under load", probe.run(seconds=plan.seconds))

            expected = await deadline("load tasks", _expected_events(plan, client, tasks))
            received = await deadline("last deliveries", _received(clients, expected))
        finally:
            stop_children(clients.procs)
        return Report(
            idle, idle_cpu, loaded, window_s, delivered, gateway_cpu, client_cpu, machine_busy,
            rss_idle, rss_followers, rss_load, expected, received,
        )  # fmt: skip
    finally:
        if probe is not None:
            await probe.aclose()
        await http.aclose()
        await lean.aclose()
        await client.aclose()
        await redis.aclose()


async def _post(http: httpx.AsyncClient, session: str, content: Mapping[str, float]) -> str:
    """Send a task through the gateway; its message id."""
    body = {"agent_type": AGENT_TYPE, "content": content}
    response = await http.post(f"/v1/sessions/{session}/messages", json=body)
    if response.status_code != 202:
        raise BenchError(f"POST to session {session}: {response.status_code} {response.text[:300]}")
    return str(response.json()["message_id"])


async def _gateway_ready(http: httpx.AsyncClient, workers: int) -> bool:
    """The gateway answers and sees every worker."""
    try:
        response = await http.get("/v1/agents")
    except httpx.TransportError:
        return False
    if response.status_code != 200:
        return False
    online = {agent["agent_type"]: agent["workers"] for agent in response.json()["agents"]}
    return online.get(AGENT_TYPE, 0) >= workers


async def _expected_events(plan: Plan, client: GatewayClient, tasks: list[str]) -> int:
    """Once the load's tasks ended: the events every follower should have received, from its
    session's stream read with ``client.events``."""
    followers = Counter(index % SESSIONS for index in range(plan.followers))
    total = 0
    for index, message_id in enumerate(tasks):
        result = await client.wait_for_result(message_id)
        if result.status is not AgentState.COMPLETED:
            raise BenchError(f"load task {message_id} ended {result.status}: {result.error}")
        events = [e async for e in client.events(load_session(index), until_message_id=message_id)]
        total += len(events) * followers[index]
    return total


async def _received(clients: Clients, expected: int) -> int:
    """What the followers received, once it is every event they should have; a BenchError if
    some are still missing after DELIVERY_TIMEOUT_S, or if there are more (repeats)."""
    end = time.perf_counter() + DELIVERY_TIMEOUT_S
    while (received := await clients.snapshot()) < expected and time.perf_counter() < end:
        await asyncio.sleep(0.2)
    if received != expected:
        what = "missing" if received < expected else "too many (repeated)"
        raise BenchError(
            f"the followers received {received:,} events where their sessions hold {expected:,}: "
            f"{abs(expected - received):,} {what}; the figures would not be worth keeping"
        )
    return received


# Report


def _latency_rows(report: Report) -> list[str]:
    header = (
        "phase", "probes", "HTTP p50", "HTTP p99", "Python p50", "Python p99", "added p50",
        "httpx p50", "SSE - events p50", "SSE - events p99", "POST p50", "httpx POST p50",
        "send_message p50",
    )  # fmt: skip
    cells = [header]
    for phase, probes in (("idle", report.idle), ("under load", report.load)):
        http50, py50 = percentile(probes.http_ms, 0.5), percentile(probes.python_ms, 0.5)
        cells.append(
            (
                phase,
                f"{len(probes.http_ms)} x 3",
                f"{http50:.2f}",
                f"{percentile(probes.http_ms, 0.99):.2f}",
                f"{py50:.2f}",
                f"{percentile(probes.python_ms, 0.99):.2f}",
                f"{http50 - py50:+.2f}",
                f"{percentile(probes.httpx_ms, 0.5):.2f}",
                f"{percentile(probes.delivery_ms, 0.5):+.2f}",
                f"{percentile(probes.delivery_ms, 0.99):+.2f}",
                f"{percentile(probes.post_ms, 0.5):.2f}",
                f"{percentile(probes.httpx_post_ms, 0.5):.2f}",
                f"{percentile(probes.send_ms, 0.5):.2f}",
            )
        )
    widths = [max(len(line[column]) for line in cells) for column in range(len(header))]

    def render(line: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        )

    rule = tuple("-" * width for width in widths)
    return [render(cells[0]), render(rule), *(render(line) for line in cells[1:])]


def lines(plan: Plan, report: Report) -> list[str]:
    mib = 1024 * 1024
    rate = report.delivered / report.window_s
    written = SESSIONS / plan.interval
    due = written * plan.followers / SESSIONS  # events/s the followers would get, kept up with
    added = percentile(report.load.http_ms, 0.5) - percentile(report.load.python_ms, 0.5)
    per_follower = (report.rss_followers - report.rss_idle) / plan.followers
    clients_cpu = ", ".join(f"{cpu / report.window_s:.0%}" for cpu in report.client_cpu_s)
    cpu = report.gateway_cpu_s
    return [
        f"setup: 1 gateway process, {plan.workers} worker processes ({WORKER_CLASS}), "
        f"{plan.followers:,} SSE followers over {SESSIONS} sessions in {plan.client_procs} client "
        f"processes; each session streams a chunk every {plan.interval:g} s "
        f"({written:,.0f} chunks/s written in all)",
        f"delivered: {report.delivered:,} SSE events in {report.window_s:.1f} s: "
        f"{rate:,.0f} events/s ({due:,.0f}/s written for them)",
        f"gateway CPU: {cpu:.2f} s in the window ({cpu / report.window_s:.0%} of a core), "
        f"{cpu / max(report.delivered, 1) * 1e6:.1f} µs per delivered event",
        f"client processes' CPU: {clients_cpu} of a core each (if near 100 %, the client limits "
        "the figures: add --client-procs)",
        f"machine: {report.machine_busy:.0%} of its {os.cpu_count()} cores busy in the window "
        "(every process on it, this bench's and any other)",
        f"gateway CPU per idle probe round: "
        f"{report.idle_cpu_s / len(report.idle.http_ms) * 1e3:.2f} ms "
        "(two POSTs, and the three tasks' events to the probe's one SSE follower)",
        f"gateway RSS: idle {report.rss_idle / mib:.1f} MiB, with the followers "
        f"{report.rss_followers / mib:.1f} MiB, under load {report.rss_load / mib:.1f} MiB: "
        f"{per_follower / 1024:.1f} KiB per follower ((with - idle) / {plan.followers:,})",
        f"completeness: the followers received {report.received_total:,} of the "
        f"{report.expected_total:,} events of their sessions",
        "latency, ms (HTTP: POST from a minimal HTTP/1.1 client -> first SSE byte of the task's "
        "chunk; httpx: the same POST from httpx; Python: send_message -> chunk read by "
        "client.events; SSE - events: same task, the two reads; POST: -> its 202; send_message: "
        "-> it returned):",
        *_latency_rows(report),
        f"goal: added p50 under load <= +2 ms: {added:+.2f} ms, "
        + ("met" if added <= 2.0 else "MISSED"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=1_000, help="SSE followers (1,000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes (2)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each measured window (10)")
    parser.add_argument("--interval", type=float, default=0.5, help="s between chunks (0.5)")
    args = parser.parse_args()
    if args.followers < 1 or args.workers < 1 or args.client_procs < 1:
        parser.error("--followers, --workers and --client-procs must be at least 1")
    if args.followers < SESSIONS * args.client_procs:
        parser.error(
            f"--followers must be at least {SESSIONS} per client process ({SESSIONS} sessions)"
        )
    if args.seconds <= 0 or args.interval <= 0:
        parser.error("--seconds and --interval must be positive")
    started = time.perf_counter()
    with bench_session("gwfanout") as session:
        plan = Plan(
            session.url, session.prefix, session.logs, args.followers, args.workers,
            args.client_procs, args.seconds, args.interval, free_port(), secrets.token_hex(16),
        )  # fmt: skip
        report = run(plan)
    print(
        f"by-framework gateway fan-out bench: {session.machine}, "
        f"{time.perf_counter() - started:.0f} s"
    )
    print("\n".join(lines(plan, report)))


if __name__ == "__main__":
    main()
