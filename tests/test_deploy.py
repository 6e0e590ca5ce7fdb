"""deploy/ checked without a container runtime: the Dockerfile, the compose file and the
Kubernetes manifests are parsed; every by-framework command in them is parsed by the CLI's own
parsers, every environment variable they set must be a setting, probes and grace periods must
match the flags and settings the commands run with, and real processes, started with the
manifests' command lines, answer the probes and healthchecks."""

import argparse
import asyncio
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import redirect_stderr
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
import yaml

from by_framework import GatewayClient, Settings, cli
from by_framework.gateway.settings import ENV_PREFIX, GatewaySettings
from tests.support import ROOT, output_of, process_env, spawn, worker_process

DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"by-framework:{VERSION}"
DRAIN_MARGIN_S = 5.0
"""What a stopping worker needs beyond ``shutdown_timeout``: cancelling what is left (at most
1 s), handing it back and deregistering. A grace period shorter than both means a SIGKILL."""
WORKER_PROBES = {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}
NOT_SETTINGS = {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
"""The only variables the image sets that are not by-framework settings: the interpreter's."""


# --- the Dockerfile, read as Docker reads it: one instruction per logical line


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    stage: int


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """Comments and blank lines dropped, ``\\`` continuations joined, each with its stage."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        keyword, _, value = (pending + text).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), value.strip(), stage))
    return instructions


INSTRUCTIONS = dockerfile_instructions(DEPLOY / "Dockerfile")
RUNTIME = [i for i in INSTRUCTIONS if i.stage == INSTRUCTIONS[-1].stage]


def runtime_value(keyword: str) -> str:
    """The instruction's value in the final stage (the last one wins, as in Docker)."""
    values = [i.value for i in RUNTIME if i.keyword == keyword]
    assert values, f"deploy/Dockerfile's final stage has no {keyword}"
    return values[-1]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for value in (i.value for i in RUNTIME if i.keyword == "ENV"):
        for pair in shlex.split(value):
            name, sep, setting = pair.partition("=")
            assert sep, f"ENV {pair!r}: write NAME=value"
            env[name] = setting
    return env


def healthcheck_command() -> str:
    """The HEALTHCHECK's command, in shell form (Docker runs it with /bin/sh -c)."""
    _, sep, command = runtime_value("HEALTHCHECK").partition(" CMD ")
    assert sep and not command.startswith("["), "HEALTHCHECK: give the command in shell form"
    return command


def image_uid() -> int:
    user = runtime_value("USER").partition(":")[0]
    assert user.isdigit(), f"USER {user}: give a numeric id, which runAsNonRoot can verify"
    return int(user)


# --- the CLI, asked to parse a command line and stop there


class _Parsed(BaseException):
    """Raised right after the CLI's parser accepted a command line, before anything runs."""

    def __init__(self, namespace: argparse.Namespace) -> None:
        super().__init__()
        self.namespace = namespace


def cli_arguments(argv: list[str], where: str) -> argparse.Namespace:
    """``argv`` as ``python -m by_framework`` parses it: the CLI's own parsers judge the flags,
    and the command stops as soon as one of them has accepted the line."""
    accept = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        raise _Parsed(accept(self, *args, **kwargs))

    errors = io.StringIO()
    with mock.patch.object(argparse.ArgumentParser, "parse_args", parse_then_stop):
        try:
            with redirect_stderr(errors):
                cli.main(argv)
        except _Parsed as parsed:
            return parsed.namespace
        except SystemExit as exc:
            print(exc.code if isinstance(exc.code, str) else "", file=errors)
    missing = ""
    said = (errors.getvalue().strip().splitlines() or ["(nothing said)"])[-1]  # after the usage
    unknown = ("unknown command", "--worker-class", "invalid choice")
    if argv and not argv[0].startswith("-") and any(words in said for words in unknown):
        missing = f"\nThe CLI has no `{argv[0]}` subcommand (yet?)."
    pytest.fail(
        f"{where}: the CLI refuses `python -m by_framework {shlex.join(argv)}`: {said}{missing}"
    )


def role(argv: list[str]) -> str:
    """What a command line runs: ``worker`` (the default when it starts with an option), or
    its subcommand."""
    return "worker" if argv[0].startswith("-") else argv[0]


def metrics_port(args: argparse.Namespace, where: str) -> int:
    port = getattr(args, "metrics_port", None)
    assert isinstance(port, int), f"{where}: a worker's command must give --metrics-port"
    return port


# --- settings


def known_env_names() -> set[str]:
    """Every variable by-framework reads: the settings' and the gateway's."""
    names = {
        extra["env"]
        for field in Settings.model_fields.values()
        if isinstance(extra := field.json_schema_extra, dict)
    }
    return names | {ENV_PREFIX + name.upper() for name in GatewaySettings.model_fields}


def assert_settings(names: Iterable[str], where: str) -> None:
    unknown = set(names) - known_env_names()
    assert not unknown, f"{where} sets {sorted(unknown)}, which no setting reads"


def assert_drains(grace: float, settings: Settings, where: str) -> None:
    assert grace >= settings.shutdown_timeout + DRAIN_MARGIN_S, (
        f"{where}: a grace period of {grace:g} s before SIGKILL is too short for a drain of "
        f"shutdown_timeout = {settings.shutdown_timeout:g} s (+ {DRAIN_MARGIN_S:g} s)"
    )


def effective_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """The settings a command runs with: its flags, then its environment, then the defaults."""
    flags = {
        name: value
        for name, value in vars(args).items()
        if name in Settings.model_fields and value is not None
    }
    return Settings.resolve(environ=environ, **flags)


def check_serving_allowed(args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    """What the gateway and the dashboard check before they serve: their settings, and auth
    on a public address."""
    with mock.patch.dict(os.environ, environ, clear=True):
        gateway = GatewaySettings.resolve(insecure=args.insecure)
    gateway.check_host(args.host)


def dotenv(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines())
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2 and not pair[0].startswith("#")}


def seconds(duration: str) -> float:
    """A compose duration (``45s``, ``1m30s``) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in {"", "latest"}


# --- compose

COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
COMPOSE_VARIABLES = dotenv(DEPLOY / "env.example")
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[?-][^}]*)?\}")


def interpolated(value: object) -> str:
    """A compose value with its ``${VAR...}`` replaced as from deploy/env.example."""
    return INTERPOLATION.sub(lambda match: COMPOSE_VARIABLES[match[1]], str(value))


def compose_services(*roles: str) -> Iterator[tuple[str, dict[str, Any], argparse.Namespace]]:
    """The services that run our image (those of ``roles``, if given), with their command as
    the CLI parses it."""
    for name, service in COMPOSE["services"].items():
        if service.get("image") == IMAGE and (not roles or role(service["command"]) in roles):
            yield name, service, cli_arguments(service["command"], f"compose service {name}")


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    """A container's environment: the image's, then the service's."""
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "write environment as a mapping"
    return {**image_env(), **{k: interpolated(v) for k, v in environment.items()}}


def healthcheck_port(test: list[str]) -> int:
    ports = {int(port) for port in re.findall(r"127\.0\.0\.1\D{1,3}(\d+)", " ".join(test))}
    assert len(ports) == 1, f"healthcheck {test} should probe one port on 127.0.0.1"
    return ports.pop()


# --- Kubernetes


def manifests() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            for document in yaml.safe_load_all(path.read_text()):
                yield path.name, document


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [document for _, document in manifests() if document["kind"] == kind]


KUSTOMIZATION = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())


