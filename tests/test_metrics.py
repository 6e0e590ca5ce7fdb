"""A worker's metrics port (/metrics, /healthz, /readyz) and its logs, on real worker processes
started through the CLI, on the real Redis (and on a redis-server of the test's own that goes
away and comes back)."""

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from by_framework import AgentState, GatewayClient, Settings
from tests.support import (
    ROOT,
    DurableRedis,
    free_port,
    output_of,
    process_env,
    spawn,
    wait_all,
    wait_online,
    worker_process,
)

SHOWCASE = "tests.agents.ShowcaseAgent"  # agent types showcase, showcase-b; "fail" fails
STATUSES = {state.value for state in AgentState}


@pytest.fixture
def start_worker(settings: Settings) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """``start_worker(worker_id, worker_class, *flags)``: a worker process, SIGTERMed at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(
        worker_id: str, worker_class: str, *flags: str, **overrides: str
    ) -> subprocess.Popen[str]:
        own = settings.model_copy(update=overrides)
        process = worker_process(own, worker_id, worker_class, *flags)
        started.append(process)
        return process

    yield start
    for process in started:
        stop(process)


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


async def scrape(http: httpx.AsyncClient, port: int) -> dict[str, Metric]:
    response = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def value(families: dict[str, Metric], family: str, sample: str, **labels: str) -> float:
    """The one sample named ``sample`` of ``family`` whose labels include ``labels``."""
    found = [
        s.value
        for s in families[family].samples
        if s.name == sample and labels.items() <= s.labels.items()
    ]
    assert len(found) == 1, f"{sample}{labels}: {found}"
    return found[0]


async def until_status(
    http: httpx.AsyncClient, url: str, status: int, timeout: float = 20
) -> httpx.Response:
    """The first answer of ``url`` with ``status`` (asked every 0.1 s)."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                response = await http.get(url)
                if response.status_code == status:
                    return response
            except httpx.TransportError:
                pass  # not listening yet
            await asyncio.sleep(0.1)


async def test_metrics_count_runs_by_agent_type_and_status(
    start_worker, client: GatewayClient, http: httpx.AsyncClient
) -> None:
    port = free_port()
    worker = start_worker(
        "metrics-1", SHOWCASE, "--metrics-port", str(port), "--log-format", "json"
    )
    await wait_online(client, "metrics-1")
    base = f"http://127.0.0.1:{port}"
    assert (await http.get(f"{base}/healthz")).text == "ok\n"
    assert (await until_status(http, f"{base}/readyz", 200)).text == "ready\n"
    assert (await http.get(f"{base}/readyz?probe=k8s")).status_code == 200  # query ignored
    assert (await http.get(f"{base}/nothing")).status_code == 404
    assert (await http.post(f"{base}/metrics")).status_code == 405

    contents = [{"sleep": 0}, "fail", {"sleep": 0.01}, "fail", {"sleep": 0}]
    sends = [
        await client.send_message("showcase", f"metrics-s{i % 2}", content)
        for i, content in enumerate(contents)
    ]
    results = await wait_all(client, sends)
    assert [r.status for r in results].count(AgentState.FAILED) == 2

    async with asyncio.timeout(10):  # a run is counted just after its outcome is recorded
        while True:
            families = await scrape(http, port)
            ended = families["byai_worker_tasks_ended"]
            if sum(s.value for s in ended.samples if s.name.endswith("_total")) == 5:
                break
            await asyncio.sleep(0.05)
    ended_total = "byai_worker_tasks_ended_total"
    showcase = {"agent_type": "showcase"}
    assert (
        value(families, "byai_worker_tasks_ended", ended_total, **showcase, status="completed") == 3
    )
    assert value(families, "byai_worker_tasks_ended", ended_total, **showcase, status="failed") == 2
    started_total = "byai_worker_tasks_started_total"
    assert value(families, "byai_worker_tasks_started", started_total, **showcase) == 5
    run_count = "byai_worker_task_run_seconds_count"
    assert value(families, "byai_worker_task_run_seconds", run_count, **showcase) == 5
    wait_count = "byai_worker_task_queue_wait_seconds_count"
    assert value(families, "byai_worker_task_queue_wait_seconds", wait_count, **showcase) == 5
    assert value(families, "byai_worker_slots", "byai_worker_slots") == 50
    assert value(families, "byai_worker_tasks_in_flight", "byai_worker_tasks_in_flight") == 0
    pings = value(families, "byai_redis_round_trip_seconds", "byai_redis_round_trip_seconds_count")
    assert pings >= 1

    ids = {s.session_id for s in sends} | {s.message_id for s in sends}
    for family in families.values():
        if not family.name.startswith("byai_"):
            continue
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        for sample in family.samples:
            assert not set(sample.labels.values()) & ids, sample
            assert set(sample.labels) <= {"agent_type", "status", "le"}, sample
            assert sample.labels.get("agent_type", "showcase") in {"showcase", "showcase-b"}
            status = sample.labels.get("status")
            assert status is None or status in STATUSES | {"failure", "timeout"}, sample

    stop(worker)
    ends = [line for line in _json_lines(output_of(worker)) if line.get("message_id") in ids]
    assert sorted(line["message_id"] for line in ends) == sorted(s.message_id for s in sends)
    by_id = {line["message_id"]: line for line in ends}
    for sent, result in zip(sends, results, strict=True):
        line = by_id[sent.message_id]
        assert line["level"] == "INFO"
        assert line["agent_type"] == "showcase"
        assert line["status"] == result.status.value
        assert isinstance(line["duration_s"], float) and line["duration_s"] >= 0
        assert sent.message_id in line["message"]


