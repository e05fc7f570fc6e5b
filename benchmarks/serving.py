"""One serving measurement cell (a closed loop at one concurrency, to vLLM directly or through the gateway) with
clients/bench.py, plus what vLLM itself counted meanwhile (its /metrics), shared by the CPU and GPU benchmarks.

Same work on both paths: the same questions and schemas (a per-cell tag in the question keeps vLLM's prefix cache
from reusing one path's prompts for the other), the same sampling fields, exactly `output_tokens` tokens
(`ignore_eos` + `max_tokens`: sent by the client on the direct path, added by benchmarks/bench_gateway.py on the
gateway's upstream call, with `max_tokens` from a bench generation config).
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from benchmarks.prompts import BENCH_PROMPTS
from benchmarks.results import latency_ms, ratio, serving_summary
from clients.bench import DEFAULT_GENERATION, BenchConfig, run_bench
from clients.bench_prompts import Prompt
from launch.vllm_server import DEFAULT_SERVED_MODEL_NAME

ServingPath = Literal["direct", "gateway"]
VLLM_COUNTERS = {
    "generation_tokens": "vllm:generation_tokens_total",
    "prompt_tokens": "vllm:prompt_tokens_total",
    "request_success": "vllm:request_success_total",
    "preemptions": "vllm:num_preemptions_total",
    "prefix_cache_queries": "vllm:prefix_cache_queries_total",
    "prefix_cache_hits": "vllm:prefix_cache_hits_total",
    # Present only when vLLM speculates (--speculative-config); benchmarks/gpu_speculative.py reads them.
    "spec_drafts": "vllm:spec_decode_num_drafts_total",
    "spec_draft_tokens": "vllm:spec_decode_num_draft_tokens_total",
    "spec_accepted_tokens": "vllm:spec_decode_num_accepted_tokens_total",
}
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.eE+-]+|NaN)$")


@dataclass(frozen=True)
class Cell:
    concurrency: int
    requests: int
    processes: int = 1


def read_vllm_counters(vllm_url: str, timeout_s: float = 10.0) -> dict[str, float]:
    """Totals of the vLLM counters above (summed over label sets); missing ones are absent."""
    with urllib.request.urlopen(f"{vllm_url}/metrics", timeout=timeout_s) as response:
        text = response.read().decode("utf-8", errors="replace")
    wanted = {metric: key for key, metric in VLLM_COUNTERS.items()}
    totals: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match and match.group(1) in wanted:
            key = wanted[match.group(1)]
            totals[key] = totals.get(key, 0.0) + float(match.group(3))
    return totals


def tagged_prompts(tag: str, base: Sequence[Prompt] | None = None) -> tuple[Prompt, ...]:
    """`base` (default: the benchmark prompts) with `tag` appended to each question."""
    prompts = base if base is not None else tuple(prompt.as_client_prompt() for prompt in BENCH_PROMPTS)
    return tuple(Prompt(f"{prompt.question} [{tag}]", prompt.schema) for prompt in prompts)


def serving_gateway_env(vllm_url: str, generation_file: Path, api_key: str, *, read_timeout_s: float | None = None
                        ) -> dict[str, str]:
    """The environment of the gateway that serving benchmarks put in front of vLLM: production settings except
    one bench key, a rate limit too high to bite, no cache (every request generates), no background readiness
    probes (their tokens would blur vLLM's per-request counts) and the exact-length bench generation config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLGATE_")}
    env.update({
        "SQLGATE_UPSTREAM_URL": vllm_url,
        "SQLGATE_UPSTREAM_MODEL": DEFAULT_SERVED_MODEL_NAME,
        "SQLGATE_API_KEYS": f"bench={api_key}",
        "SQLGATE_RATE_LIMIT_PER_MINUTE": "100000000",
        "SQLGATE_CACHE_ENABLED": "false",
        "SQLGATE_READY_INTERVAL_S": "0",
        # CONTRACTS.md: serving benchmarks run with the SQL candidate step off (random weights fail every check).
        "SQLGATE_SQL_CANDIDATES": "0",
        "SQLGATE_GENERATION_CONFIG": str(generation_file),
        "BENCH_IGNORE_EOS": "1",
        "PYTHONUNBUFFERED": "1",
    })
    if read_timeout_s is not None:
        env["SQLGATE_UPSTREAM_READ_TIMEOUT_S"] = f"{read_timeout_s:g}"
    return env


def generation_toml(output_tokens: int, path: Path) -> Path:
    """The gateway's generation.toml values with `max_tokens` = `output_tokens` (bench-only file)."""
    values = {**DEFAULT_GENERATION, "max_tokens": output_tokens}
    lines = [f"{key} = {_toml_value(value)}" for key, value in values.items() if value is not None]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return repr(value)


def gateway_log_rows(log_path: Path, start: int, end: int | None = None) -> list[tuple[float, float]]:
    """(latency s, upstream s) of each completions request the gateway logged between two file offsets."""
    try:
        with log_path.open("rb") as log:
            log.seek(start)
            raw = log.read() if end is None else log.read(max(0, end - start))
    except OSError:
        return []
    rows = []
    for line in raw.splitlines():
        if not line.startswith(b"{"):
            continue
        try:
            fields = json.loads(line)
        except ValueError:
            continue
        if fields.get("route") == "completions" and fields.get("upstream_ms") is not None:
            rows.append((fields["latency_ms"] / 1000, fields["upstream_ms"] / 1000))
    return rows


def gateway_time_split(rows: Sequence[tuple[float, float]]) -> dict[str, Any] | None:
    """How much of each request's latency was vLLM's (`upstream_ms`) and how much the gateway's own (the rest)."""
    if not rows:
        return None
    return {"requests": len(rows), "latency_ms": latency_ms(total for total, _ in rows),
            "upstream_ms": latency_ms(upstream for _, upstream in rows),
            "gateway_own_ms": latency_ms(total - upstream for total, upstream in rows)}


@dataclass
class _PathParts:
    """What one path's parts of a cell produced, to be summarised as one."""

    samples: list[Any] = field(default_factory=list)
    walls_s: list[float] = field(default_factory=list)
    counted: dict[str, float] = field(default_factory=dict)
    log_rows: list[tuple[float, float]] = field(default_factory=list)


def run_cell(path: ServingPath, cell: Cell, **common: Any) -> dict[str, Any]:
    """One path, one cell, in one go (see `run_interleaved` for the comparison of two paths)."""
    return run_interleaved((path,), cell, rounds=1, **common)[path]


def run_interleaved(paths: Sequence[ServingPath], cell: Cell, *, rounds: int, vllm_url: str, vllm_model: str,
                    output_tokens: int, gateway_url: str = "", gateway_log: Path | None = None,
                    api_key: str | None = None, timeout_s: float = 300.0, base_prompts: Sequence[Prompt] | None = None,
                    ignore_eos: bool = True) -> dict[str, dict[str, Any]]:
    """Each path's share of the cell, split into `rounds` parts run in ABBA order (direct, gateway, gateway,
    direct, ...), so that a host whose speed drifts during the run slows both paths alike. Per path: the summary
    of all its parts, with vLLM's own token and request counts over them (and, through the gateway, the gateway's
    own split of the latency, from its request log). `base_prompts` and `ignore_eos=False` let a real model
    answer real questions at its own length (benchmarks/gpu_speculative.py)."""
    part = Cell(cell.concurrency, max(cell.concurrency, cell.requests // rounds), cell.processes)
    order = [path for number in range(rounds) for path in (paths if number % 2 == 0 else paths[::-1])]
    parts = {path: _PathParts() for path in paths}
    for path in order:
        target: Literal["gateway", "vllm"] = "gateway" if path == "gateway" else "vllm"
        config = BenchConfig(
            target=target, gateway_url=gateway_url or "http://127.0.0.1:9", api_key=api_key, vllm_url=vllm_url,
            vllm_model=vllm_model, requests=part.requests, concurrency=part.concurrency, processes=part.processes,
            # A tag per path and part: no request repeats another's whole prompt (vLLM's prefix cache would skip
            # its prefill); the schemas, at the front, are shared as they are in real use.
            prompts=tagged_prompts(f"{path[0]}{cell.concurrency}.{len(parts[path].walls_s)}", base_prompts),
            unique_prompts=True, max_tokens=output_tokens, ignore_eos=ignore_eos, timeout_s=timeout_s,
        )
        before = read_vllm_counters(vllm_url)
        log_offset = gateway_log.stat().st_size if gateway_log is not None and path == "gateway" else None
        samples = run_bench(config)["targets"][target]["samples"]
        after = read_vllm_counters(vllm_url)
        collected = parts[path]
        collected.samples.extend(samples)
        collected.walls_s.append(serving_summary(samples)["wall_s"])
        for key in after:
            collected.counted[key] = round(collected.counted.get(key, 0.0) + after[key] - before.get(key, 0.0), 1)
        if gateway_log is not None and log_offset is not None:
            collected.log_rows.extend(gateway_log_rows(gateway_log, log_offset))
    summaries = {}
    for path, collected in parts.items():
        summary = serving_summary(collected.samples)
        wall = sum(collected.walls_s)
        summary["wall_s"] = round(wall, 3)
        summary["req_per_s"] = round(summary["completed"] / wall, 3) if wall > 0 else None
        summary["parts"] = len(collected.walls_s)
        summary["vllm_counted"] = collected.counted
        summary["generated_tokens_per_request"] = ratio(collected.counted.get("generation_tokens"),
                                                        collected.counted.get("request_success"), 2)
        summary["client_processes"] = cell.processes
        if gateway_log is not None and path == "gateway":
            summary["gateway_log_split"] = gateway_time_split(collected.log_rows)
        summaries[path] = summary
    return summaries


def compare_paths(gateway: dict[str, Any], direct: dict[str, Any]) -> dict[str, Any]:
    """Gateway versus direct for one concurrency: latency ratios and differences, throughput kept."""
    g, d = gateway["latency_ms"], direct["latency_ms"]
    return {
        "latency_p50_ratio": ratio(g["p50"], d["p50"]),
        "latency_p99_ratio": ratio(g["p99"], d["p99"]),
        "added_p50_ms": round(g["p50"] - d["p50"], 3) if g["p50"] is not None and d["p50"] is not None else None,
        "added_p99_ms": round(g["p99"] - d["p99"], 3) if g["p99"] is not None and d["p99"] is not None else None,
        "gateway_share_of_p50": ratio(g["p50"] - d["p50"], g["p50"]) if g["p50"] and d["p50"] is not None else None,
        "throughput_kept": ratio(gateway["req_per_s"], direct["req_per_s"]),
    }