def secrets() -> dict[str, dict[str, str]]:
    """The Secrets kustomization.yaml generates, with the example values."""
    generated: dict[str, dict[str, str]] = {}
    for generator in KUSTOMIZATION.get("secretGenerator", []):
        values: dict[str, str] = {}
        for env_file in generator["envs"]:
            example = KUBERNETES / f"{env_file}.example"
            assert example.is_file(), f"commit {example.name}, the example of {env_file}"
            values |= dotenv(example)
        generated[generator["name"]] = values
    return generated


def config_maps() -> dict[str, dict[str, str]]:
    return {m["metadata"]["name"]: m["data"] for m in of_kind("ConfigMap")}


def pod_env(container: dict[str, Any]) -> dict[str, str]:
    """A container's environment as the pod gets it, secrets from the examples."""
    sources = {"configMapRef": config_maps(), "secretRef": secrets()}
    keyed = {"configMapKeyRef": config_maps(), "secretKeyRef": secrets()}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ((kind, ref),) = source.items()
        assert ref["name"] in sources[kind], f"{kind} {ref['name']} is not in the manifests"
        env |= sources[kind][ref["name"]]
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
            continue
        ((kind, ref),) = variable["valueFrom"].items()
        if kind == "fieldRef":
            env[variable["name"]] = f"field-{ref['fieldPath']}"
            continue
        data = keyed[kind].get(ref["name"])
        assert data is not None and ref["key"] in data, f"{kind} {ref} names nothing defined"
        env[variable["name"]] = data[ref["key"]]
    return env


