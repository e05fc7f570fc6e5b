"""`sqlgate bench`: a load generator for the gateway and, with the same prompts, for vLLM directly.

Usable as a library: `run_bench(BenchConfig(...)) -> dict` and `write_report(report, path)`.

A run is bounded by `requests` and `duration_s`, whichever comes first (no request starts after the duration;
requests in flight then finish within `timeout_s`). Closed loop: `concurrency` workers, each sending its next
request when the last one is answered. Open loop: requests start at `rate` per second (uniform or Poisson
arrivals) whatever the answers do. `processes` > 1 forks client processes, each with one asyncio loop and one
`httpx.AsyncClient`, sharing the concurrency, the rate and the request budget; their samples are merged.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import queue
import random
import time
import tomllib
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import httpx

from clients.bench_prompts import BUILTIN_PROMPTS, Prompt
from clients.connection import DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_TIMEOUT_S, gateway_root
from clients.stats import summarise
from clients.training_prompt import render_prompt

Target = Literal["gateway", "vllm"]
DEFAULT_VLLM_URL = "http://127.0.0.1:8001"
# Greedy decoding as the model was evaluated (FACTS.md), the values of the gateway's generation.toml, so vLLM
# called directly does the same work as vLLM behind the gateway. `--generation-config` reads another file.
DEFAULT_GENERATION: dict[str, Any] = {
    "temperature": 0.0,
    "top_p": 1.0,
    "top_k": -1,
    "repetition_penalty": 1.0,
    "max_tokens": 256,
    "stop": ["<|im_end|>"],
    "seed": 0,
}
RATIO_KEYS = ("p50", "p90", "p95", "p99", "max", "mean")

# One sample per request: start (s after the run began), latency ms, TTFT ms or None, HTTP status (0 when no
# response), error kind or None, completion tokens or None, gateway cache header or None.
Sample = tuple[float, float, float | None, int, str | None, int | None, str | None]


@dataclass(frozen=True)
class BenchConfig:
    target: Target = "gateway"
    gateway_url: str = DEFAULT_BASE_URL
    api_key: str | None = None
    model: str | None = None  # gateway model id; None sends none (the gateway uses its own)
    vllm_url: str = DEFAULT_VLLM_URL
    vllm_api_key: str | None = None
    vllm_model: str | None = None  # None: the first id vLLM lists at /v1/models
    requests: int | None = 100
    duration_s: float | None = None
    concurrency: int = 1
    rate: float | None = None  # requests per second: open loop; None: closed loop
    arrivals: Literal["uniform", "poisson"] = "uniform"
    processes: int = 1
    stream: bool = False
    prompts: tuple[Prompt, ...] = BUILTIN_PROMPTS
    unique_prompts: bool = False
    max_tokens: int | None = None  # vLLM target only
    ignore_eos: bool = False  # vLLM target only
    generation: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_GENERATION))
    timeout_s: float = DEFAULT_TIMEOUT_S
    compare: bool = False
    seed: int = 0

    def validate(self) -> None:
        if self.requests is None and self.duration_s is None:
            raise ValueError("a run needs a bound: give requests, duration_s or both")
        if self.requests is not None and self.requests < 1:
            raise ValueError("requests must be at least 1")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError("duration must be positive")
        if self.processes < 1 or self.concurrency < 1:
            raise ValueError("processes and concurrency must be at least 1")
        if self.rate is None and self.concurrency < self.processes:
            raise ValueError("closed loop needs at least one concurrent request per process")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")
        if not self.prompts:
            raise ValueError("no prompts to send")


def load_prompts(path: Path) -> tuple[Prompt, ...]:
    """JSONL rows with `question` and `schema` (or `context`, as in sql-create-context)."""
    prompts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON: {exc.msg}") from exc
        schema = record.get("schema", record.get("context")) if isinstance(record, dict) else None
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("question"), str)
            or not isinstance(schema, str)
        ):
            raise ValueError(
                f"{path}:{number}: expected an object with `question` and `schema` (or `context`)"
            )
        prompts.append(Prompt(record["question"], schema))
    if not prompts:
        raise ValueError(f"{path} holds no prompts")
    return tuple(prompts)


def load_generation(path: Path) -> dict[str, Any]:
    """Generation parameters from a TOML file in the gateway's `generation.toml` format."""
    values = dict(DEFAULT_GENERATION)
    values.update(tomllib.loads(path.read_text(encoding="utf-8")))
    values.pop("candidates", None)  # the gateway's candidate step samples separately; the greedy call is the work
    return values


