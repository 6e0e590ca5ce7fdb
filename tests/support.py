"""Helpers the tests share: workers in this event loop or in real processes."""

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from by_framework import (
    AgentTaskResult,
    GatewayClient,
    GatewayWorker,
    Plugin,
    SendResponse,
    Settings,
    StreamChunkEvent,
    StreamPartEvent,
    TaskEndEvent,
    TaskRecord,
    WorkerRunner,
)
from by_framework.engine import connect_engine, engine_on_client
from by_framework.ports import Engine
from by_framework.protocol import encode_event
from by_framework.protocol.ids import new_id
from by_framework.redis.connection import create_cluster, is_cluster_url
from by_framework.redis.embedded import redis_answers
from by_framework.testing.engine import EngineFactory

ROOT = Path(__file__).resolve().parent.parent


async def task_events(
    client: GatewayClient, session_id: str, message_id: str, timeout: float = 20
) -> list[Any]:
    """Every event of the task, through its last run (one that did not end WAITING_USER)."""
    seen: list[Any] = []
    async for item in client.events(session_id, timeout=timeout):
        if item.message_id != message_id:
            continue
        seen.append(item.event)
        if isinstance(item.event, TaskEndEvent) and item.event.status != "waiting_user":
            return seen
    return seen


async def final_result(
    client: GatewayClient, message_id: str, timeout: float = 20
) -> AgentTaskResult:
    """The task's result once it has ended for good (not just suspended, waiting for the user)."""
    async with asyncio.timeout(timeout):
        while True:
            record = await client.get_task(message_id)
            if record is not None and record.status.is_terminal and record.result is not None:
                return record.result
            await asyncio.sleep(0.05)


async def write_chunks(redis: Redis, settings: Settings, session_id: str, *texts: str) -> None:
    """Text chunks written straight to the session's stream, as a worker would, all of one task
    (a new one on each call: readers drop an event whose task already had its sequence number)."""
    engine = engine_on_client(redis, settings=settings)
    message_id = new_id()
    try:
        for seq, text in enumerate(texts, start=1):
            chunk = StreamChunkEvent(content=text)
            await engine.events.append(session_id, encode_event(message_id, "echo", seq, chunk))
    finally:
        await engine.aclose()


def chunks(events: list[Any], kind: str = "text") -> list[str]:
    """The content of the events that are chunks of ``kind``, in order."""
    return [e.content for e in events if isinstance(e, StreamChunkEvent) and e.kind == kind]


def parts(events: list[Any], mode: str) -> list[Any]:
    """The data of the events that are stream parts of ``mode``, in order."""
    return [e.data for e in events if isinstance(e, StreamPartEvent) and e.mode == mode]


@contextlib.asynccontextmanager
async def running_worker(
    worker: GatewayWorker,
    settings: Settings,
    *,
    plugins: Sequence[Plugin] = (),
    **overrides: object,
) -> AsyncIterator[WorkerRunner]:
    """A worker serving in this event loop until the block ends."""
    worker_settings = settings.model_copy(update=overrides)
    engine = connect_engine(worker_settings)
    runner = WorkerRunner(worker, engine, worker_settings, plugins)
    serving = asyncio.create_task(runner.run())
    starting = asyncio.create_task(runner.wait_started())
    await asyncio.wait({serving, starting}, return_when=asyncio.FIRST_COMPLETED)
    if serving.done():
        starting.cancel()
        serving.result()  # raises the start-up error
    try:
        yield runner
    finally:
        runner.request_stop()
        await serving


