"""`sqlgate bench` without a model: how the budget is shared, what is sent, how samples are summarised, and
runs against the real gateway whose upstream is down (every answer a 503) or against nothing at all."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clients.bench import (
    DEFAULT_GENERATION,
    BenchConfig,
    _shares,
    arrival_offsets,
    load_generation,
    load_prompts,
    request_body,
    run_bench,
    summarise_samples,
    write_report,
)
from clients.bench_prompts import BUILTIN_PROMPTS, Prompt
from clients.training_prompt import render_prompt
from tests.clients.conftest import GatewayFactory


@pytest.mark.parametrize(("requests", "concurrency", "processes"), [(10, 4, 3), (7, 7, 2), (1, 1, 1), (5, 3, 3)])
def test_processes_share_the_budget_and_the_concurrency(requests: int, concurrency: int, processes: int) -> None:
    shares = _shares(BenchConfig(requests=requests, concurrency=concurrency, processes=processes))
    assert sum(share.requests or 0 for share in shares) == requests
    assert sum(share.concurrency for share in shares) == concurrency
    assert max(s.concurrency for s in shares) - min(s.concurrency for s in shares) <= 1


def test_open_loop_schedule_interleaves_the_processes() -> None:
    """What the open loop decides, not when the OS ran it: 8 per second over two processes is one start every
    125 ms, alternating between them."""
    config = BenchConfig(requests=4, rate=8.0, processes=2)
    schedules = [list(arrival_offsets(config, share)) for share in _shares(config)]
    assert schedules == [[0.0, 0.25], [0.125, 0.375]]


def test_open_loop_schedule_stops_at_the_duration_and_poisson_keeps_the_mean_rate() -> None:
    bounded = BenchConfig(requests=None, duration_s=0.5, rate=20.0)
    assert len(list(arrival_offsets(bounded, _shares(bounded)[0]))) == 10
    poisson = BenchConfig(requests=2000, rate=10.0, arrivals="poisson", seed=7)
    offsets = list(arrival_offsets(poisson, _shares(poisson)[0]))
    assert offsets == sorted(offsets) and offsets[0] == 0.0
    assert 2000 / offsets[-1] == pytest.approx(10.0, rel=0.1)  # seeded: the same draws every run


def test_open_loop_rate_is_split_across_processes() -> None:
    shares = _shares(BenchConfig(requests=9, rate=6.0, processes=3))
    assert [share.rate for share in shares] == [2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"requests": None, "duration_s": None}, "bound"),
        ({"requests": 0}, "at least 1"),
        ({"duration_s": -1.0}, "positive"),
        ({"concurrency": 1, "processes": 2}, "per process"),
        ({"rate": 0.0}, "positive"),
        ({"prompts": ()}, "no prompts"),
    ],
)
def test_invalid_configurations_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(BenchConfig(), **overrides).validate()  # type: ignore[arg-type]


def test_gateway_requests_carry_question_and_schema() -> None:
    config = BenchConfig(target="gateway", model="m", stream=True)
    body = request_body(config, len(BUILTIN_PROMPTS) + 1)  # wraps around the prompt list
    assert body == {"prompt": BUILTIN_PROMPTS[1].question, "schema": BUILTIN_PROMPTS[1].schema, "model": "m",
                    "stream": True, "stream_options": {"include_usage": True}}


def test_vllm_requests_carry_the_training_prompt_and_greedy_parameters() -> None:
    config = BenchConfig(target="vllm", vllm_model="served", max_tokens=16, ignore_eos=True)
    body = request_body(config, 0)
    prompt = BUILTIN_PROMPTS[0]
    assert body["prompt"] == render_prompt(prompt.question, prompt.schema)
    assert body["model"] == "served" and body["max_tokens"] == 16 and body["ignore_eos"] is True
    assert {key: body[key] for key in DEFAULT_GENERATION if key != "max_tokens"} == {
        key: value for key, value in DEFAULT_GENERATION.items() if key != "max_tokens"}
    assert "stream" not in body


def test_unique_prompts_differ_per_request_and_match_across_targets() -> None:
    gateway = BenchConfig(target="gateway", unique_prompts=True)
    vllm = replace(gateway, target="vllm")
    first, second = request_body(gateway, 0), request_body(gateway, len(BUILTIN_PROMPTS))
    assert first["prompt"] != second["prompt"] and first["schema"] == second["schema"]
    assert request_body(vllm, 0)["prompt"] == render_prompt(first["prompt"], first["schema"])


def test_generation_config_file_overrides_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "generation.toml"
    path.write_text("max_tokens = 64\ntemperature = 0.0\n", encoding="utf-8")
    generation = load_generation(path)
    assert generation["max_tokens"] == 64 and generation["stop"] == DEFAULT_GENERATION["stop"]


def test_gateway_generation_file_matches_the_bench_defaults() -> None:
    # vLLM called directly must do the same work as behind the gateway.
    assert load_generation(Path("gateway/generation.toml")) == DEFAULT_GENERATION


def test_prompts_file_accepts_schema_or_context(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"question": "q1", "schema": "s1"}\n\n{"question": "q2", "context": "s2", "answer": "x"}\n')
    assert load_prompts(path) == (Prompt("q1", "s1"), Prompt("q2", "s2"))
    path.write_text('{"question": "q1"}\n')
    with pytest.raises(ValueError, match=":1: expected"):
        load_prompts(path)


def test_summary_of_samples() -> None:
    latencies = [100.0, 200.0, 300.0, 400.0]
    raw: list[tuple[Any, ...]] = [(10.0 + i, lat, lat / 2, 200, None, 5, "miss") for i, lat in enumerate(latencies)]
    raw += [(15.0, 50.0, None, 429, "rate_limit_exceeded", None, None)]
    raw += [(15.5, 20.0, None, 0, "connect_error", None, None)]
    raw += [(16.0, 80.0, 30.0, 200, "stream_error:unsafe_sql", None, None)]
    summary = summarise_samples(raw, stream=True)
    assert summary["requests"] == 7 and summary["ok"] == 4 and summary["errors"] == 3
    assert summary["by_status"] == {"200": 4, "429 rate_limit_exceeded": 1, "connect_error": 1,
                                    "stream_error:unsafe_sql": 1}
    assert summary["latency_ms"]["p50"] == pytest.approx(float(np.percentile(latencies, 50)))
    assert summary["latency_ms"]["p99"] == pytest.approx(float(np.percentile(latencies, 99)))
    assert summary["ttft_ms"]["max"] == 200.0
    # from the first start (10.0) to the last end (16.0 + 0.08)
    assert summary["duration_s"] == pytest.approx(6.08)
    assert summary["req_per_s"] == pytest.approx(4 / 6.08, rel=1e-3)
    assert summary["samples"][0][0] == 0.0


def test_nothing_listening_counts_every_request_as_a_connect_error(closed_port_url: str, tmp_path: Path) -> None:
    config = BenchConfig(gateway_url=closed_port_url, requests=5, concurrency=2, timeout_s=5)
    report = run_bench(config)
    target = report["targets"]["gateway"]
    assert target["requests"] == 5 and target["ok"] == 0
    assert target["by_status"] == {"connect_error": 5}
    chart = write_report(report, tmp_path / "bench.json")
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert json.loads((tmp_path / "bench.json").read_text())["config"]["requests"] == 5


@pytest.mark.parametrize("processes", [1, 2])
def test_closed_loop_against_the_gateway_with_its_upstream_down(
    serve_gateway: GatewayFactory, closed_port_url: str, api_key: str, processes: int
) -> None:
    with serve_gateway(upstream_url=closed_port_url, upstream_retry_attempts=1) as gateway_url:
        config = BenchConfig(gateway_url=gateway_url, api_key=api_key, requests=6, concurrency=2,
                             processes=processes, timeout_s=10)
        target = run_bench(config)["targets"]["gateway"]
    assert target["requests"] == 6
    assert target["by_status"] == {"503 upstream_unavailable": 6}
    assert {sample[3] for sample in target["samples"]} == {503}


def test_the_api_key_stays_out_of_the_report(closed_port_url: str) -> None:
    report = run_bench(BenchConfig(gateway_url=closed_port_url, api_key="sk-secret-value", requests=1))
    assert "sk-secret-value" not in json.dumps(report)


def test_open_loop_stops_at_the_duration(serve_gateway: GatewayFactory, closed_port_url: str, api_key: str) -> None:
    with serve_gateway(upstream_url=closed_port_url, upstream_retry_attempts=1, rate_limit_per_minute=3) as url:
        config = BenchConfig(gateway_url=url, api_key=api_key, requests=None, duration_s=0.5, rate=20.0,
                             processes=2, timeout_s=10)
        target = run_bench(config)["targets"]["gateway"]
    # 20 req/s for 0.5 s: 10 arrivals (uniform spacing, the processes interleaved), none after the deadline.
    assert target["requests"] == 10
    # Each process keeps its own deadline; their clocks start together at a barrier, a few ms apart at most.
    assert max(sample[0] for sample in target["samples"]) < 0.5 + 0.04
    # the rate limit (3 a minute) answers everything after the first three
    assert target["by_status"] == {"503 upstream_unavailable": 3, "429 rate_limit_exceeded": 7}