def containers(*roles: str) -> Iterator[tuple[dict[str, Any], dict[str, Any], argparse.Namespace]]:
    """Each Deployment's container (those of ``roles``, if given), with its args as the CLI
    parses them."""
    for deployment in of_kind("Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            if not roles or role(container["args"]) in roles:
                where = f"Deployment {deployment['metadata']['name']}"
                yield deployment, container, cli_arguments(container["args"], where)


def container_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    assert port in named, f"container {container['name']} has no port named {port}"
    return named[port]


def probed_port(container: dict[str, Any], probe: str) -> int:
    """The port a probe knocks on, over HTTP or TCP."""
    (action,) = [
        container[probe][kind] for kind in ("httpGet", "tcpSocket") if kind in container[probe]
    ]
    return container_port(container, action["port"])


# --- the Dockerfile


def test_the_image_runs_by_framework_as_a_non_root_user_and_drains_on_sigterm() -> None:
    assert json.loads(runtime_value("ENTRYPOINT")) == ["python", "-m", "by_framework"]
    assert image_uid() != 0
    assert runtime_value("STOPSIGNAL") == "SIGTERM"
    froms = [i.value.split()[0] for i in INSTRUCTIONS if i.keyword == "FROM"]
    assert len(froms) >= 2, "build the wheels in a stage of their own"
    assert all(pinned(image) for image in froms), froms
    assert "/healthz" in healthcheck_command()
    assert "BYAI_METRICS_PORT" in healthcheck_command()
    exposed = {int(port) for port in runtime_value("EXPOSE").split()}
    assert int(image_env()["BYAI_METRICS_PORT"]) in exposed


def test_the_image_sets_settings_only_and_no_secret() -> None:
    env = image_env()
    assert_settings(set(env) - NOT_SETTINGS, "deploy/Dockerfile")
    secret = {name for name in env if re.search("KEY|PASSWORD|SECRET|TOKEN", name)}
    assert not secret, f"secrets come from the environment at run time, not the image: {secret}"
    assert not [i for i in INSTRUCTIONS if i.keyword == "ARG" and "KEY" in i.value.upper()]


def test_the_image_installs_extras_and_files_that_exist() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    build = " ".join(i.value for i in INSTRUCTIONS if i.keyword == "RUN" and i.stage == 0)
    install = " ".join(i.value for i in RUNTIME if i.keyword == "RUN")
    wanted = re.findall(r'"\.\[([\w,]+)\]"', build)
    assert wanted, "the build stage should build the core with its extras: pip wheel '.[...]'"
    for names in wanted:
        missing = set(names.split(",")) - set(extras)
        assert not missing, f"pyproject.toml has no extra {missing}"
        assert f'"by-framework[{names}]"' in install, "install the extras the wheels were built for"
    for path in re.findall(r"\./(history/\w+|adapters/\w+|tracing/\w+)", build):
        project = tomllib.loads((ROOT / path / "pyproject.toml").read_text())["project"]
        assert project["name"] in install, f"the runtime stage should install {project['name']}"
    ignored = [
        line.rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    for copy in (i for i in INSTRUCTIONS if i.keyword == "COPY" and "--from" not in i.value):
        for source in copy.value.split()[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            patterns = [p.removeprefix("**/") for p in ignored]
            assert not any(fnmatch(source.rstrip("/"), p) for p in patterns), (
                f"COPY {source}: .dockerignore leaves it out of the build context"
            )
    for kept_out in (".env", "deploy/.env", ".venv", ".git", "deploy"):
        assert any(fnmatch(kept_out, p.removeprefix("**/")) for p in ignored), kept_out


# --- compose


def test_compose_images_are_pinned_and_ours_is_this_version() -> None:
    images = {name: service["image"] for name, service in COMPOSE["services"].items()}
    assert all(pinned(image) for image in images.values()), images
    assert images["redis"].startswith("redis:7")
    assert images["postgres"].startswith("postgres:16")
    assert sum(image == IMAGE for image in images.values()) >= 4, "2 workers, gateway, dashboard"
    redis_command = COMPOSE["services"]["redis"]["command"]
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"


def test_compose_commands_are_ones_the_cli_accepts() -> None:
    roles = []
    for name, service, args in compose_services():
        roles.append(role(service["command"]))
        if roles[-1] == "worker":
            cli.load_worker_class(args.worker_class)  # importable in the image: it ships in it
        else:  # the gateway and the dashboard refuse a public address without auth
            check_serving_allowed(args, compose_env(service))
        assert_settings(service.get("environment", {}), f"compose service {name}")
    assert sorted(roles) == ["dashboard", "gateway", "worker", "worker"]


def test_compose_workers_are_probed_on_their_metrics_port_and_drain_in_time() -> None:
    for name, service, args in compose_services("worker"):
        env = compose_env(service)
        port = metrics_port(args, name)
        if "healthcheck" in service:
            assert healthcheck_port(service["healthcheck"]["test"]) == port, name
        else:  # the image's HEALTHCHECK, on $BYAI_METRICS_PORT
            assert env["BYAI_METRICS_PORT"] == str(port), name
        settings = effective_settings(args, env)
        assert_drains(seconds(service["stop_grace_period"]), settings, f"compose service {name}")
        assert settings.history_url.startswith("postgresql://"), name
        assert env["BYAI_METRICS_HOST"] == "0.0.0.0", f"{name}: probes come from outside"


def test_compose_services_start_once_what_they_need_is_healthy() -> None:
    services = COMPOSE["services"]
    for name, service in services.items():
        if service.get("image") != IMAGE:
            assert "healthcheck" in service, f"{name} needs a healthcheck"
        for needed, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {needed}"
            assert "healthcheck" in services[needed], f"{needed} needs a healthcheck"
    for name, service, args in compose_services("gateway", "dashboard"):
        assert healthcheck_port(service["healthcheck"]["test"]) == args.port, name
    for name, service in services.items():
        if service.get("image") == IMAGE:
            assert "redis" in service["depends_on"], name


def test_compose_takes_its_secrets_from_the_env_file() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    referenced = {match[1] for match in INTERPOLATION.finditer(text)}
    assert referenced == set(COMPOSE_VARIABLES), "deploy/env.example lists what compose reads"
    for name, service in COMPOSE["services"].items():
        if service.get("image") == IMAGE:
            signing_key = service["environment"]["BYAI_SIGNING_KEY"]
            assert INTERPOLATION.fullmatch(signing_key), f"{name}: the key comes from deploy/.env"


# --- Kubernetes


def test_kustomization_lists_every_manifest_and_none_names_a_namespace() -> None:
    files = {path.name for path in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(KUSTOMIZATION["resources"]) == sorted(files)
    for name, document in manifests():
        assert "namespace" not in document["metadata"], f"{name}: apply with -n instead"
    for secret, values in secrets().items():
        assert_settings(values, f"Secret {secret}")
    for config_map, data in config_maps().items():
        assert_settings(data, f"ConfigMap {config_map}")


def test_kubernetes_commands_are_ones_the_cli_accepts_with_settings_that_hold() -> None:
    roles = []
    for deployment, container, args in containers():
        name = deployment["metadata"]["name"]
        assert container["image"] == IMAGE, name
        env = {**image_env(), **pod_env(container)}
        assert_settings((v["name"] for v in container.get("env", [])), f"Deployment {name}")
        effective_settings(args, env)
        roles.append(role(container["args"]))
        if roles[-1] == "worker":
            cli.load_worker_class(args.worker_class)
        else:
            check_serving_allowed(args, env)
    assert sorted(roles) == ["dashboard", "gateway", "worker"]


def test_kubernetes_workers_are_probed_scraped_and_given_time_to_drain() -> None:
    ((deployment, container, args),) = containers("worker")
    pod = deployment["spec"]["template"]
    port = metrics_port(args, "the worker Deployment")
    for probe, path in WORKER_PROBES.items():
        assert container[probe]["httpGet"]["path"] == path
        assert probed_port(container, probe) == port, probe
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    settings = effective_settings(args, {**image_env(), **pod_env(container)})
    assert_drains(pod["spec"]["terminationGracePeriodSeconds"], settings, "the worker Deployment")
    assert "lifecycle" not in container, "the worker drains on SIGTERM itself; no preStop"
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (budget,) = of_kind("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_kubernetes_pods_run_locked_down() -> None:
    for deployment in of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == image_uid(), name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            locked = container["securityContext"]
            assert locked["readOnlyRootFilesystem"] is True, name
            assert locked["allowPrivilegeEscalation"] is False, name
            assert locked["capabilities"]["drop"] == ["ALL"], name
            assert "/tmp" in {mount["mountPath"] for mount in container["volumeMounts"]}, name
            assert container["resources"]["requests"], name
            assert container["resources"]["limits"], name


def test_kubernetes_gateway_and_dashboard_are_probed_and_served_on_their_port() -> None:
    for deployment, container, args in containers("gateway", "dashboard"):
        name = deployment["metadata"]["name"]
        for probe in ("readinessProbe", "livenessProbe"):
            assert probed_port(container, probe) == args.port, f"{name} {probe}"
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        if "prometheus.io/port" in annotations:
            assert annotations["prometheus.io/port"] == str(args.port), name
    services = of_kind("Service")
    assert {s["metadata"]["name"] for s in services} == {
        "by-framework-gateway",
        "by-framework-dashboard",
    }
    for service in services:
        (deployment,) = [
            d
            for d in of_kind("Deployment")
            if service["spec"]["selector"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        for port in service["spec"]["ports"]:
            container_port(container, port["targetPort"])


# --- the probes, served by real processes

PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
"""Where a healthcheck finds ``python``: this interpreter's, as the image's is first on its."""


async def test_a_worker_serves_the_probes_the_deploy_files_name(
    client: GatewayClient, settings: Settings, unused_tcp_port: int
) -> None:
    ((_, container, args),) = containers("worker")
    worker = worker_process(
        settings,
        "deploy-probe",
        args.worker_class,
        "--metrics-port",
        str(unused_tcp_port),
        env={"BYAI_METRICS_HOST": "127.0.0.1"},
    )
    try:
        async with asyncio.timeout(15):
            while not await client.registry.is_online("deploy-probe"):
                assert worker.poll() is None, f"the worker exited: {output_of(worker)}"
                await asyncio.sleep(0.05)
        base = f"http://127.0.0.1:{unused_tcp_port}"
        async with httpx.AsyncClient(base_url=base) as http:
            for probe in WORKER_PROBES:
                path = container[probe]["httpGet"]["path"]
                async with asyncio.timeout(10):
                    while (await http.get(path)).status_code != 200:
                        await asyncio.sleep(0.05)
            assert "# TYPE" in (await http.get("/metrics")).text
        healthcheck = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            healthcheck_command(),  # as Docker runs it, in the container's environment
            env={**os.environ, "PATH": PATH, "BYAI_METRICS_PORT": str(unused_tcp_port)},
            stderr=subprocess.PIPE,
        )
        _, errors = await asyncio.wait_for(healthcheck.communicate(), 20)
        assert healthcheck.returncode == 0, errors.decode()
    finally:
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 30)
    assert code == 0, output_of(worker)


@pytest.mark.parametrize("served", ["gateway", "dashboard"])
async def test_the_gateway_and_dashboard_answer_their_probes(
    served: str, settings: Settings, unused_tcp_port: int
) -> None:
    ((_, container, _),) = containers(served)
    (service,) = [s for s in COMPOSE["services"].values() if s.get("command", [""])[0] == served]
    argv = list(container["args"])
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(unused_tcp_port)
    env = process_env(settings, **{k: v for k, v in pod_env(container).items() if "GATEWAY" in k})
    process = spawn([sys.executable, "-m", "by_framework", *argv], ROOT, env)
    try:
        for probe in ("readinessProbe", "livenessProbe"):
            await answered(process, container[probe], unused_tcp_port)
        port = str(healthcheck_port(service["healthcheck"]["test"]))
        test = [part.replace(port, str(unused_tcp_port)) for part in service["healthcheck"]["test"]]
        healthcheck = await asyncio.create_subprocess_exec(*test[1:], env={**env, "PATH": PATH})
        assert await asyncio.wait_for(healthcheck.wait(), 20) == 0, test
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)


async def answered(process: subprocess.Popen[str], probe: dict[str, Any], port: int) -> None:
    """Wait until the probe succeeds as the kubelet would see it: a 2xx or 3xx answer to its
    GET, or a TCP connection."""
    async with asyncio.timeout(15), httpx.AsyncClient() as http:
        while True:
            assert process.poll() is None, f"it exited: {output_of(process)}"
            try:
                if "httpGet" not in probe:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    return
                url = f"http://127.0.0.1:{port}{probe['httpGet']['path']}"
                if (await http.get(url)).status_code < 400:
                    return
            except (OSError, httpx.TransportError):
                pass
            await asyncio.sleep(0.05)
