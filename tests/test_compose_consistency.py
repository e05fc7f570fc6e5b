"""docker-compose.yml cannot be started here (no Docker engine), so its agreement with the code is checked instead:
vLLM's flags are the launcher's GPU command line, gateway settings exist, names and ports line up everywhere."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.settings import Settings
from launch.merge import DEFAULT_ADAPTER, DEFAULT_BASE_MODEL
from launch.vllm_server import DEFAULT_PORT, DEFAULT_SERVED_MODEL_NAME, LaunchOptions, build_command, build_env

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
PROMETHEUS = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
CONTRACT = (REPO_ROOT / "docs" / "contract.md").read_text()


def vllm_argv() -> list[str]:
    service = SERVICES["vllm"]
    return [str(word) for word in service["entrypoint"] + service["command"]]


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def gateway_env() -> dict[str, str]:
    return {name: str(value) for name, value in SERVICES["gateway"]["environment"].items()}


def contract_section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", CONTRACT, re.S | re.M)
    assert match, f"docs/contract.md has no section {title!r}"
    return match.group(1)


def contract_default_port(process: str) -> int:
    row = next(line for line in contract_section("Processes and ports").splitlines() if line.startswith(f"| {process}"))
    return int(row.split("|")[3])


def published_container_ports(service: str) -> list[int]:
    return [int(str(mapping).rsplit(":", 1)[1]) for mapping in SERVICES[service].get("ports", [])]


def scrape_targets() -> dict[str, list[str]]:
    return {
        job["job_name"]: [target for group in job["static_configs"] for target in group["targets"]]
        for job in PROMETHEUS["scrape_configs"]
    }


def test_vllm_command_is_the_launchers_gpu_command() -> None:
    argv = vllm_argv()
    model_folder = argv[2]
    options = LaunchOptions(model=model_folder, target="gpu", host="0.0.0.0", port=DEFAULT_PORT)

    assert argv == build_command(options)
    assert flag(argv, "--served-model-name") == DEFAULT_SERVED_MODEL_NAME
    # The folder vLLM serves is the one the merge writes and the gateway reads its tokenizer from.
    merge_command = SERVICES["merge"]["command"]
    assert merge_command[merge_command.index("--out") + 1] == model_folder
    assert gateway_env()["SQLGATE_TOKENIZER"] == model_folder
    # What the launcher adds to vLLM's environment for a GPU, compose sets too.
    launcher_env = build_env(options, base={})
    assert {name: str(value) for name, value in SERVICES["vllm"]["environment"].items()}.items() >= launcher_env.items()


def test_merge_defaults_are_the_merge_scripts() -> None:
    environment = SERVICES["merge"]["environment"]
    assert environment["SQLGATE_BASE_MODEL"] == f"${{SQLGATE_BASE_MODEL:-{DEFAULT_BASE_MODEL}}}"
    assert environment["SQLGATE_ADAPTER"] == f"${{SQLGATE_ADAPTER:-{DEFAULT_ADAPTER}}}"
    assert SERVICES["vllm"]["depends_on"]["merge"]["condition"] == "service_completed_successfully"


def test_vllm_image_tag_is_the_pinned_gpu_vllm() -> None:
    image, tag = SERVICES["vllm"]["image"].split(":")
    pins = dict(
        line.split("==") for line in (REPO_ROOT / "launch" / "requirements-vllm-gpu.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert image == "vllm/vllm-openai"
    assert tag == f"v{pins['vllm']}"


def test_only_the_gateway_can_reach_vllm() -> None:
    networks = COMPOSE["networks"]
    internal = {name for name, spec in networks.items() if (spec or {}).get("internal")}
    assert "ports" not in SERVICES["vllm"] and "ports" not in SERVICES["redis"]
    assert set(SERVICES["vllm"]["networks"]) <= internal
    assert set(SERVICES["redis"]["networks"]) <= internal
    gateway_networks = set(SERVICES["gateway"]["networks"])
    assert gateway_networks & set(SERVICES["vllm"]["networks"])  # the gateway reaches vLLM...
    assert gateway_networks - internal  # ...and is itself reachable from outside
    assert published_container_ports("gateway") == [int(gateway_env()["SQLGATE_PORT"])]


def test_gateway_env_names_are_documented_settings() -> None:
    section = contract_section("Gateway settings (environment, prefix `SQLGATE_`)")
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    names = [name.removeprefix("SQLGATE_") for name in gateway_env()]

    assert all(name.startswith("SQLGATE_") for name in gateway_env())
    assert not set(names) - documented, "set in compose but not in docs/contract.md"
    assert not {name.lower() for name in names} - set(Settings.model_fields), "not a gateway setting"


def test_gateway_env_points_at_the_compose_services() -> None:
    env, argv = gateway_env(), vllm_argv()
    upstream = urlsplit(env["SQLGATE_UPSTREAM_URL"])
    redis = urlsplit(env["SQLGATE_REDIS_URL"])

    assert (upstream.hostname, upstream.port) == ("vllm", int(flag(argv, "--port")))
    assert env["SQLGATE_UPSTREAM_MODEL"] == flag(argv, "--served-model-name")
    assert env["SQLGATE_MAX_MODEL_LEN"] == flag(argv, "--max-model-len")
    assert (redis.hostname, redis.port) == ("redis", 6379)
    assert env["SQLGATE_HOST"] == "0.0.0.0"
    assert int(env["SQLGATE_PORT"]) == contract_default_port("gateway")
    assert int(flag(argv, "--port")) == contract_default_port("vLLM")
    assert env["SQLGATE_API_KEY_FILE"] == f"/run/secrets/{SERVICES['gateway']['secrets'][0]}"
    assert SERVICES["gateway"]["secrets"][0] in COMPOSE["secrets"]
    for service in ("gateway", "vllm"):
        health = " ".join(SERVICES[service]["healthcheck"]["test"])
        port = env["SQLGATE_PORT"] if service == "gateway" else flag(argv, "--port")
        assert f"http://127.0.0.1:{port}/health" in health


def test_prometheus_scrapes_the_compose_services() -> None:
    targets = scrape_targets()
    contract_jobs = set(re.findall(r"`(\w+)` \(", CONTRACT.split("Prometheus jobs:")[1].splitlines()[0]))

    assert contract_jobs == {"sqlgate", "vllm"}
    assert contract_jobs <= set(targets)
    assert targets["sqlgate"] == [f"gateway:{gateway_env()['SQLGATE_PORT']}"]
    assert targets["vllm"] == [f"vllm:{flag(vllm_argv(), '--port')}"]
    for job_targets in targets.values():
        for target in job_targets:
            host = target.split(":")[0]
            assert host in SERVICES, f"{target} is not a compose service"
            # Prometheus must share a network with every service it scrapes.
            assert set(SERVICES["prometheus"]["networks"]) & set(SERVICES[host]["networks"]), target
    assert published_container_ports("prometheus") == [contract_default_port("Prometheus")]


def test_prometheus_loads_the_alert_rules_and_sends_to_alertmanager() -> None:
    assert PROMETHEUS["rule_files"] == ["alerts.yml"]
    assert (PROMETHEUS_DIR / "alerts.yml").is_file()
    assert "./deploy/prometheus:/etc/prometheus:ro" in SERVICES["prometheus"]["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in SERVICES["prometheus"]["command"]
    alertmanagers = [
        target for manager in PROMETHEUS["alerting"]["alertmanagers"]
        for group in manager["static_configs"] for target in group["targets"]
    ]
    assert alertmanagers == [f"alertmanager:{published_container_ports('alertmanager')[0]}"]


def test_alertmanager_gets_the_secret_files_its_config_reads() -> None:
    config_text = (REPO_ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text()
    wanted = set(re.findall(r"_file:\s*(\S+)", config_text))
    mounted = {secret["target"] for secret in SERVICES["alertmanager"]["secrets"]}
    assert wanted and wanted == mounted
    volumes = SERVICES["alertmanager"]["volumes"]
    assert any(volume.startswith("./deploy/alertmanager/alertmanager.yml:") for volume in volumes)


def test_gateway_image_is_slim_non_root_with_a_health_check() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    gateway = stages[-1]  # the default target: a plain `docker build .` gives the gateway

    assert gateway.startswith("${PYTHON_IMAGE} AS gateway")
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in dockerfile
    users = re.findall(r"^USER (\S+)", gateway, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "http://127.0.0.1:8000/health" in gateway and "EXPOSE 8000" in gateway
    assert "torch" not in gateway  # the gateway never needs it
    assert SERVICES["gateway"]["build"]["target"] == "gateway"
    assert SERVICES["merge"]["build"]["target"] == "merge"


def test_prometheus_config_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: apt-get install prometheus (.ci/run installs it)")
    done = subprocess.run([promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_gpu_stack_runs_the_gateway_with_the_gpu_target_s_measured_defaults() -> None:
    from launch.target_defaults import gateway_defaults

    env = gateway_env()
    assert {name: env.get(name) for name in gateway_defaults("gpu")} == gateway_defaults("gpu")
