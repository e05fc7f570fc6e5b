"""The gateway's Prometheus metrics: the names, types and labels docs/contract.md pins, on per-app registries."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from gateway.observability.metrics import Metrics
from gateway.replicas import ReplicaSet

CONTRACT = Path(__file__).resolve().parents[1] / "docs" / "contract.md"


def contract_metrics() -> dict[str, tuple[str, set[str]]]:
    """`name -> (type, label names)` from the contract's metrics table."""
    text = CONTRACT.read_text()
    table = text[text.index("## Prometheus metrics"):]
    rows: dict[str, tuple[str, set[str]]] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names_cell, kind, labels_cell = cells
        labels = set(re.findall(r"`([a-z_]+)`", re.sub(r"\(.*?\)", "", labels_cell)))
        for name in re.findall(r"`([a-z_:]+)`", names_cell):
            rows[name] = (kind, labels)
    return rows


def exposed(metrics: Metrics) -> dict[str, tuple[str, list[Sample]]]:
    """`exposed name -> (type, samples)`; counters under their `_total` name as Prometheus stores them."""
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    families: dict[str, tuple[str, list[Sample]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        name = family.name + "_total" if family.type == "counter" else family.name
        families[name] = (family.type, family.samples)
    return families


def busy_metrics() -> Metrics:
    metrics = Metrics()
    metrics.observe_request("completions", 200, 0.31)
    metrics.observe_request("completions", 502, 1.2)
    metrics.observe_upstream("ok", 0.3)
    metrics.observe_ttft("completions", 0.05)
    metrics.add_tokens(57, 9)
    metrics.cache(hit=False)
    metrics.sql_check("valid")
    metrics.compile_failure()
    metrics.rejected("rate_limit")
    metrics.error("completions", "upstream_timeout")
    metrics.retry()
    metrics.set_ready(True)
    metrics.watch_replicas(ReplicaSet(["http://127.0.0.1:8001", "http://127.0.0.1:8002"]).snapshot)
    return metrics


def sample_value(metrics: Metrics, name: str, **labels: str) -> float:
    for _, samples in exposed(metrics).values():
        for sample in samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise KeyError(f"{name}{labels}")


def test_every_contract_metric_is_exposed_with_its_type_and_labels() -> None:
    expected = contract_metrics()
    assert len(expected) == 27  # the table as written: a parse that finds fewer rows would prove nothing
    families = exposed(busy_metrics())
    for name, (kind, labels) in expected.items():
        assert name in families, name
        exposed_kind, samples = families[name]
        assert exposed_kind == kind, name
        for sample in samples:
            if sample.name.endswith("_created"):
                continue
            assert set(sample.labels) - {"le"} == labels, (name, sample)
    # Nothing beyond the contract, apart from prometheus_client's `*_created` timestamps.
    assert {n for n in families if n.startswith("sqlgate_") and not n.endswith("_created")} == set(expected)


def test_latency_buckets_resolve_the_targets_and_alert_thresholds() -> None:
    _, samples = exposed(busy_metrics())["sqlgate_request_duration_seconds"]
    bounds = {float(s.labels["le"]) for s in samples if s.name.endswith("_bucket")}
    assert {0.5, 0.8, 2.0, 3.0} <= bounds
    assert min(bounds) == 0.005 and max(b for b in bounds if not math.isinf(b)) == 30.0


def test_helpers_count_what_they_say() -> None:
    metrics = busy_metrics()
    metrics.add_tokens(3, 200)
    metrics.cache(hit=True)
    assert sample_value(metrics, "sqlgate_requests_total", route="completions", status="502") == 1
    assert sample_value(metrics, "sqlgate_prompt_tokens_total") == 60
    assert sample_value(metrics, "sqlgate_completion_tokens_total") == 209
    assert sample_value(metrics, "sqlgate_completion_tokens_count") == 2
    assert sample_value(metrics, "sqlgate_completion_tokens_bucket", le="16.0") == 1
    assert sample_value(metrics, "sqlgate_cache_requests_total", result="hit") == 1
    assert sample_value(metrics, "sqlgate_upstream_retries_total") == 1
    assert sample_value(metrics, "sqlgate_upstream_ready") == 1
    metrics.set_ready(False)
    assert sample_value(metrics, "sqlgate_upstream_ready") == 0


def test_two_apps_in_one_process_keep_separate_registries() -> None:
    first, second = Metrics(), Metrics()
    first.retry()
    assert first.registry is not second.registry
    assert sample_value(first, "sqlgate_upstream_retries_total") == 1
    assert sample_value(second, "sqlgate_upstream_retries_total") == 0


def test_readiness_is_unknown_until_the_first_probe() -> None:
    assert math.isnan(sample_value(Metrics(), "sqlgate_upstream_ready"))


def test_fixed_label_sets_start_at_zero_and_stay_bounded() -> None:
    metrics = Metrics()
    for result in ("hit", "miss"):
        assert sample_value(metrics, "sqlgate_cache_requests_total", result=result) == 0
    for outcome in ("valid", "unsafe_sql", "invalid_sql", "ungrounded_sql", "unverifiable_sql", "expensive_sql"):
        assert sample_value(metrics, "sqlgate_sql_checks_total", outcome=outcome) == 0
    metrics.rejected("Bearer sk-live-123")  # whatever a caller passes, it can't become a label value
    metrics.sql_check("something new")
    metrics.error("sql", "Bearer sk-live-123")
    assert sample_value(metrics, "sqlgate_rejected_requests_total", reason="other") == 1
    assert sample_value(metrics, "sqlgate_errors_total", route="sql", code="other") == 1
    assert sample_value(metrics, "sqlgate_sql_checks_total", outcome="other") == 1
    assert b"sk-live-123" not in metrics.render()[0]


def test_in_flight_goes_up_and_back_down() -> None:
    metrics = Metrics()
    metrics.in_flight_inc()
    assert sample_value(metrics, "sqlgate_requests_in_flight") == 1
    metrics.in_flight_dec()
    assert sample_value(metrics, "sqlgate_requests_in_flight") == 0


def test_promtool_accepts_the_exposition() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: apt-get install prometheus (.ci/run installs it)")
    body, _ = busy_metrics().render()
    done = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