def discover_vllm_model(vllm_url: str, api_key: str | None, timeout_s: float) -> str:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    response = httpx.get(f"{gateway_root(vllm_url)}/v1/models", headers=headers, timeout=timeout_s)
    response.raise_for_status()
    return str(response.json()["data"][0]["id"])


# ----------------------------------------------------------------------------------------------------
# One client process


@dataclass(frozen=True)
class _Share:
    """What one process does: its index, its part of the budget, concurrency and rate."""

    index: int
    requests: int | None
    concurrency: int
    rate: float | None


def _split(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def _shares(config: BenchConfig) -> list[_Share]:
    return [
        _Share(
            index=index,
            requests=None if config.requests is None else _split(config.requests, config.processes, index),
            concurrency=_split(config.concurrency, config.processes, index),
            rate=None if config.rate is None else config.rate / config.processes,
        )
        for index in range(config.processes)
    ]


def request_body(config: BenchConfig, number: int) -> dict[str, Any]:
    """The JSON body of request `number`: question + schema for the gateway, the training prompt for vLLM."""
    prompt = config.prompts[number % len(config.prompts)]
    question = f"{prompt.question} (request {number})" if config.unique_prompts else prompt.question
    body: dict[str, Any]
    if config.target == "gateway":
        body = {"prompt": question, "schema": prompt.schema}
        if config.model:
            body["model"] = config.model
    else:
        body = {"model": config.vllm_model, "prompt": render_prompt(question, prompt.schema), **config.generation}
        if config.max_tokens is not None:
            body["max_tokens"] = config.max_tokens
        if config.ignore_eos:
            body["ignore_eos"] = True
    if config.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


class _Requester:
    """Builds and sends one request to the chosen target and measures it."""

    def __init__(self, config: BenchConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client
        if config.target == "gateway":
            self.url = f"{gateway_root(config.gateway_url)}/v1/completions"
            self.headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        else:
            self.url = f"{gateway_root(config.vllm_url)}/v1/completions"
            self.headers = {"Authorization": f"Bearer {config.vllm_api_key}"} if config.vllm_api_key else {}

    async def send(
        self, number: int
    ) -> tuple[float, float, float | None, int, str | None, int | None, str | None]:
        """(absolute start, latency ms, ttft ms, status, error kind, completion tokens, cache header)."""
        body = request_body(self.config, number)
        started = time.monotonic()
        try:
            if self.config.stream:
                status, error, ttft, tokens, cache = await self._stream(body, started)
            else:
                status, error, ttft, tokens, cache = await self._plain(body)
        except httpx.TimeoutException:
            status, error, ttft, tokens, cache = 0, "timeout", None, None, None
        except httpx.ConnectError:
            status, error, ttft, tokens, cache = 0, "connect_error", None, None, None
        except (httpx.HTTPError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            status, error, ttft, tokens, cache = 0, f"protocol_error:{type(exc).__name__}", None, None, None
        latency_ms = (time.monotonic() - started) * 1000
        return started, latency_ms, ttft, status, error, tokens, cache

    async def _plain(
        self, body: dict[str, Any]
    ) -> tuple[int, str | None, float | None, int | None, str | None]:
        response = await self.client.post(self.url, json=body, headers=self.headers)
        cache = response.headers.get("x-sqlgate-cache")
        if response.status_code != 200:
            return response.status_code, _error_code(response), None, None, cache
        usage = response.json().get("usage") or {}
        tokens = usage.get("completion_tokens")
        return 200, None, None, int(tokens) if isinstance(tokens, int) else None, cache

    async def _stream(
        self, body: dict[str, Any], started: float
    ) -> tuple[int, str | None, float | None, int | None, str | None]:
        ttft: float | None = None
        tokens: int | None = None
        async with self.client.stream("POST", self.url, json=body, headers=self.headers) as response:
            cache = response.headers.get("x-sqlgate-cache")
            if response.status_code != 200:
                await response.aread()
                return response.status_code, _error_code(response), None, None, cache
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if "error" in event:
                    # An error after the first byte arrives in the stream (docs/contract.md).
                    code = event["error"].get("code") if isinstance(event["error"], dict) else None
                    return 200, f"stream_error:{code}", ttft, tokens, cache
                choices = event.get("choices") or []
                if ttft is None and choices and (choices[0].get("text") or ""):
                    ttft = (time.monotonic() - started) * 1000
                usage = event.get("usage")
                if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
                    tokens = usage["completion_tokens"]
        return 200, None, ttft, tokens, cache


def _error_code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    if isinstance(error, dict) and error.get("code") is not None:
        return str(error["code"])
    return None


async def _run_share(
    config: BenchConfig, share: _Share, ready: Callable[[], object] | None = None
) -> list[tuple[Any, ...]]:
    """One process's part of the run; returns raw samples with absolute start times.

    `ready` (the processes' start barrier) is called once the HTTP client exists: building it loads the TLS
    certificates, tens of milliseconds that must not count as the first request's schedule.
    """
    limits = httpx.Limits(
        max_connections=None if share.rate is not None else max(1, share.concurrency),
        max_keepalive_connections=max(1, share.concurrency),
    )
    timeout = httpx.Timeout(config.timeout_s, connect=DEFAULT_CONNECT_TIMEOUT_S)
    samples: list[tuple[Any, ...]] = []
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        requester = _Requester(config, client)
        if ready is not None:
            ready()  # blocks this process only, before any request is in flight
        began = time.monotonic()
        deadline = None if config.duration_s is None else began + config.duration_s
        if share.rate is None:
            counter = iter(range(share.requests) if share.requests is not None else _forever())

            async def worker() -> None:
                for local in counter:  # shared iterator: each request number goes to one worker
                    if deadline is not None and time.monotonic() >= deadline:
                        return
                    samples.append(await requester.send(local * config.processes + share.index))

            await asyncio.gather(*(worker() for _ in range(share.concurrency)))
        else:
            tasks: list[asyncio.Task[Any]] = []
            for local, offset in enumerate(arrival_offsets(config, share)):
                delay = began + offset - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(requester.send(local * config.processes + share.index)))
            samples.extend(await asyncio.gather(*tasks))
    return samples


def arrival_offsets(config: BenchConfig, share: _Share) -> Iterator[float]:
    """Open loop: when each of this process's requests is due, in seconds after the run began.

    The schedule the run follows, kept apart from the sending so tests assert on it rather than on when the OS
    happened to run a request. Stops at the process's request budget or the run's duration."""
    assert share.rate is not None
    rng = random.Random(config.seed * 1_000_003 + share.index)
    total_rate = share.rate * config.processes
    poisson_offset = 0.0
    local = 0
    while share.requests is None or local < share.requests:
        # Uniform arrivals are computed, not accumulated, so float error never adds a request.
        offset = (
            poisson_offset
            if config.arrivals == "poisson"
            else (share.index + local * config.processes) / total_rate  # processes interleaved
        )
        if config.duration_s is not None and offset >= config.duration_s:
            return
        yield offset
        local += 1
        poisson_offset += rng.expovariate(share.rate)


def _forever() -> Any:
    number = 0
    while True:
        yield number
        number += 1


def _child(config: BenchConfig, share: _Share, barrier: Any, results: Any) -> None:
    try:
        samples = asyncio.run(_run_share(config, share, ready=lambda: barrier.wait(timeout=60)))
        results.put((share.index, samples, None))
    except BaseException:  # the parent must hear about every way a child can die
        results.put((share.index, [], traceback.format_exc()))


def _worst_case_s(config: BenchConfig) -> float:
    """The longest a healthy run can take: its bound, one more request timeout, and a minute to start."""
    bounds = [math.inf if config.duration_s is None else config.duration_s]
    if config.requests is not None:
        if config.rate is None:
            bounds.append(config.timeout_s * math.ceil(config.requests / config.concurrency))
        else:
            bounds.append(config.requests / config.rate)
    return min(bounds) + config.timeout_s + 60


def _run_processes(config: BenchConfig) -> list[tuple[Any, ...]]:
    shares = _shares(config)
    if config.processes == 1:
        return asyncio.run(_run_share(config, shares[0]))
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(config.processes)
    results = context.Queue()
    children = [
        context.Process(target=_child, args=(config, share, barrier, results), daemon=True)
        for share in shares
    ]
    for child in children:
        child.start()
    merged: list[tuple[Any, ...]] = []
    errors: list[str] = []
    deadline = time.monotonic() + _worst_case_s(config)
    try:
        for _ in children:
            try:
                _, samples, error = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                errors.append("a client process did not report in time")
                break
            merged.extend(samples)
            if error:
                errors.append(error)
    finally:
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
                child.join()
    if errors:
        raise RuntimeError("bench client process failed:\n" + "\n".join(errors))
    return merged


# ----------------------------------------------------------------------------------------------------
# Reports


def summarise_samples(raw: Sequence[tuple[Any, ...]], *, stream: bool) -> dict[str, Any]:
    """Latency/TTFT percentiles, throughput and errors by status for one target's samples."""
    if not raw:
        return {
            "requests": 0,
            "ok": 0,
            "errors": 0,
            "error_rate": None,
            "by_status": {},
            "duration_s": 0.0,
            "req_per_s": None,
            "latency_ms": summarise([]),
            "samples": [],
        }
    first_start = min(sample[0] for sample in raw)
    last_end = max(sample[0] + sample[1] / 1000 for sample in raw)
    wall = max(last_end - first_start, 1e-9)
    samples: list[Sample] = sorted(
        (
            round(s[0] - first_start, 6),
            round(s[1], 3),
            None if s[2] is None else round(s[2], 3),
            s[3],
            s[4],
            s[5],
            s[6],
        )
        for s in raw
    )
    ok = [s for s in samples if s[3] == 200 and s[4] is None]
    by_status = Counter(_status_label(s) for s in samples)
    tokens = [s[5] for s in ok if s[5] is not None]
    report: dict[str, Any] = {
        "requests": len(samples),
        "ok": len(ok),
        "errors": len(samples) - len(ok),
        "error_rate": round((len(samples) - len(ok)) / len(samples), 6),
        "by_status": dict(sorted(by_status.items())),
        "duration_s": round(wall, 3),
        "req_per_s": round(len(ok) / wall, 4),
        "latency_ms": summarise(s[1] for s in ok),
        "completion_tokens": summarise(tokens) if tokens else None,
        "output_tokens_per_s": round(sum(tokens) / wall, 3) if tokens else None,
        "cache_hits": sum(1 for s in samples if s[6] == "hit"),
    }
    if stream:
        report["ttft_ms"] = summarise(s[2] for s in ok if s[2] is not None)
    report["samples"] = [list(s) for s in samples]
    return report


def _status_label(sample: Sample) -> str:
    if sample[4] is not None and sample[3] in (0, 200):
        return sample[4]
    if sample[3] != 200 and sample[4]:
        return f"{sample[3]} {sample[4]}"
    return str(sample[3])


def _ratios(gateway: dict[str, Any], vllm: dict[str, Any]) -> dict[str, Any]:
    def ratio(a: Any, b: Any) -> float | None:
        return round(a / b, 4) if isinstance(a, int | float) and isinstance(b, int | float) and b else None

    ratios: dict[str, Any] = {
        f"latency_{key}": ratio(gateway["latency_ms"].get(key), vllm["latency_ms"].get(key))
        for key in RATIO_KEYS
    }
    ratios["req_per_s"] = ratio(gateway.get("req_per_s"), vllm.get("req_per_s"))
    if "ttft_ms" in gateway and "ttft_ms" in vllm:
        for key in ("p50", "p99"):
            ratios[f"ttft_{key}"] = ratio(gateway["ttft_ms"].get(key), vllm["ttft_ms"].get(key))
    p50_gateway, p50_vllm = gateway["latency_ms"].get("p50"), vllm["latency_ms"].get("p50")
    ratios["overhead_p50_ms"] = (
        round(p50_gateway - p50_vllm, 3) if p50_gateway is not None and p50_vllm is not None else None
    )
    return ratios


def _public_config(config: BenchConfig) -> dict[str, Any]:
    public = asdict(config)
    public.pop("api_key")
    public.pop("vllm_api_key")
    public["prompts"] = len(config.prompts)
    return public


def run_bench(config: BenchConfig) -> dict[str, Any]:
    """Run the benchmark (both targets back to back with `compare`) and return the report."""
    config.validate()
    targets: list[Target] = ["gateway", "vllm"] if config.compare else [config.target]
    if "vllm" in targets and not config.vllm_model:
        config = replace(
            config, vllm_model=discover_vllm_model(config.vllm_url, config.vllm_api_key, config.timeout_s)
        )
    report: dict[str, Any] = {"config": _public_config(config), "targets": {}}
    for target in targets:
        report["targets"][target] = summarise_samples(
            _run_processes(replace(config, target=target)), stream=config.stream
        )
    if config.compare:
        report["ratios"] = _ratios(report["targets"]["gateway"], report["targets"]["vllm"])
        if report["targets"]["gateway"]["cache_hits"]:
            report["warnings"] = [
                "the gateway answered some requests from its cache; use unique_prompts to compare generation"
            ]
    return report


def write_report(report: dict[str, Any], path: Path) -> Path:
    """Write the JSON report at `path` and the latency plot next to it (`.png`); returns the plot's path."""
    from clients.charts import bench_chart

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    chart = path.with_suffix(".png")
    bench_chart(report["targets"], chart)
    return chart


def format_summary(report: dict[str, Any]) -> str:
    """A short table for the terminal."""
    lines = []
    for name, target in report["targets"].items():
        latency = target["latency_ms"]
        line = (
            f"{name:8} {target['requests']:6d} req  ok {target['ok']:6d}  "
            f"err {target['error_rate'] or 0:.2%}  "
            f"{target['req_per_s'] or 0:8.2f} req/s  latency ms p50 {latency['p50']}  p90 {latency['p90']}  "
            f"p95 {latency['p95']}  p99 {latency['p99']}  max {latency['max']}"
        )
        lines.append(line)
        if "ttft_ms" in target:
            ttft = target["ttft_ms"]
            lines.append(
                f"{'':8} TTFT ms p50 {ttft['p50']}  p90 {ttft['p90']}  p95 {ttft['p95']}  p99 {ttft['p99']}"
            )
        if target["by_status"]:
            lines.append(
                f"{'':8} by status: {', '.join(f'{k}: {v}' for k, v in target['by_status'].items())}"
            )
        if target.get("cache_hits"):
            lines.append(f"{'':8} gateway cache hits: {target['cache_hits']}")
    if "ratios" in report:
        ratios = report["ratios"]
        lines.append(
            f"gateway/vllm: latency p50 x{ratios['latency_p50']}  p99 x{ratios['latency_p99']}  "
            f"req/s x{ratios['req_per_s']}  p50 overhead {ratios['overhead_p50_ms']} ms"
        )
    lines.extend(f"warning: {warning}" for warning in report.get("warnings", []))
    return "\n".join(lines)