def _json_lines(output: str) -> list[dict]:
    """The worker's log records: with --log-format json, every line of its output is one."""
    return [json.loads(line) for line in output.splitlines() if line.strip()]


async def test_log_level_warning_hides_the_task_end_lines(
    start_worker, client: GatewayClient
) -> None:
    worker = start_worker("quiet-1", "tests.agents.EchoAgent", "--log-level", "WARNING")
    await wait_online(client, "quiet-1")
    sends = [await client.send_message("echo", "quiet-s", n) for n in range(3)]
    await wait_all(client, sends)
    stop(worker)
    output = output_of(worker)
    assert worker.returncode == 0, output
    assert not any(sent.message_id in output for sent in sends), output
    assert " INFO " not in output, output


async def test_readyz_fails_while_redis_is_gone_and_recovers_when_it_is_back(
    start_worker, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    redis = DurableRedis(tmp_path, free_port())
    redis.start()
    try:
        port = free_port()
        worker = start_worker("probed-1", "tests.agents.EchoAgent", "--metrics-port", str(port),
                              redis_url=redis.url)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        await until_status(http, f"{base}/readyz", 200)

        redis.crash()
        gone = await until_status(http, f"{base}/readyz", 503)
        assert "Redis answered no PING" in gone.text, output_of(worker)
        assert (await http.get(f"{base}/healthz")).status_code == 200  # the process is fine

        redis.start()
        assert (await until_status(http, f"{base}/readyz", 200)).text == "ready\n"
        stop(worker)  # while its Redis is there to deregister from
    finally:
        if redis.process is not None and redis.process.poll() is None:
            redis.crash()


async def test_readyz_fails_while_the_worker_is_drained(
    start_worker, client: GatewayClient, settings: Settings, http: httpx.AsyncClient
) -> None:
    port = free_port()
    start_worker("drained-1", "tests.agents.EchoAgent", "--metrics-port", str(port))
    await wait_online(client, "drained-1")
    readyz = f"http://127.0.0.1:{port}/readyz"
    await until_status(http, readyz, 200)

    await operator(settings, "workers", "drain", "drained-1")
    assert "draining" in (await until_status(http, readyz, 503)).text
    await operator(settings, "workers", "resume", "drained-1")
    await until_status(http, readyz, 200)


async def operator(settings: Settings, *command: str) -> None:
    """An operator's CLI command, run to its end."""
    process = spawn([sys.executable, "-m", "by_framework", *command], ROOT, process_env(settings))
    assert await asyncio.to_thread(process.wait, 30) == 0, output_of(process)


async def test_a_client_command_logs_as_its_options_say(settings: Settings) -> None:
    listing = [sys.executable, "-m", "by_framework", "dead-letter", "list"]
    options = ["--log-level", "DEBUG", "--log-format", "json"]
    verbose = spawn([*listing, *options], ROOT, process_env(settings))
    assert await asyncio.to_thread(verbose.wait, 30) == 0, output_of(verbose)
    records = _json_lines(output_of(verbose))  # asyncio says which selector it uses, at DEBUG
    assert any(record["level"] == "DEBUG" for record in records), records

    quiet = spawn(listing, ROOT, process_env(settings))  # INFO by default: nothing to say
    assert await asyncio.to_thread(quiet.wait, 30) == 0, output_of(quiet)
    assert output_of(quiet) == ""


def test_the_core_does_not_import_prometheus_client() -> None:
    """prometheus-client is an extra: a worker without a metrics port never imports it."""
    check = (
        "import sys\n"
        "import by_framework, by_framework.cli\n"
        "from by_framework.worker.runner import WorkerRunner\n"
        "print('prometheus_client' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False", done.stderr


async def test_a_metrics_port_without_the_extra_is_a_configuration_error(
    settings: Settings,
) -> None:
    """Where prometheus-client is not installed (here: blocked), the worker says what to install
    and exits 2."""
    run = (
        "import sys\n"
        "sys.modules['prometheus_client'] = None  # as if not installed\n"
        "from by_framework.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    command = [sys.executable, "-c", run, "--worker-class", "tests.agents.EchoAgent",
               "--worker-id", "no-extra", "--metrics-port", str(free_port())]  # fmt: skip
    worker = spawn(command, ROOT, process_env(settings))
    assert await asyncio.to_thread(worker.wait, 30) == 2, output_of(worker)
    assert "pip install 'by-framework[metrics]'" in output_of(worker)
    assert "Traceback" not in output_of(worker)
