"""The Grafana dashboard (deploy/grafana/dashboards/sqlgate.json): its shape and provisioning, and every panel's
PromQL evaluated by a real Prometheus that scraped a real `python -m gateway` run (tests/monitoring.py). The
vLLM panels are evaluated against the real vLLM in tests/e2e/test_dashboard_e2e.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.monitoring import DASHBOARD, PanelQuery, Prometheus, dashboard, panel_queries, scraped_stack
from tests.test_compose_consistency import SERVICES, published_container_ports, scrape_targets
from tests.test_metrics import contract_metrics

REPO = Path(__file__).resolve().parents[1]
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"
# What the issue asks the dashboard to show, and a metric each of those panels must read.
REQUIRED = {
    "request rate by route": "sqlgate_requests_total",
    "latency p50/p99 by route": "sqlgate_request_duration_seconds_bucket",
    "errors by code": "sqlgate_errors_total",
    "refusals": "sqlgate_sql_refusals_total",
    "repairs": "sqlgate_sql_repairs_total",
    "cache hits": "sqlgate_cache_requests_total",
    "candidate agreement": "sqlgate_sql_agreement_ratio_bucket",
    "vLLM queue": "vllm:num_requests_waiting",
    "vLLM running": "vllm:num_requests_running",
    "vLLM KV cache": "vllm:kv_cache_usage_perc",
    "vLLM prompt tokens": "vllm:prompt_tokens_total",
    "vLLM generated tokens": "vllm:generation_tokens_total",
    "business hours": "sqlgate_schedule_open",
    "model asleep": "sqlgate_model_asleep",
}


def gateway_queries() -> list[PanelQuery]:
    return [query for query in panel_queries() if all(name.startswith("sqlgate_") for name in query.metrics)]


def test_the_dashboard_is_one_json_file_with_panels_that_all_query_the_provisioned_prometheus() -> None:
    board = dashboard()
    assert board["uid"] == "sqlgate" and board["panels"]
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [(source["uid"], source["type"]) for source in datasources] == [("prometheus", "prometheus")]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        assert panel["targets"], panel["title"]
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"]), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"] and target["expr"].strip(), panel["title"]


def test_every_panel_the_issue_asks_for_is_there() -> None:
    read = {name for query in panel_queries() for name in query.metrics}
    missing = {what: metric for what, metric in REQUIRED.items() if metric not in read}
    assert not missing


def test_the_gateway_metrics_the_panels_read_are_the_contracts() -> None:
    contract = set(contract_metrics())
    for query in gateway_queries():
        for name in query.metrics:
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert name in contract or base in contract, (query.panel, name)


def test_compose_provisions_the_datasource_and_the_dashboard_next_to_prometheus() -> None:
    grafana = SERVICES["grafana"]
    volumes = grafana["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    assert "./deploy/grafana/dashboards:/etc/grafana/dashboards:ro" in volumes
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "sqlgate.yml").read_text())["providers"]
    assert [provider["options"]["path"] for provider in providers] == ["/etc/grafana/dashboards"]
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == (
        f"/etc/grafana/dashboards/{DASHBOARD.name}")
    # The data source's URL is the compose Prometheus, on a network Grafana shares with it.
    datasource = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["url"] == f"http://prometheus:{published_container_ports('prometheus')[0]}"
    assert set(grafana["networks"]) & set(SERVICES["prometheus"]["networks"])
    assert published_container_ports("grafana") == [3000]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    # Every job the vLLM panels need is scraped by the compose Prometheus.
    assert {"sqlgate", "vllm"} <= set(scrape_targets())


def problems(server: Prometheus, queries: list[PanelQuery]) -> list[str]:
    """Per query: an error, a warning, a metric the scraped targets do not export, or an empty result."""
    exported = server.metric_names()
    found = []
    for query in queries:
        where = f"{query.panel} [{query.ref_id}]"
        if missing := query.metrics - exported:
            found.append(f"{where}: not exported: {sorted(missing)}")
        if "$" in query.promql:
            found.append(f"{where}: a Grafana variable left unexpanded: {query.promql}")
            continue
        answer = server.query(query.promql)
        if answer["status"] != "success" or "warnings" in answer:
            found.append(f"{where}: {answer.get('error') or answer.get('warnings')}")
        elif not answer["data"]["result"]:
            found.append(f"{where}: empty: {query.promql}")
    return found


@pytest.mark.slow
def test_every_gateway_panel_query_evaluates_against_a_real_prometheus_that_scraped_a_real_gateway() -> None:
    queries = gateway_queries()
    assert len(queries) >= 20  # a filter that kept nothing would prove nothing
    with scraped_stack() as (server, _, _):
        assert problems(server, queries) == []
        # The traffic reached the panels: a refusal, a repair that won, an agreement, a cache hit, MCP, responses.
        assert server.scalar_or_empty('sum(sqlgate_sql_refusals_total{code="unsafe_sql"})') == 2
        assert server.scalar_or_empty('sum(sqlgate_sql_repairs_total{outcome="won"})') == 1
        assert server.scalar_or_empty("sum(sqlgate_sql_agreement_ratio_count)") == 1
        assert server.scalar_or_empty('sum(sqlgate_cache_requests_total{result="hit"})') == 1
        assert server.scalar_or_empty('sum(sqlgate_errors_total{code="invalid_api_key"})') == 1
        assert server.scalar_or_empty('sum(sqlgate_requests_total{route="mcp", status="422"})') == 1
        assert server.scalar_or_empty('sum(sqlgate_requests_total{route="responses", status="200"})') == 2
