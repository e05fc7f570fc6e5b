"""The GPU figures of today's pipeline, against the servers benchmarks/gpu_fleet.py started: reports/gpu_pipeline.json.

Phases (each adds to the report, which is rewritten after every cell; `--resume` skips the phases already done, so
a run cut by a device call's 10 minutes goes on in the next call):

  serving          production shape (Qwen2.5-1.5B architecture, dummy weights, 40 forced tokens): direct vs the
                   gateway (one worker, compile step on, candidate step off: random weights fail every check) at
                   c = 1, 8, 32, 128, 256, ABBA parts; the gateway's own time from its request log
  weights          the same architecture in bf16, FP8 (W8A8), FP8 weight-only on Marlin, int8 W8A8: direct at
                   c = 1 and 32, the servers in ABBA order
  weights_quality  the real Qwen2.5-Coder-0.5B in the same four weights formats: every public row, greedy, direct;
                   exact match (fences stripped) and compile rate against bf16; each row's answers kept for
                   execution-match judging (`--weights-rows`)
  quality          `make quality` on the GPU: every row direct and through the gateway with the GPU defaults
                   (launch/target_defaults.py), 32 rows in flight, both candidate policies; rows files as
                   benchmarks/quality.py writes them, with the gateway's own candidate call kept per row
  candidates       the `always` policy's latency cost: direct, gateway with candidates off, gateway with the GPU
                   defaults, at c = 1 and 32, real rows at their own length
  speculative      suffix decoding vs the baseline (same real model), c = 1 and 32, acceptance from vLLM
  grammar          why the grammar strategy stalls vLLM on a GPU: greedy requests alone, next to grammar-constrained
                   candidate calls, and next to free-sample calls of the same size

    python3 -m benchmarks.gpu_pipeline --fleet /root/gp --out /root/gp/gpu_pipeline.json --until EPOCH
    .venv/bin/python -m benchmarks.gpu_pipeline --fleet /tmp/gp --out /tmp/gp.json --dry-run   # fakes, any machine
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from benchmarks import gpu_fleet
from benchmarks.coder_pieces import default_rows_file
from benchmarks.gpu_pipeline_summary import summary
from benchmarks.gpu_serving import Budget, Report, accelerator_facts, run_paths
from benchmarks.gpu_speculative import load_rows, rotated
from benchmarks.processes import child_server, free_port, log_tail
from benchmarks.quality import main as quality_main
from benchmarks.quality_scoring import compiles, fences_stripped
from benchmarks.results import host_facts, latency_ms, say, serving_summary
from benchmarks.serving import (
    Cell,
    generation_toml,
    read_vllm_counters,
    run_cell,
    serving_gateway_env,
    tagged_prompts,
)
from benchmarks.spec_figures import acceptance
from clients.bench import DEFAULT_GENERATION, BenchConfig, run_bench
from clients.bench_prompts import Prompt
from clients.sql_match import exact_match
from clients.training_prompt import render_prompt
from gateway.pipeline.candidates import candidate_fields
from gateway.settings import DEFAULT_GENERATION_CONFIG, load_generation_params
from launch.target_defaults import gateway_defaults
from launch.vllm_server import DEFAULT_SERVED_MODEL_NAME

BENCH_KEY = "sk-bench-gpu-pipeline-0123456789"
# In order of need: a call that runs out of time leaves the last ones for the next call (--resume).
PHASES = ("serving", "quality", "candidates", "weights", "weights_quality", "speculative", "grammar", "schema_scale")
WEIGHTS = ("bf16", "fp8", "fp8_marlin", "int8")


@dataclass(frozen=True)
class Plan:
    serving_cells: tuple[Cell, ...] = (Cell(1, 60), Cell(8, 200, 2), Cell(32, 640, 4), Cell(128, 1280, 8),
                                       Cell(256, 2560, 8))
    serving_rounds: int = 2
    output_tokens: int = 40
    weights_cells: tuple[Cell, ...] = (Cell(1, 30), Cell(32, 320, 4))
    quality_concurrency: int = 32
    quality_limit: int = 0  # rows of the file (0: all)
    quality_samples: int = 8
    cost_cells: tuple[Cell, ...] = (Cell(1, 40), Cell(32, 320, 4))
    spec_cells: tuple[Cell, ...] = (Cell(1, 60), Cell(32, 320, 4))
    grammar_probe: tuple[int, int] = (4, 40)  # concurrency, requests of the greedy probe
    grammar_probe_s: float = 40.0
    grammar_background: int = 4  # candidate calls kept in flight next to the probe
    grammar_call_timeout_s: float = 30.0
    request_timeout_s: float = 120.0
    max_tokens: int = 256  # the gateway's own cap: real answers at their own length


DRY_RUN_PLAN = Plan(
    serving_cells=(Cell(1, 4), Cell(8, 8, 2)), serving_rounds=2, output_tokens=4,
    weights_cells=(Cell(1, 2), Cell(8, 8, 2)), quality_concurrency=4, quality_limit=6, quality_samples=2,
    cost_cells=(Cell(1, 2), Cell(4, 8, 2)), spec_cells=(Cell(1, 4), Cell(4, 8, 2)), grammar_probe=(2, 4),
    grammar_probe_s=10.0, grammar_background=1, grammar_call_timeout_s=10.0, request_timeout_s=30.0,
)


@dataclass
class Context:
    plan: Plan
    urls: dict[str, str]
    rows: tuple[Prompt, ...]
    rows_file: Path
    budget: Budget
    report: Report
    scratch: Path
    dry_run: bool

    def url(self, server: str) -> str:
        if server not in self.urls:
            raise RuntimeError(f"server {server} is not up (see fleet.servers in the report)")
        return self.urls[server]


# ----------------------------------------------------------------------------------------------- helpers


def direct_config(url: str, cell: Cell, prompts: tuple[Prompt, ...], *, max_tokens: int, ignore_eos: bool,
                  timeout_s: float, duration_s: float | None = None, **generation: Any) -> BenchConfig:
    return BenchConfig(target="vllm", vllm_url=url, vllm_model=DEFAULT_SERVED_MODEL_NAME, requests=cell.requests,
                       duration_s=duration_s,
                       concurrency=cell.concurrency, processes=cell.processes, prompts=prompts, unique_prompts=True,
                       max_tokens=max_tokens, ignore_eos=ignore_eos, timeout_s=timeout_s,
                       generation={**DEFAULT_GENERATION, **generation})


def gateway_config(url: str, cell: Cell, prompts: tuple[Prompt, ...], timeout_s: float) -> BenchConfig:
    return BenchConfig(target="gateway", gateway_url=url, api_key=BENCH_KEY, requests=cell.requests,
                       concurrency=cell.concurrency, processes=cell.processes, prompts=prompts, unique_prompts=True,
                       timeout_s=timeout_s)


def interleaved(targets: dict[str, Callable[[Cell, str], BenchConfig]], cell: Cell, rounds: int = 2,
                counters: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Each target's share of the cell in `rounds` parts, in ABBA order over the targets (a drifting host slows
    them alike); per target, the summary of all its parts (and vLLM's counters over them, where `counters` names
    the target's vLLM)."""
    names = list(targets)
    part = Cell(cell.concurrency, max(cell.concurrency, cell.requests // rounds), cell.processes)
    order = [name for number in range(rounds) for name in (names if number % 2 == 0 else names[::-1])]
    samples: dict[str, list[Any]] = {name: [] for name in names}
    walls: dict[str, float] = dict.fromkeys(names, 0.0)
    counted: dict[str, dict[str, float]] = {name: {} for name in names}
    for position, name in enumerate(order):
        config = targets[name](part, f"{name}.{cell.concurrency}.{position}")
        vllm = (counters or {}).get(name)
        before = read_vllm_counters(vllm) if vllm else {}
        got = run_bench(config)["targets"][config.target]["samples"]
        if vllm:
            after = read_vllm_counters(vllm)
            for key in after:
                counted[name][key] = round(counted[name].get(key, 0.0) + after[key] - before.get(key, 0.0), 1)
        samples[name].extend(got)
        walls[name] += serving_summary(got)["wall_s"]
    result = {}
    for name in names:
        summary_of = serving_summary(samples[name])
        summary_of["wall_s"] = round(walls[name], 3)
        summary_of["req_per_s"] = round(summary_of["completed"] / walls[name], 3) if walls[name] else None
        if counted[name]:
            summary_of["vllm_counted"] = counted[name]
        result[name] = summary_of
    return result


def short(result: dict[str, Any]) -> str:
    return (f"p50 {result['latency_ms']['p50']} ms p99 {result['latency_ms']['p99']} ms, {result['req_per_s']} req/s,"
            f" outcomes {result['outcomes']}")


@contextmanager
def gateway(ctx: Context, vllm_url: str, env_extra: dict[str, str], *, name: str, exact_length: int | None = None
            ) -> Iterator[tuple[str, Path]]:
    """The production gateway (one worker) in front of `vllm_url`: `exact_length` forces that many tokens (dummy
    weights), else real answers at their own length with the production generation config."""
    port = free_port()
    generation = generation_toml(exact_length or ctx.plan.max_tokens, ctx.scratch / f"generation-{name}.toml")
    env = serving_gateway_env(vllm_url, generation, BENCH_KEY)
    env["BENCH_IGNORE_EOS"] = "1" if exact_length else "0"
    if not exact_length:
        env["SQLGATE_GENERATION_CONFIG"] = str(DEFAULT_GENERATION_CONFIG)
    env.update(env_extra)
    with child_server(f"gateway-{name}", [sys.executable, "-m", "benchmarks.bench_gateway", "--port", str(port)],
                      port=port, log_dir=ctx.scratch, env=env) as server:
        yield server.base_url, server.log_path


def phase_done(ctx: Context, name: str) -> bool:
    return name in ctx.report.body.get("phases_done", [])


def mark_done(ctx: Context, name: str) -> None:
    ctx.report.body.setdefault("phases_done", []).append(name)
    ctx.report.save()


# ----------------------------------------------------------------------------------------------- phases


def run_serving(ctx: Context) -> None:
    """Production shape: direct vs gateway (compile on, candidates off) at every concurrency."""
    url = ctx.url("d15_bf16")
    entry: dict[str, Any] = ctx.report.body.setdefault("serving", {"server": "d15_bf16", "cells": {}})
    with gateway(ctx, url, {}, name="serving", exact_length=ctx.plan.output_tokens) as (gateway_url, log):
        common = {"vllm_url": url, "vllm_model": DEFAULT_SERVED_MODEL_NAME, "output_tokens": ctx.plan.output_tokens,
                  "api_key": BENCH_KEY, "timeout_s": ctx.plan.request_timeout_s, "gateway_url": gateway_url,
                  "gateway_log": log}
        warm = Cell(16, 32, 2)
        run_cell("gateway", warm, **common)
        run_cell("direct", warm, **common)
        run_paths(ctx.plan.serving_cells, ("direct", "gateway"), common, ctx.budget, entry["cells"], ctx.report,
                  "[serving]", ctx.plan.serving_rounds)
    entry["vllm_counters_at_end"] = read_vllm_counters(url)


def run_weights(ctx: Context) -> None:
    """The 1.5B architecture in each weights format, direct, servers in ABBA order per cell."""
    entry: dict[str, Any] = ctx.report.body.setdefault("weights", {"cells": {}})
    servers = {weights: f"d15_{weights}" for weights in WEIGHTS if f"d15_{weights}" in ctx.urls}
    entry["servers"] = servers
    prompts = tagged_prompts("w")
    for server in servers.values():  # warm each server's shapes, unmeasured
        run_bench(direct_config(ctx.urls[server], Cell(8, 16), prompts, max_tokens=ctx.plan.output_tokens,
                                ignore_eos=True, timeout_s=ctx.plan.request_timeout_s))
    for cell in ctx.plan.weights_cells:
        def config_for(server: str) -> Callable[[Cell, str], BenchConfig]:
            return lambda part, tag: direct_config(ctx.urls[server], part, tagged_prompts(tag),
                                                   max_tokens=ctx.plan.output_tokens, ignore_eos=True,
                                                   timeout_s=ctx.plan.request_timeout_s)
        targets = {weights: config_for(server) for weights, server in servers.items()}
        result = interleaved(targets, cell, counters={w: ctx.urls[s] for w, s in servers.items()})
        entry["cells"][str(cell.concurrency)] = result
        for weights, figures in result.items():
            say(f"[weights {weights}] c={cell.concurrency}: {short(figures)}")
        ctx.report.save()


def greedy_answers(url: str, rows: list[dict[str, Any]], concurrency: int, timeout_s: float) -> list[str | None]:
    """The greedy answer to every row (the gateway's generation parameters), `concurrency` at a time."""
    fields = load_generation_params(DEFAULT_GENERATION_CONFIG).as_upstream_fields()
    with httpx.Client(timeout=timeout_s, limits=httpx.Limits(max_connections=concurrency)) as client:
        def ask(row: dict[str, Any]) -> str | None:
            body = {"model": DEFAULT_SERVED_MODEL_NAME, "prompt": render_prompt(row["question"], row["context"]),
                    **fields}
            try:
                response = client.post(f"{url}/v1/completions", json=body)
                response.raise_for_status()
                return str(response.json()["choices"][0]["text"])
            except (httpx.HTTPError, KeyError, ValueError):
                return None
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(ask, rows))


def run_weights_quality(ctx: Context, rows_out: Path) -> None:
    """The real 0.5B in each weights format: exact match (fences stripped) and compile rate, every row."""
    entry: dict[str, Any] = ctx.report.body.setdefault("weights_quality", {})
    rows = [json.loads(line) for line in ctx.rows_file.read_text().splitlines() if line.strip()]
    rows = rows[: ctx.plan.quality_limit] if ctx.plan.quality_limit else rows
    answers: dict[str, list[str | None]] = {}
    for weights in WEIGHTS:
        server = f"c05_{weights}"
        if server not in ctx.urls:
            entry[weights] = {"skipped": "server not up"}
            continue
        started = time.monotonic()
        texts = greedy_answers(ctx.urls[server], rows, ctx.plan.quality_concurrency, ctx.plan.request_timeout_s)
        answers[weights] = texts
        stripped = [fences_stripped(text) if text is not None else None for text in texts]
        entry[weights] = {
            "rows": len(rows), "errors": sum(text is None for text in texts),
            "exact_match_fences_stripped": round(sum(text is not None and exact_match(text, row["answer"])
                                                     for text, row in zip(stripped, rows, strict=True)) / len(rows), 4),
            "compile_rate": round(sum(compiles(text, row["context"]) for text, row in zip(stripped, rows, strict=True))
                                  / len(rows), 4),
            "seconds": round(time.monotonic() - started, 1),
        }
        if "bf16" in answers and weights != "bf16":
            entry[weights]["same_text_as_bf16"] = round(sum(a == b for a, b in zip(texts, answers["bf16"],
                                                                                     strict=True)) / len(rows), 4)
        say(f"[weights quality {weights}] {entry[weights]}")
        ctx.report.save()
    with rows_out.open("w", encoding="utf-8") as out:
        for index, row in enumerate(rows):
            out.write(json.dumps({"index": index, "db_id": row.get("db_id"), "question": row["question"],
                                  "context": row["context"], "answer": row["answer"],
                                  "texts": {weights: texts[index] for weights, texts in answers.items()}}) + "\n")
    entry["rows_file"] = rows_out.name


def run_quality(ctx: Context, out_dir: Path) -> None:
    """benchmarks/quality.py against the real model on the GPU, the GPU defaults, both candidate policies."""
    entry: dict[str, Any] = ctx.report.body.setdefault("quality", {})
    defaults = gateway_defaults("gpu")
    variants = {"always": ("always", "gpu_quality", []), "on_failure": ("on_failure", "gpu_quality_on_failure", []),
                "memory": ("always", "gpu_quality_memory",
                           ["--memory-seed", "half", "--variants", str(out_dir / "gpu_quality_memory_variants.jsonl")])}
    for name, (policy, stem, more) in variants.items():
        if name in entry:
            continue
        minutes = max(1.0, (ctx.budget.left() - 60) / 60)
        argv = ["--vllm-url", ctx.url("c05_bf16"), "--target", "gpu", "--concurrency",
                str(ctx.plan.quality_concurrency), "--candidates-policy", policy, "--fresh",
                "--file", str(ctx.rows_file), "--out", str(out_dir / f"{stem}.json"),
                "--rows", str(out_dir / f"{stem}_rows.jsonl"), "--chart", str(ctx.scratch / f"{stem}.png"),
                "--deadline-min", f"{minutes:.1f}", "--samples", str(ctx.plan.quality_samples), *more]
        flags = {"SQLGATE_SQL_CANDIDATE_STRATEGY": "--candidate-strategy", "SQLGATE_SQL_CANDIDATES": "--candidates",
                 "SQLGATE_SQL_CANDIDATE_BUDGET_S": "--candidate-budget-s", "SQLGATE_SQL_CANDIDATES_POLICY": None}
        for key, value in defaults.items():
            flag = flags.get(key, f"--gateway-env={key}=")
            if flag is not None:
                argv += [f"{flag}{value}"] if flag.endswith("=") else [flag, value]
        if ctx.plan.quality_limit:
            argv += ["--limit", str(ctx.plan.quality_limit)]
        say(f"[quality {name}] {' '.join(argv)}")
        quality_main(argv)
        figures = json.loads((out_dir / f"{stem}.json").read_text())
        entry[name] = {"report": f"{stem}.json", "rows": figures["rows"], "complete": figures["complete"],
                         "execution_match": figures.get("execution_match"), "memory": figures.get("memory"),
                         "direct": {k: figures["direct"].get(k) for k in ("exact_match_fences_stripped", "p50_ms",
                                                                           "p95_ms", "p99_ms")},
                         "gateway": {k: figures["gateway"].get(k) for k in ("exact_match", "answered_200",
                                                                            "compile_rate_of_200", "refusal_rate",
                                                                            "repair_rate", "repair_won_rate",
                                                                            "repair_timed_out_rate", "p50_ms",
                                                                            "p95_ms", "p99_ms")},
                         "settings": figures["design"]["candidate_step"]}
        ctx.report.save()


def run_schema_scale(ctx: Context, out_dir: Path) -> None:
    """`make schema-scale` on the GPU: every row among 10, 50 and 200 tables, the real model, the GPU defaults."""
    from benchmarks.schema_scale import main as schema_scale_main

    argv = ["--vllm-url", ctx.url("c05_bf16"), "--target", "gpu", "--concurrency", str(ctx.plan.quality_concurrency),
            "--file", str(ctx.rows_file), "--out", str(out_dir / "schema_scale.json"),
            "--rows-out", str(out_dir / "schema_scale_rows.jsonl")]
    if ctx.plan.quality_limit:
        argv += ["--limit", str(ctx.plan.quality_limit)]
    schema_scale_main(argv)
    ctx.report.body["schema_scale"] = json.loads((out_dir / "schema_scale.json").read_text())["summary"]
    ctx.report.save()


def run_candidates(ctx: Context) -> None:
    """What the `always` policy costs: the gateway with candidates off and with the GPU defaults, and direct."""
    url = ctx.url("c05_bf16")
    entry: dict[str, Any] = ctx.report.body.setdefault("candidates", {"cells": {}})
    defaults = gateway_defaults("gpu")
    entry["gpu_defaults"] = defaults
    with gateway(ctx, url, {"SQLGATE_SQL_CANDIDATES": "0"}, name="off") as (off_url, _), \
         gateway(ctx, url, defaults, name="always") as (always_url, _):
        targets: dict[str, Callable[[Cell, str], BenchConfig]] = {
            "direct": lambda part, tag: direct_config(url, part, tagged_prompts(tag, ctx.rows),
                                                      max_tokens=ctx.plan.max_tokens, ignore_eos=False,
                                                      timeout_s=ctx.plan.request_timeout_s),
            "gateway_candidates_off": lambda part, tag: gateway_config(off_url, part, tagged_prompts(tag, ctx.rows),
                                                                       ctx.plan.request_timeout_s),
            "gateway_always": lambda part, tag: gateway_config(always_url, part, tagged_prompts(tag, ctx.rows),
                                                               ctx.plan.request_timeout_s),
        }
        for target in targets.values():  # warm: prompts in the prefix cache, shapes compiled
            run_bench(target(Cell(8, 16), "warm"))
        for cell in ctx.plan.cost_cells:
            result = interleaved(targets, cell)
            result["always_minus_off_p50_ms"] = round(result["gateway_always"]["latency_ms"]["p50"]
                                                      - result["gateway_candidates_off"]["latency_ms"]["p50"], 2)
            entry["cells"][str(cell.concurrency)] = result
            for name in targets:
                say(f"[candidates {name}] c={cell.concurrency}: {short(result[name])}")
            ctx.report.save()


def run_speculative(ctx: Context) -> None:
    """Suffix decoding vs the baseline on the real model: speed, acceptance, and whether greedy text changed."""
    entry: dict[str, Any] = ctx.report.body.setdefault("speculative", {"method": "suffix", "cells": {}})
    if "c05_suffix" not in ctx.urls:
        entry["skipped"] = "the suffix-decoding server did not start (see fleet.servers.c05_suffix.error)"
        return
    servers = {"baseline": ctx.url("c05_bf16"), "suffix": ctx.url("c05_suffix")}
    probe = list(ctx.rows[-16:])
    texts = {name: greedy_answers(url, [{"question": p.question, "context": p.schema} for p in probe], 8,
                                  ctx.plan.request_timeout_s) for name, url in servers.items()}
    entry["same_text_as_baseline"] = round(sum(a == b for a, b in zip(texts["baseline"], texts["suffix"],
                                                                      strict=True)) / len(probe), 4)
    offset = 0
    for cell in ctx.plan.spec_cells:
        rows = rotated(ctx.rows, offset)
        offset += cell.requests

        def config_for(url: str, rows: tuple[Prompt, ...] = rows) -> Callable[[Cell, str], BenchConfig]:
            return lambda part, tag: direct_config(url, part, tagged_prompts(tag, rows), max_tokens=ctx.plan.max_tokens,
                                                   ignore_eos=False, timeout_s=ctx.plan.request_timeout_s)
        result = interleaved({name: config_for(url) for name, url in servers.items()}, cell, counters=servers)
        for figures in result.values():
            figures["acceptance"] = acceptance(figures.get("vllm_counted") or {})
        entry["cells"][str(cell.concurrency)] = result
        for name in servers:
            say(f"[speculative {name}] c={cell.concurrency}: {short(result[name])}")
        ctx.report.save()


def run_grammar(ctx: Context) -> None:
    """Greedy requests alone, then next to grammar-constrained candidate calls, then next to free-sample calls."""
    url = ctx.url("c05_bf16")
    entry: dict[str, Any] = ctx.report.body.setdefault("grammar", {})
    params = load_generation_params(DEFAULT_GENERATION_CONFIG)
    sampling = {**params.as_upstream_fields(), **params.candidates.as_upstream_fields(8)}
    probe_cell = Cell(*ctx.plan.grammar_probe)

    def probe(tag: str) -> dict[str, Any]:
        # Bounded in time as well as in count: next to a stalled engine each request can take many seconds.
        config = direct_config(url, probe_cell, tagged_prompts(tag, ctx.rows), max_tokens=ctx.plan.max_tokens,
                               ignore_eos=False, timeout_s=ctx.plan.grammar_call_timeout_s,
                               duration_s=ctx.plan.grammar_probe_s)
        return serving_summary(run_bench(config)["targets"]["vllm"]["samples"])

    for background in ("none", "grammar", "sample"):
        if background in entry:
            continue
        stop = threading.Event()
        calls: list[tuple[float, str]] = []

        def keep_calling(offset: int, stop: threading.Event, calls: list[tuple[float, str]],
                         strategy: str = background) -> None:
            with httpx.Client(timeout=ctx.plan.grammar_call_timeout_s) as client:
                index = offset
                while not stop.is_set():
                    row = ctx.rows[index % len(ctx.rows)]
                    index += ctx.plan.grammar_background
                    fields = candidate_fields(sampling, "grammar" if strategy == "grammar" else "sample", row.schema)
                    body = {"model": DEFAULT_SERVED_MODEL_NAME, "prompt": render_prompt(row.question, row.schema),
                            **fields}
                    started = time.perf_counter()
                    try:
                        response = client.post(f"{url}/v1/completions", json=body)
                        outcome = str(response.status_code)
                    except httpx.HTTPError as error:
                        outcome = type(error).__name__
                    calls.append((time.perf_counter() - started, outcome))

        workers = [threading.Thread(target=keep_calling, args=(n, stop, calls), daemon=True)
                   for n in range(ctx.plan.grammar_background if background != "none" else 0)]
        for worker in workers:
            worker.start()
        try:
            result = probe(f"g{background}")
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=ctx.plan.grammar_call_timeout_s + 5)
        result["background"] = background
        result["background_calls"] = len(calls)
        result["background_call_s"] = latency_ms(seconds for seconds, _ in calls) if calls else None
        result["background_outcomes"] = {o: sum(1 for _, x in calls if x == o) for o in {x for _, x in calls}}
        entry[background] = result
        say(f"[grammar, next to {background}] greedy {short(result)}; background calls {result['background_calls']}")
        ctx.report.save()


