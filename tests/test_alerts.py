"""The alert rules and their routing, checked by the tools Prometheus and Alertmanager ship: `promtool test rules`
runs the unit tests in deploy/prometheus/alerts_test.yml (each alert of the source document's table fires when
it should and stays quiet when it should not), `amtool check-config` validates the routing to email and Slack."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
# The source document's alert table, and the alerts that stand for each row.
SEED_ALERTS = {
    "p50 > 800 ms": "SqlgateLatencyP50High",
    "p99 > 3 s": "SqlgateLatencyP99High",
    "5xx > 2 % over 5 min (warning)": "SqlgateErrorRateHigh",
    "5xx > 5 % over 10 min (critical)": "SqlgateErrorRateCritical",
    "tokens > 200 per request": "SqlgateRunawayGeneration",
    "cache hit rate < 10 %": "SqlgateCacheHitRateLow",
    "gateway down": "SqlgateDown",
    "vLLM down": "VllmDown",
    "VRAM > 90 %": "GpuMemoryHigh",
    "GPU utilisation < 5 %": "GpuUtilizationLow",
    "GPU utilisation > 98 %": "GpuUtilizationSaturated",
}


def tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: apt-get install {package} (.ci/run installs it)")
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)


def test_the_alert_rules_are_valid() -> None:
    done = run(tool("promtool", "prometheus"), "check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_rule_unit_tests_pass() -> None:
    done = run(tool("promtool", "prometheus"), "test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_every_row_of_the_source_alert_table_has_an_alert_and_a_unit_test() -> None:
    defined = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
               if "alert" in rule}
    tested = {check["alertname"] for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for check in case.get("alert_rule_test", [])}
    for row, alert in SEED_ALERTS.items():
        assert alert in defined, f"no alert for the source document's row '{row}'"
        assert alert in tested, f"alert {alert} ({row}) has no promtool unit test"


def test_the_alertmanager_routing_is_valid() -> None:
    done = run(tool("amtool", "prometheus-alertmanager"), "check-config", str(ALERTMANAGER))
    assert done.returncode == 0, done.stdout + done.stderr
    receivers = {receiver["name"]: receiver for receiver in yaml.safe_load(ALERTMANAGER.read_text())["receivers"]}
    kinds = {kind for receiver in receivers.values() for kind in receiver if kind.endswith("_configs")}
    assert {"email_configs", "slack_configs"} <= kinds, kinds