def worker_process(
    settings: Settings,
    worker_id: str,
    worker_class: str = "tests.agents.EchoAgent",
    *extra: str,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[str]:
    """A real worker process started through the CLI (``env``: variables to add or change).
    The project comes first on its ``PYTHONPATH``, then the caller's (e.g. a worktree's own
    packages, ahead of the editable installs)."""
    command = [
        sys.executable, "-m", "by_framework",
        "--worker-class", worker_class,
        "--worker-id", worker_id,
        "--redis-url", str(settings.redis_url),
        "--key-prefix", settings.key_prefix,
        "--workspace-dir", settings.workspace_dir,
        "--heartbeat-interval", str(settings.heartbeat_interval),
        "--heartbeat-ttl", str(settings.heartbeat_ttl),
        "--lease-seconds", str(settings.lease_seconds),
        "--sweep-interval", str(settings.sweep_interval),
        "--schedule-interval", str(settings.schedule_interval),
        *extra,
    ]  # fmt: skip
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return spawn(command, ROOT, {**os.environ, "PYTHONPATH": path, **(env or {})})


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a recipe or script a test starts, as its user would set it: this
    machine's, less any by-framework configuration from outside (``BYAI_*``, ``BYF_*``), plus
    where Redis is, the test's own key prefix, the project on ``PYTHONPATH``, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYAI_", "BYF_"))}
    env.update(
        REDIS_URL=str(settings.redis_url), BYAI_KEY_PREFIX=settings.key_prefix, PYTHONPATH=str(ROOT)
    )
    env.update(extra)
    return env


def spawn(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """A child process whose output goes to a file (read it with ``output_of``).

    A file, not a pipe: a worker that logs a lot must never block on a full pipe. Opened for
    appending: the child shares the file offset, and ``output_of`` moves it to read; appends
    always land at the end, so nothing the child writes overwrites what it wrote before.
    """
    log = tempfile.TemporaryFile("a+")
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=log, text=True)
    process.log = log  # type: ignore[attr-defined]
    return process


def output_of(process: subprocess.Popen[str]) -> str:
    log = process.log  # type: ignore[attr-defined]
    log.seek(0)
    return log.read()


async def wait_http(process: subprocess.Popen[str], url: str, timeout: float = 15.0) -> None:
    """Until the process answers HTTP at ``url`` (any status: it is up); the test fails with the
    process's output if it exits first."""
    async with httpx.AsyncClient() as http, asyncio.timeout(timeout):
        while True:
            if process.poll() is not None:
                raise AssertionError(f"{url} exited:\n{output_of(process)}")
            try:
                await http.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)


def _test_ports() -> range:
    """The ports this process's servers may listen on: ``BYF_TEST_PORTS`` (``LOW-HIGH``), by
    default 10000-12999, and of those, under pytest-xdist, the worker's own share (``gw0`` the
    first of ``PYTEST_XDIST_WORKER_COUNT`` equal parts). Below the kernel's ephemeral range (32768
    and up), so that no outgoing connection takes a port between the test picking it and its
    server binding it. Two runs of the suite at once need a range each, so that one's server
    never answers the other's test. A cluster node's bus (port + 10000) stays below 32768 too."""
    low, high = (int(end) for end in os.environ.get("BYF_TEST_PORTS", "10000-12999").split("-"))
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return range(low, high + 1)
    share = (high + 1 - low) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    start = low + int(worker.removeprefix("gw")) * share
    return range(start, start + share)


_PORTS = _test_ports()
_next_port = random.randrange(len(_PORTS))


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now, from this run's range: taken
    in turn, so that two servers a test starts never get the same one."""
    global _next_port
    for _ in range(len(_PORTS)):
        port = _PORTS[_next_port % len(_PORTS)]
        _next_port += 1
        if _port_free(port):
            return port
    raise RuntimeError(f"no free port in {_PORTS.start}-{_PORTS.stop - 1} (BYF_TEST_PORTS)")


async def wait_online(client: GatewayClient, worker_id: str, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await client.registry.is_online(worker_id):
            await asyncio.sleep(0.05)


async def wait_all(
    client: GatewayClient, sends: list[SendResponse], timeout: float = 60
) -> list[AgentTaskResult]:
    """The results of many tasks, following each session's stream once (not one read per task)."""
    pending: dict[str, set[str]] = {}
    for sent in sends:
        pending.setdefault(sent.session_id, set()).add(sent.message_id)

    async def follow(session_id: str, waiting: set[str]) -> None:
        async for item in client.events(session_id, timeout=timeout):
            if isinstance(item.event, TaskEndEvent):
                waiting.discard(item.message_id)
                if not waiting:
                    return

    await asyncio.gather(*(follow(s, w) for s, w in pending.items()))
    return [await client.wait_for_result(sent.message_id) for sent in sends]