# ---------------------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = DRY_RUN_PLAN if args.dry_run else Plan()
    if args.quality_limit is not None:
        plan = replace(plan, quality_limit=args.quality_limit)
    fleet = gpu_fleet.load(args.fleet)
    previous = json.loads(args.out.read_text()) if args.resume and args.out.is_file() else {}
    report = Report(args.out, previous)
    report.body.update({
        "benchmark": "gpu_pipeline", "dry_run": args.dry_run, "plan": asdict(plan),
        "command": "python3 -m benchmarks.gpu_pipeline --fleet DIR --out FILE --until EPOCH (docs/benchmarks.md §4)",
        "host": host_facts(), "accelerator": accelerator_facts(), "fleet": fleet,
    })
    rows_file = args.rows or default_rows_file()
    if rows_file is None:
        raise SystemExit("no Spider rows found: pass --rows")
    scratch = args.out.parent / "gpu_pipeline_scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    ctx = Context(plan=plan, urls=gpu_fleet.urls(fleet), rows=load_rows(rows_file), rows_file=rows_file,
                  budget=Budget(args.until), report=report, scratch=scratch, dry_run=args.dry_run)
    steps: dict[str, Callable[[], None]] = {
        "serving": lambda: run_serving(ctx),
        "weights": lambda: run_weights(ctx),
        "weights_quality": lambda: run_weights_quality(ctx, args.out.parent / "gpu_weights_rows.jsonl"),
        "quality": lambda: run_quality(ctx, args.out.parent),
        "candidates": lambda: run_candidates(ctx),
        "speculative": lambda: run_speculative(ctx),
        "grammar": lambda: run_grammar(ctx),
        "schema_scale": lambda: run_schema_scale(ctx, args.out.parent),
    }
    try:
        for name in args.phases:
            if phase_done(ctx, name):
                continue
            if ctx.budget.left() < 45:
                report.body.setdefault("phases_skipped", []).append(name)
                continue
            say(f"gpu pipeline: phase {name} ({ctx.budget.left():.0f} s left)")
            try:
                steps[name]()
                mark_done(ctx, name)
            except Exception as error:  # one phase failing must not lose the others
                report.body.setdefault("errors", {})[name] = f"{type(error).__name__}: {str(error)[-2000:]}"
                report.save()
    finally:
        report.body["summary"] = summary(report.body)
        report.save()
        logs = [f"===== {log.name}\n{log_tail(log, 80)}" for log in sorted(scratch.glob("*.log"))]
        (args.out.parent / "gpu_pipeline_gateway_logs.txt").write_text("\n".join(logs) + "\n")
    return report.body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fleet", type=Path, required=True, help="the folder benchmarks.gpu_fleet started")
    parser.add_argument("--out", type=Path, required=True, help="the report (kept and extended with --resume)")
    parser.add_argument("--rows", type=Path, default=None, help="JSONL rows {question, context, answer}")
    parser.add_argument("--phases", type=lambda text: [p for p in text.split(",") if p], default=list(PHASES),
                        help=f"comma-separated subset of {','.join(PHASES)}")
    parser.add_argument("--until", type=float, default=None, help="epoch seconds to stop by (default: now + 540)")
    parser.add_argument("--resume", action="store_true", help="add to the report; skip the phases it has done")
    parser.add_argument("--quality-limit", type=int, default=None, help="only the first N rows in the quality phases")
    parser.add_argument("--dry-run", action="store_true", help="against the fake servers of gpu_fleet --dry-run")
    args = parser.parse_args(argv)
    unknown = [phase for phase in args.phases if phase not in PHASES]
    if unknown:
        parser.error(f"unknown phases {unknown}; choose from {PHASES}")
    args.until = args.until if args.until is not None else time.time() + 540
    body = run(args)
    print(json.dumps(body["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
