"""A real monitoring stack for the dashboard's tests and its screenshot (tests/dashboard_screenshot.py):
`python -m gateway` as a process in front of the fake upstream, traffic through it (every route, refusals, a
repair, a cache hit, MCP), and a real Prometheus (Debian's binary) on 127.0.0.1 scraping it, and optionally a real
vLLM, every second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import orjson
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests import faults
from tests.servers import FakeUpstream, fake_upstream, free_port, wait_for

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "sqlgate.json"
API_KEY = "sk-sqlgate-dashboard-0123456789"
SCHEMA = "CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text)"
# Grafana's interval variables, as Grafana would expand them for a 1 s scrape interval over a short range.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
METRIC_NAME = re.compile(r"\b(sqlgate_[a-z0-9_]+|vllm:[a-z0-9_:]+)\b")
STARTUP_DEADLINE_S = 60.0


# ---- the dashboard's queries -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref_id: str
    expr: str  # as written in the dashboard

    @property
    def promql(self) -> str:
        """The query Grafana sends to Prometheus: its interval variables expanded."""
        text = self.expr
        for name, value in GRAFANA_VARIABLES.items():
            text = text.replace(name, value)
        return text

    @property
    def metrics(self) -> set[str]:
        return set(METRIC_NAME.findall(self.expr))


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panel_queries() -> list[PanelQuery]:
    return [PanelQuery(panel["title"], target["refId"], target["expr"])
            for panel in dashboard()["panels"] if panel.get("type") != "row" for target in panel["targets"]]


# ---- Prometheus --------------------------------------------------------------------------------------------------

@dataclass
class Prometheus:
    url: str

    def query(self, promql: str) -> dict[str, Any]:
        """The whole API answer of an instant query (`status`, `data`, and `warnings` or `error` if any)."""
        answer: dict[str, Any] = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=30).json()
        return answer

    def scalar_or_empty(self, promql: str) -> float | None:
        result = self.query(promql)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def metric_names(self) -> set[str]:
        names: list[str] = httpx.get(f"{self.url}/api/v1/label/__name__/values", timeout=30).json()["data"]
        return set(names)


@contextlib.contextmanager
def prometheus(jobs: dict[str, str]) -> Iterator[Prometheus]:
    """Debian's `prometheus` on a free loopback port scraping `jobs` (`name -> host:port`) every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is not installed: apt-get install prometheus (launch/system_deps.sh)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sqlgate-prometheus-") as scratch:
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}
                                     for job, target in jobs.items()]}
        config_path = Path(scratch) / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        with open(Path(scratch) / "prometheus.log", "wb") as log:
            process = subprocess.Popen(
                [binary, f"--config.file={config_path}", f"--storage.tsdb.path={scratch}/data",
                 f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
            try:
                server = Prometheus(f"http://127.0.0.1:{port}")
                wait_for(lambda: _answers(f"{server.url}/-/ready") or process.poll() is not None, "prometheus",
                         STARTUP_DEADLINE_S)
                if process.poll() is not None:
                    raise RuntimeError("prometheus exited: " + (Path(scratch) / "prometheus.log").read_text()[-2000:])
                yield server
            finally:
                process.terminate()
                process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_scraped(server: Prometheus, jobs: list[str], gateway_requests: float) -> None:
    """Until every job has two samples in the rate window (rate() has something to say) and Prometheus has the
    gateway's request count as it stood after the traffic."""
    def ready() -> bool:
        for job in jobs:
            if (server.scalar_or_empty(f'min(count_over_time(up{{job="{job}"}}[1m]))') or 0) < 2:
                return False
        seen = server.scalar_or_empty('sum(sqlgate_requests_total{route!="metrics"})')
        return seen == gateway_requests

    wait_for(ready, "prometheus to scrape the traffic", STARTUP_DEADLINE_S)


# ---- the gateway as a process, in front of a scripted upstream ------------------------------------------------

def scripted(upstream: FakeUpstream) -> faults.Fault:
    """Answers by what the prompt asks: a DELETE for "delete", broken SQL for "broken" (the candidates' call, `n`
    > 1, then answers valid SQL: a repair that wins), else a count; streamed when asked to stream."""
    async def fault(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        payload = orjson.loads(upstream.requests[-1] or b"{}")
        prompt = str(payload.get("prompt", "")).lower()
        text = ("DELETE FROM singer" if "delete" in prompt
                else "SELECT Name, FROM singer" if "broken" in prompt else "SELECT count(*) FROM singer")
        n = int(payload.get("n") or 1)
        if n > 1:
            answer = faults.candidates(["SELECT Name FROM singer"] * (n - 1) + ["SELECT Country FROM singer"])
        elif payload.get("stream"):
            answer = faults.stream(faults.sse_frames([text[:7], text[7:]]))
        else:
            answer = faults.ok(text)
        result: bool = await answer(reader, writer)
        return result
    return fault


@dataclass
class Gateway:
    base_url: str
    port: int


@contextlib.contextmanager
def gateway_process(upstream_url: str, **env: str) -> Iterator[Gateway]:
    """`python -m gateway` (the production entry point) on a free loopback port."""
    port = free_port()
    environment = {**os.environ, "SQLGATE_UPSTREAM_URL": upstream_url, "SQLGATE_PORT": str(port),
                   "SQLGATE_HOST": "127.0.0.1", "SQLGATE_API_KEYS": f"dashboard={API_KEY}",
                   "SQLGATE_RATE_LIMIT_PER_MINUTE": "1000",
                   "SQLGATE_SQL_CANDIDATES": "2", "SQLGATE_SQL_CANDIDATE_STRATEGY": "sample",
                   "SQLGATE_LOG_LEVEL": "warning", **env}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=REPO, env=environment, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_for(lambda: _answers(f"{base_url}/health") or process.poll() is not None, "the gateway",
                     STARTUP_DEADLINE_S)
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError("the gateway exited: " + log.read().decode(errors="replace")[-2000:])
            yield Gateway(base_url, port)
        finally:
            process.terminate()
            process.wait(timeout=30)


def drive_traffic(gateway: Gateway) -> None:
    """Every generating route, plain and streamed, a cache hit, a refusal, a repair, MCP, and refusals before the
    model (a bad key, a question over the cap)."""
    auth = {"authorization": f"Bearer {API_KEY}"}
    question = {"question": "How many singers do we have?", "schema": SCHEMA}
    with httpx.Client(base_url=gateway.base_url, headers=auth, timeout=30) as http:
        for _ in range(2):  # the second is a cache hit
            http.post("/v1/sql", json=question).raise_for_status()
        assert http.post("/v1/sql", json={**question, "question": "Delete every singer"}).status_code == 422
        http.post("/v1/sql", json={**question, "question": "A broken one, please"}).raise_for_status()
        assert http.post("/v1/sql", json={**question, "question": "x" * 501}).status_code == 422
        assert http.get("/v1/models", headers={"authorization": "Bearer sk-not-a-key-000000000"}).status_code == 401
    with openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=API_KEY, max_retries=0) as client:
        extra = {"schema": SCHEMA}
        client.completions.create(model="qwen2.5-1.5b-sql", prompt="Name the singers", extra_body=extra)
        for _ in client.chat.completions.create(model="qwen2.5-1.5b-sql", stream=True, extra_body=extra,
                                                messages=[{"role": "user", "content": "Count singers"}]):
            pass
        client.responses.create(model="qwen2.5-1.5b-sql", input="Which countries?", extra_body=extra)
        with client.responses.stream(model="qwen2.5-1.5b-sql", input="Which songs?", extra_body=extra) as stream:
            stream.get_final_response()
    asyncio.run(_mcp_traffic(gateway))


async def _mcp_traffic(gateway: Gateway) -> None:
    async with httpx2.AsyncClient(headers={"authorization": f"Bearer {API_KEY}"}) as http, Client(
        streamable_http_client(f"{gateway.base_url}/mcp", http_client=http)
    ) as client:
        await client.call_tool("generate_sql", {"question": "How many singers are from NL?", "schema": SCHEMA})
        await client.call_tool("generate_sql", {"question": "Delete them all", "schema": SCHEMA})


def gateway_request_count(gateway: Gateway) -> float:
    """`sum(sqlgate_requests_total)` without the scrapes, read from the gateway itself."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{gateway.base_url}/metrics", timeout=30).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "sqlgate_requests_total" and sample.labels.get("route") != "metrics")


def host_port(url: str) -> str:
    return url.removeprefix("http://").rstrip("/")


@contextlib.contextmanager
def scraped_stack(vllm_url: str | None = None, rounds: int = 1) -> Iterator[tuple[Prometheus, Gateway, list[str]]]:
    """The gateway (scripted upstream) and Prometheus scraping it (and vLLM, if given) while `rounds` of traffic
    go through it, each a few scrapes apart; yielded once Prometheus has it all."""
    with fake_upstream() as upstream:
        upstream.faults = [scripted(upstream)]
        with gateway_process(upstream.base_url) as gateway:
            jobs = {"sqlgate": host_port(gateway.base_url)}
            if vllm_url is not None:
                jobs["vllm"] = host_port(vllm_url)
            with prometheus(jobs) as server:
                for round_ in range(rounds):
                    if round_:
                        wait_for_scrapes(server, 3)
                    drive_traffic(gateway)
                    if vllm_url is not None:
                        _vllm_traffic(vllm_url)
                wait_until_scraped(server, list(jobs), gateway_request_count(gateway))
                yield server, gateway, list(jobs)


def wait_for_scrapes(server: Prometheus, count: int) -> None:
    """Until Prometheus has scraped the gateway `count` more times."""
    def scrapes() -> float:
        return server.scalar_or_empty('count_over_time(up{job="sqlgate"}[1h])') or 0.0

    start = scrapes()
    wait_for(lambda: scrapes() >= start + count, "more scrapes", STARTUP_DEADLINE_S)


def _vllm_traffic(vllm_url: str) -> None:
    model = httpx.get(f"{vllm_url}/v1/models", timeout=30).json()["data"][0]["id"]
    httpx.post(f"{vllm_url}/v1/completions", json={"model": model, "prompt": "SELECT", "max_tokens": 8},
               timeout=120).raise_for_status()