async def redis_7(redis: Redis) -> bool:
    """Whether the server is Redis 7 or newer (CI runs the suite on 6.2 too)."""
    version = (await redis.info("server"))["redis_version"]
    return int(str(version).split(".")[0]) >= 7


async def pending_entries(redis: Redis | RedisCluster, stream: str, count: int) -> list[str]:
    """``count`` new entries of ``stream``, read by consumer c of group g (pending there)."""
    await redis.xgroup_create(stream, "g", id="0", mkstream=True)
    for n in range(count):
        await redis.xadd(stream, {"n": n})
    ((_, entries),) = await redis.xreadgroup("g", "c", {stream: ">"})
    return [entry_id.decode() for entry_id, _ in entries]


class DurableRedis:
    """A redis-server of this test's own, with an fsync-always AOF so that a crash loses nothing
    it acknowledged; it can be killed and started again on the same port and data."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--dir", str(self.directory), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            if redis_answers("127.0.0.1", self.port):
                return
            subprocess.run(["sleep", "0.05"], check=True)
        raise RuntimeError("the test's redis-server did not start")

    def pause(self, stopped: bool) -> None:
        """Stop the server (SIGSTOP): its connections stay open and nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP if stopped else signal.SIGCONT)

    def crash(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


T = TypeVar("T")


async def eventually(
    predicate: Callable[[], Awaitable[T | None]],
    timeout: float = 15.0,
    interval: float = 0.05,
    what: str = "the condition",
) -> T:
    """The first truthy value of ``predicate()``, polled every ``interval`` seconds: for a test
    that waits for a state to be reached, where a fixed sleep would guess how long it takes.
    Raises AssertionError, naming ``what`` and the last value seen, after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}: last {value!r}")
        await asyncio.sleep(interval)


async def task_records(client: GatewayClient, sends: Sequence[SendResponse]) -> list[TaskRecord]:
    """The record of each task sent, now, in order (fails if one has none)."""
    records = await asyncio.gather(*(client.get_task(sent.message_id) for sent in sends))
    assert all(records), f"no record of some of {[s.message_id for s in sends]}"
    return [record for record in records if record is not None]


class LocalCluster:
    """A Redis Cluster of this test session's own: 3 masters, each with a replica, on free
    loopback ports (each node's cluster bus on port + 10000), no persistence, in a temp dir.

    A node's failure is noticed after ``NODE_TIMEOUT_MS`` (Redis's default is 15 s; tests
    would wait that long for every failover).
    """

    MASTERS = 3
    NODE_TIMEOUT_MS = 1000

    def __init__(self, replicas: int = 1) -> None:
        """``replicas`` per master (0: none, for a benchmark to see what replication costs)."""
        self.replicas = replicas
        self.directory = Path(tempfile.mkdtemp(prefix="byf-cluster-"))
        self.ports: list[int] = []
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.stalled: set[int] = set()  # stopped (SIGSTOP): they answer nothing

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> None:
        self.ports = _free_cluster_ports(self.MASTERS * (1 + self.replicas))
        for port in self.ports:
            self._start_node(port)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        self.wait_ok()
        if self.replicas:
            self.wait_replicas_synced()

    def wait_replicas_synced(self, timeout: float = 30.0) -> None:
        """Until every live replica has its master's data (until then it may not take over)."""
        deadline = time.monotonic() + timeout
        while True:
            roles = [self.cli(p, "INFO", "replication") for p in self.live_ports()]
            replicas = [role for role in roles if "role:slave" in role]
            if replicas and all("master_link_status:up" in role for role in replicas):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the local cluster's replicas did not sync in {timeout}s")
            time.sleep(0.1)

    def wait_replicated(self, master: int, timeout: float = 10.0) -> None:
        """Until the master's replicas acknowledged every write it took so far."""
        deadline = time.monotonic() + timeout
        while True:
            info = dict(
                line.split(":", 1)
                for line in self.cli(master, "INFO", "replication").splitlines()
                if ":" in line
            )
            offset = info["master_repl_offset"].strip()
            replicas = [v for k, v in info.items() if k.startswith("slave")]
            if replicas and all(f"offset={offset}," in replica for replica in replicas):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replicas of {master} did not catch up in {timeout}s")
            time.sleep(0.05)

    def _start_node(self, port: int) -> None:
        self.processes[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes",
             "--cluster-config-file", str(self.directory / f"nodes-{port}.conf"),
             "--cluster-node-timeout", str(self.NODE_TIMEOUT_MS),
             "--logfile", str(self.directory / f"redis-{port}.log"),
             "--repl-diskless-sync-delay", "0",
             "--dir", str(self.directory), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            if redis_answers("127.0.0.1", port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"the cluster's redis-server on port {port} did not start")

    def cli(self, port: int, *args: str) -> str:
        """A redis-cli command on one node, its output (raises if redis-cli fails)."""
        done = subprocess.run(
            ["redis-cli", "-p", str(port), *args], check=True, capture_output=True, timeout=30
        )
        return done.stdout.decode()

    def live_ports(self) -> list[int]:
        """The nodes that answer: running, and not stalled."""
        return [
            p
            for p, process in self.processes.items()
            if process.poll() is None and p not in self.stalled
        ]

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every live node says cluster_state:ok and agrees on who owns every slot."""
        deadline = time.monotonic() + timeout
        while True:
            states = [self.cli(p, "CLUSTER", "INFO") for p in self.live_ports()]
            if all("cluster_state:ok" in state for state in states) and self._one_map():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the local cluster is not ok after {timeout}s: {states}")
            time.sleep(0.1)

    def _one_map(self) -> bool:
        """Whether every live node sees the same masters serving the same slots."""
        views = {
            frozenset(
                (node["port"], node["slots"])
                for node in self.nodes(port)
                if "master" in node["flags"] and "fail" not in node["flags"]
            )
            for port in self.live_ports()
        }
        return len(views) == 1

    def nodes(self, port: int | None = None) -> list[dict[str, str]]:
        """CLUSTER NODES as seen by a live node: id, port, role, master id, slots."""
        lines = self.cli(port or self.live_ports()[0], "CLUSTER", "NODES").splitlines()
        found = []
        for line in lines:
            fields = line.split()
            address = fields[1].split("@")[0]
            found.append({
                "id": fields[0],
                "port": address.rsplit(":", 1)[1],
                "flags": fields[2],
                "master": fields[3],
                "slots": " ".join(fields[8:]),
            })  # fmt: skip
        return found

    def masters(self) -> list[int]:
        """Ports of the live masters (that serve slots)."""
        return sorted(
            int(node["port"])
            for node in self.nodes()
            if "master" in node["flags"] and "fail" not in node["flags"] and node["slots"]
        )

    def owner(self, slot: int) -> int:
        """Port of the master that serves the slot."""
        for node in self.nodes():
            if "master" not in node["flags"] or "fail" in node["flags"]:
                continue
            for part in node["slots"].split():
                if part.startswith("["):
                    continue
                first, _, last = part.partition("-")
                if int(first) <= slot <= int(last or first):
                    return int(node["port"])
        raise LookupError(f"no master serves slot {slot}")

    def node_id(self, port: int) -> str:
        return self.cli(port, "CLUSTER", "MYID").strip()

    def replicas_of(self, master: int) -> list[int]:
        master_id = self.node_id(master)
        return [int(node["port"]) for node in self.nodes() if node["master"] == master_id]

    def stall_replicas(self, master: int) -> list[int]:
        """Stop (SIGSTOP) the master's replicas and cut their links: what the master takes from
        now on is not replicated, and is lost if it dies before ``kill_master`` resumes them."""
        replicas = self.replicas_of(master)
        for replica in replicas:
            self.processes[replica].send_signal(signal.SIGSTOP)
            self.stalled.add(replica)
        # A stopped process still takes data into its socket's buffer: its link is cut too.
        self.cli(master, "CLIENT", "KILL", "TYPE", "replica")
        return replicas

    def kill_master(self, port: int, stalled: Sequence[int] = ()) -> int:
        """SIGKILL the master on ``port`` (then resume its ``stalled`` replicas); wait until a
        replica took over; the new master's port."""
        try:
            replicas = self.replicas_of(port)
            process = self.processes[port]
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            for replica in stalled:
                self.processes[replica].send_signal(signal.SIGCONT)
                self.stalled.discard(replica)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            promoted = [p for p in replicas if self.cli(p, "ROLE").split()[0] == "master"]
            if promoted:
                self.wait_ok()
                return promoted[0]
            time.sleep(0.1)
        raise TimeoutError(f"no replica of {port} took over")

    def restart(self, port: int) -> None:
        """Start a killed node again (it rejoins as a replica of whoever took its slots)."""
        self._start_node(port)
        self.wait_ok()
        self.wait_replicas_synced()

    def begin_migration(self, slot: int, target: int) -> int:
        """Mark the slot MIGRATING on its owner and IMPORTING on ``target``: from now on keys
        of the slot that are not on the owner any more answer ASK. The owner's port."""
        source = self.owner(slot)
        self.cli(target, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", self.node_id(source))
        self.cli(source, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", self.node_id(target))
        return source

    def migrate_keys(self, slot: int, source: int, target: int, keys: Sequence[str]) -> None:
        """MIGRATE the given keys of the slot from ``source`` to ``target``."""
        if keys:
            self.cli(source, "MIGRATE", "127.0.0.1", str(target), "", "0", "5000",
                     "KEYS", *keys)  # fmt: skip

    def end_migration(self, slot: int, source: int, target: int) -> None:
        """Move every key left in the slot, then give the slot to ``target`` everywhere."""
        for _ in range(100):
            keys = self.cli(source, "CLUSTER", "GETKEYSINSLOT", str(slot), "100").split()
            if not keys:
                break
            self.migrate_keys(slot, source, target, keys)
        else:
            raise RuntimeError(f"slot {slot}'s keys do not leave {source}: {keys}")
        target_id = self.node_id(target)
        for port in (target, source, *self.masters()):
            self.cli(port, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
        self.wait_ok()

    def move_slot(self, slot: int, target: int) -> None:
        """Reshard one slot to the master on ``target``, keys and all."""
        source = self.begin_migration(slot, target)
        self.end_migration(slot, source, target)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def _free_cluster_ports(count: int) -> list[int]:
    """Free loopback ports whose cluster bus port (+10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if _port_free(port + 10000):
            ports.append(port)
    return ports


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def delete_keys(url: str, *prefixes: str) -> None:
    """Delete every key under the prefixes, on one Redis or on every master of a cluster."""
    if is_cluster_url(url):
        cluster = create_cluster(url)
        await cluster.initialize()
        nodes: list[Any] = cluster.get_primaries()
        redis: Any = cluster
    else:
        redis = Redis.from_url(url)
        nodes = [None]
    try:
        for prefix in prefixes:
            for node in nodes:
                where = {} if node is None else {"target_nodes": node}
                async for key in redis.scan_iter(match=f"{prefix}:*", count=1000, **where):
                    await redis.delete(key)
    finally:
        await redis.aclose()


def engines_on(url: str) -> Iterator[EngineFactory]:
    """An ``EngineConformance`` engine factory: engines on ``url`` (one Redis or a cluster);
    removes the keys of every prefix they were made with."""
    prefixes: set[str] = set()

    def make(**fields: Any) -> Engine:
        prefixes.add(fields["key_prefix"])
        return connect_engine(Settings.resolve(redis_url=url, **fields))

    yield make
    asyncio.run(delete_keys(url, *prefixes))


def settings_for_test(redis_url: str, key_prefix: str, tmp_path: Path) -> Settings:
    """The settings of a test: its own key prefix and workspace, and short intervals, so that
    a dead worker is noticed and its work reclaimed within seconds."""
    return Settings.resolve(
        redis_url=redis_url,
        key_prefix=key_prefix,
        workspace_dir=str(tmp_path / "workspace"),
        heartbeat_interval=0.2,
        heartbeat_ttl=1.0,
        lease_seconds=1.5,
        sweep_interval=0.5,
        schedule_interval=0.2,
        shutdown_timeout=5.0,
        cancel_grace_seconds=1.0,
    )
