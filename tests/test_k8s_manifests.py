"""deploy/k8s cannot be applied here (no cluster), so it is checked offline: every manifest against the Kubernetes
JSON schemas `kubernetes-validate` ships (strict: an unknown or misspelt field fails), and its agreement with the
code and the compose stack: vLLM's flags, the gateway's settings, the replica URLs, selectors and ports."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from gateway.replicas import parse_upstream_urls
from gateway.settings import Settings
from tests.test_compose_consistency import SERVICES, vllm_argv

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY = REPO_ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUSTOMIZATION = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
MANIFEST_FILES = sorted(K8S.glob("*.yaml"))
DOCUMENTS: list[dict[str, Any]] = [doc for path in MANIFEST_FILES for doc in yaml.safe_load_all(path.read_text())
                                   if doc]
# The oldest Kubernetes still in common managed service and the newest the package knows.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")


def named(kind: str, name: str) -> dict[str, Any]:
    return next(doc for doc in DOCUMENTS if doc["kind"] == kind and doc["metadata"]["name"] == name)


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def env(workload: dict[str, Any], name: str) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(workload, name).get("env", []) if "value" in item}


def workloads() -> list[dict[str, Any]]:
    return [doc for doc in DOCUMENTS if doc["kind"] in WORKLOAD_KINDS]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_matches_the_kubernetes_schema(document: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    broken = yaml.safe_load(yaml.safe_dump(named("Deployment", "gateway")))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_kustomization_lists_every_manifest_and_existing_files() -> None:
    assert sorted(KUSTOMIZATION["resources"]) == sorted(f"k8s/{p.name}" for p in MANIFEST_FILES)
    for generator in KUSTOMIZATION["configMapGenerator"]:
        for entry in generator["files"]:
            assert (DEPLOY / entry.split("=", 1)[1]).is_file(), entry


def test_vllm_runs_the_same_command_as_the_compose_stack() -> None:
    vllm = container(named("StatefulSet", "vllm"), "vllm")
    assert [str(word) for word in vllm["command"] + vllm["args"]] == vllm_argv()
    assert vllm["image"] == SERVICES["vllm"]["image"]


def test_the_gateway_lists_one_url_per_vllm_replica_by_its_stable_name() -> None:
    statefulset = named("StatefulSet", "vllm")
    service = named("Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"  # headless: per-pod DNS names, no load balancing in between
    argv = vllm_argv()
    port = int(argv[argv.index("--port") + 1])
    assert port == service["spec"]["ports"][0]["port"]
    urls = parse_upstream_urls(env(named("Deployment", "gateway"), "gateway")["SQLGATE_UPSTREAM_URL"])
    expected = [f"vllm-{index}.{service['metadata']['name']}:{port}"
                for index in range(statefulset["spec"]["replicas"])]
    assert [urlsplit(url).netloc for url in urls] == expected


def test_gateway_env_is_valid_settings_that_match_the_compose_gateway() -> None:
    values = env(named("Deployment", "gateway"), "gateway")
    fields = {f"SQLGATE_{name.upper()}" for name in Settings.model_fields}
    assert set(values) <= fields
    compose = {k: str(v) for k, v in SERVICES["gateway"]["environment"].items()}
    for name in ("SQLGATE_UPSTREAM_MODEL", "SQLGATE_MODEL_ID", "SQLGATE_MAX_MODEL_LEN", "SQLGATE_WORKERS"):
        assert values[name] == compose[name]
    settings = {name.removeprefix("SQLGATE_").lower(): value for name, value in values.items()
                if name not in ("SQLGATE_API_KEY_FILE", "SQLGATE_TOKENIZER")}
    Settings(**settings, auth_enabled=False)  # every value parses


def test_every_service_selects_a_workload_on_a_named_container_port() -> None:
    for service in (doc for doc in DOCUMENTS if doc["kind"] == "Service"):
        selector = service["spec"]["selector"]
        matches = [w for w in workloads()
                   if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert matches, service["metadata"]["name"]
        ports = {p["name"]: p["containerPort"] for c in matches[0]["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)


def test_claims_configmaps_and_secrets_the_pods_mount_exist_or_are_documented() -> None:
    claims = {doc["metadata"]["name"] for doc in DOCUMENTS if doc["kind"] == "PersistentVolumeClaim"}
    generated = {generator["name"] for generator in KUSTOMIZATION["configMapGenerator"]}
    deploy_doc = (REPO_ROOT / "docs" / "deploy.md").read_text()
    for workload in workloads():
        for volume in workload["spec"]["template"]["spec"].get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
            if "configMap" in volume:
                assert volume["configMap"]["name"] in generated
            if "secret" in volume:
                # Secrets are never committed: docs/deploy.md says how to create each one.
                assert f"secret generic {volume['secret']['secretName']}" in deploy_doc


def test_only_the_gateway_and_prometheus_may_reach_vllm() -> None:
    policy = named("NetworkPolicy", "vllm-ingress")
    sources = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
               for rule in policy["spec"]["ingress"] for peer in rule["from"]}
    assert sources == {"gateway", "prometheus"}


def test_prometheus_keeps_the_compose_job_names_and_rules() -> None:
    k8s = yaml.safe_load((K8S / "prometheus" / "prometheus.yml").read_text())
    compose = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert [job["job_name"] for job in k8s["scrape_configs"]] == [job["job_name"] for job in compose["scrape_configs"]]
    assert k8s["rule_files"] == compose["rule_files"] == ["alerts.yml"]
    kept = {job["job_name"]: [r["regex"] for r in job.get("relabel_configs", []) if r.get("action") == "keep"]
            for job in k8s["scrape_configs"]}
    assert kept["sqlgate"][0] == "gateway" and kept["vllm"][0] == "vllm"
