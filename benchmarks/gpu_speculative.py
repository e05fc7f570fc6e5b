"""Speculative decoding for SQL on the GPU host (n-gram and suffix decoding, no draft model), the candidate step's
cost and the held-back stream, measured with a real model on real questions; reports/gpu_speculative.json.

Acceptance depends on what the model really writes, so the sweep runs the real small model
(Qwen2.5-Coder-0.5B-Instruct, converted on the host from its Q4 GGUF: benchmarks/coder_pieces.py) on Spider dev
rows, greedy, at its own length (up to `max_tokens`). Phases, each a vLLM start or more:

  sweep     every method (baseline, n-gram and suffix settings): direct vLLM at c=1 and c=32, acceptance from
            vLLM's `vllm:spec_decode_*` counters, and whether the greedy text stayed the baseline's;
  chosen    the method the sweep picks (or baseline when none wins): direct and through the gateway at 1, 8, 32,
            128; the candidate step (k samples in one call, temperature 0.7) for each k; streaming (time to first
            token and to the last byte) direct and through the gateway;
  dummy15b  the production architecture (Qwen2.5-1.5B, dummy weights, 40 forced tokens as in gpu_serving.py):
            baseline and the chosen method at c=1 and c=32, direct: its speed only (random weights write text whose
            acceptance means nothing).

Each phase adds to the report at --out (rewritten after every cell), so phases can run in separate device calls
(`--resume`). `--dry-run` runs every code path on a CPU machine against benchmarks/fake_spec_vllm.py, with the real
gateway in front, and writes the same report shape marked as a dry run. docs/benchmarks.md section 5 has the
device commands.

    python3 -m benchmarks.gpu_speculative --model-dir /root/coder-0.5b --rows .gpu/data/spider.jsonl \\
        --phases sweep --out /root/spec.json --until $(( $(date +%s) + 560 ))
    .venv/bin/python -m benchmarks.gpu_speculative --dry-run --out /tmp/spec_dry.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import httpx

from benchmarks.coder_pieces import default_rows_file
from benchmarks.gpu_serving import Budget, Report, accelerator_facts, vllm_server
from benchmarks.model_folder import write_model_folder
from benchmarks.processes import child_server, free_port, log_tail
from benchmarks.results import host_facts, say
from benchmarks.serving import (
    Cell,
    compare_paths,
    generation_toml,
    read_vllm_counters,
    run_interleaved,
    serving_gateway_env,
    tagged_prompts,
)
from benchmarks.spec_figures import acceptance, candidate_defaults, choose_method, read_per_position, summary
from clients.bench import DEFAULT_GENERATION, BenchConfig, load_prompts, run_bench
from clients.bench_prompts import Prompt
from clients.training_prompt import render_prompt
from launch.speculative import Speculative, ngram, suffix
from launch.vllm_server import DEFAULT_SERVED_MODEL_NAME, LaunchError, LaunchOptions, build_command

Mode = Literal["gpu", "dry-run"]
BENCH_KEY = "sk-bench-gpu-speculative-0123456789"
MODEL = "Qwen2.5-Coder-0.5B-Instruct (real weights: bf16 from the Q4_K_M GGUF)"
# The gateway refuses longer questions and schemas before the model is called (FACTS.md caps).
MAX_QUESTION_CHARS, MAX_CONTEXT_CHARS = 500, 2000


@dataclass(frozen=True)
class Method:
    """One vLLM configuration of the sweep: the launcher's GPU command line plus this speculative setting."""

    name: str
    speculative: Speculative | None = None


def method(setting: Speculative) -> Method:
    return Method(setting.label, setting)


# In order of priority: a run short of device time skips from the end (vLLM's documented settings first).
SWEEP = (
    Method("baseline"),
    method(ngram(tokens=5, lookup_min=2, lookup_max=4)),
    method(suffix()),
    method(ngram(tokens=3, lookup_min=2, lookup_max=4)),
    method(suffix(suffix_decoding_max_spec_factor=2.0, suffix_decoding_min_token_prob=0.2)),
)


@dataclass(frozen=True)
class SpecPlan:
    mode: Mode = "gpu"
    methods: tuple[Method, ...] = SWEEP
    max_tokens: int = 128  # the real model's answers are 20-60 tokens; it sometimes adds prose
    identity_rows: int = 16  # greedy answers compared with the baseline's; also the warm-up
    sweep_cells: tuple[Cell, ...] = (Cell(1, 60), Cell(32, 320, 4))
    chosen_cells: tuple[Cell, ...] = (Cell(1, 60), Cell(8, 160, 2), Cell(32, 320, 4), Cell(128, 640, 8))
    rounds: int = 2  # ABBA parts per path in the chosen phase
    candidate_ks: tuple[int, ...] = (2, 4, 8)
    candidate_requests: int = 40
    candidate_temperature: float = 0.7
    stream_cells: tuple[Cell, ...] = (Cell(1, 40), Cell(8, 160, 2))
    dummy_cells: tuple[Cell, ...] = (Cell(1, 40), Cell(32, 640, 4))
    dummy_output_tokens: int = 40
    gpu_memory_utilization: float = 0.9
    max_model_len: int = 2048
    start_budget_s: float = 170.0  # a vLLM start on the H200 took 70-162 s
    start_deadline_s: float = 300.0
    request_timeout_s: float = 120.0


DRY_RUN_PLAN = SpecPlan(
    mode="dry-run", identity_rows=3, sweep_cells=(Cell(1, 4), Cell(32, 32, 2)),
    chosen_cells=(Cell(1, 4), Cell(8, 8), Cell(32, 32, 2), Cell(128, 128, 2)), candidate_ks=(2, 4),
    candidate_requests=4, stream_cells=(Cell(1, 4), Cell(8, 8, 2)), dummy_cells=(Cell(1, 4), Cell(32, 32, 2)),
    start_budget_s=5.0, start_deadline_s=60.0, request_timeout_s=30.0,
)


def load_rows(path: Path) -> tuple[Prompt, ...]:
    """The rows the gateway would accept (question and schema within its caps), in file order."""
    rows = tuple(p for p in load_prompts(path)
                 if len(p.question) <= MAX_QUESTION_CHARS and len(p.schema) <= MAX_CONTEXT_CHARS)
    if not rows:
        raise ValueError(f"{path}: no row fits the gateway's caps")
    return rows


def rotated(rows: tuple[Prompt, ...], offset: int) -> tuple[Prompt, ...]:
    """Rows from `offset` on, wrapping: each cell of one server starts where the last stopped, so suffix
    decoding's cache of past answers never sees the same question twice while rows last."""
    offset %= len(rows)
    return rows[offset:] + rows[:offset]


# ----------------------------------------------------------------------------------------------- servers


def launch_options(plan: SpecPlan, item: Method, model_dir: Path, *, dummy: bool) -> LaunchOptions:
    return LaunchOptions(model=str(model_dir), target="gpu", port=free_port(), max_model_len=plan.max_model_len,
                         gpu_memory_utilization=plan.gpu_memory_utilization, speculative=item.speculative,
                         extra_args=("--load-format", "dummy") if dummy else ())


@contextmanager
def serve(plan: SpecPlan, item: Method, model_dir: Path, scratch: Path, entry: dict[str, Any], budget: Budget,
          *, dummy: bool = False) -> Iterator[str]:
    """Start vLLM for `item` with the launcher's GPU command line (in a dry run: the fake, after building that
    command all the same), record how, yield its URL, stop it."""
    options = launch_options(plan, item, model_dir, dummy=dummy)
    entry["speculative_config"] = item.speculative.as_dict() if item.speculative else None
    entry["vllm_command"] = build_command(options)
    log_path = scratch / f"vllm-{'dummy-' if dummy else ''}{item.name}.log"
    deadline = min(plan.start_deadline_s, budget.left() - 30)
    if plan.mode == "dry-run":
        argv = [sys.executable, "-m", "benchmarks.fake_spec_vllm", "--port", str(options.port)]
        if item.speculative is not None:
            argv += ["--speculative-config", item.speculative.as_json()]
        with child_server(log_path.stem, argv, port=options.port, log_dir=scratch, deadline_s=deadline) as fake:
            entry["startup_s"] = fake.startup_s
            yield fake.base_url
        return
    with vllm_server(options, log_path, deadline) as (url, startup_s, argv):
        entry.update({"startup_s": startup_s, "vllm_command": argv})
        try:
            yield url
        finally:
            entry["vllm_log_tail"] = log_tail(log_path, 15)


@contextmanager
def gateway(vllm_url: str, plan: SpecPlan, scratch: Path, extra_env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """The production gateway (one worker, its default) in front of `vllm_url`: real answers at their own length."""
    port = free_port()
    env = serving_gateway_env(vllm_url, generation_toml(plan.max_tokens, scratch / "generation.toml"), BENCH_KEY)
    env["BENCH_IGNORE_EOS"] = "0"
    env.update(extra_env)
    with child_server("gateway", [sys.executable, "-m", "benchmarks.bench_gateway", "--port", str(port)],
                      port=port, log_dir=scratch, env=env) as server:
        yield server.base_url, server.log_path


# ----------------------------------------------------------------------------------------------- measurements


def greedy_texts(vllm_url: str, rows: tuple[Prompt, ...], plan: SpecPlan) -> list[str]:
    """One greedy answer per row, one at a time (also warms vLLM's shapes before anything is timed)."""
    texts = []
    with httpx.Client(timeout=plan.request_timeout_s) as client:
        for row in rows:
            body = {"model": DEFAULT_SERVED_MODEL_NAME, "prompt": render_prompt(row.question, row.schema),
                    **DEFAULT_GENERATION, "max_tokens": plan.max_tokens}
            response = client.post(f"{vllm_url}/v1/completions", json=body)
            response.raise_for_status()
            texts.append(response.json()["choices"][0]["text"])
    return texts


def counted_cell(vllm_url: str, cell: Cell, rows: tuple[Prompt, ...], plan: SpecPlan) -> dict[str, Any]:
    """Direct vLLM, one cell, real rows at their own length, with the acceptance vLLM counted meanwhile."""
    before = read_per_position(vllm_url)
    result = run_interleaved(("direct",), cell, rounds=1, vllm_url=vllm_url, vllm_model=DEFAULT_SERVED_MODEL_NAME,
                             output_tokens=plan.max_tokens, timeout_s=plan.request_timeout_s, base_prompts=rows,
                             ignore_eos=False)["direct"]
    after = read_per_position(vllm_url)
    result["acceptance"] = acceptance(result["vllm_counted"],
                                      {k: after[k] - before.get(k, 0.0) for k in after})
    result.pop("client_processes", None)
    return result


def say_cell(label: str, concurrency: int, result: dict[str, Any]) -> None:
    accepted = (result.get("acceptance") or {}).get("acceptance_rate")
    say(f"{label} c={concurrency}: p50 {result['latency_ms']['p50']} ms, {result['req_per_s']} req/s, "
        f"{result['generated_tokens_per_request']} tok/req, acceptance {accepted}, outcomes {result['outcomes']}")


def run_sweep(plan: SpecPlan, rows: tuple[Prompt, ...], model_dir: Path, scratch: Path, budget: Budget,
              report: Report) -> None:
    sweep: dict[str, Any] = report.body.setdefault("sweep", {})
    needed = plan.start_budget_s + sum(5 + c.requests / max(5.0, c.concurrency * 5.0) for c in plan.sweep_cells)
    for item in plan.methods:
        if budget.left() < needed:
            sweep[item.name] = {"skipped": f"out of device time ({budget.left():.0f} s left, ~{needed:.0f} s needed)"}
            report.save()
            continue
        entry: dict[str, Any] = {"cells": {}}
        sweep[item.name] = entry
        say(f"speculative sweep: starting vLLM ({item.name})")
        try:
            with serve(plan, item, model_dir, scratch, entry, budget) as url:
                texts = greedy_texts(url, rows[-plan.identity_rows:], plan)
                entry["greedy_texts"] = texts
                reference = (sweep.get("baseline") or {}).get("greedy_texts")
                if reference and item.name != "baseline":
                    entry["same_text_as_baseline"] = round(
                        sum(a == b for a, b in zip(texts, reference, strict=False)) / len(texts), 4)
                offset = 0
                for cell in plan.sweep_cells:
                    entry["cells"][str(cell.concurrency)] = result = counted_cell(url, cell, rotated(rows, offset),
                                                                                  plan)
                    offset += cell.requests
                    say_cell(f"[{item.name}]", cell.concurrency, result)
                    report.save()
                entry["vllm_counters_at_end"] = read_vllm_counters(url)
        except LaunchError as error:
            entry["refused"] = f"{error.reason}: {error}"
        except Exception as error:  # one method failing (a missing package, say) must not lose the others
            entry["error"] = f"{type(error).__name__}: {str(error)[-1500:]}"
        report.save()
    report.body["choice"] = choose_method(sweep)
    report.save()


def chosen_method(body: dict[str, Any], override: str | None) -> Method:
    """--method if given, else the sweep's choice, else the baseline (no method won: measure what stays)."""
    name = override or (body.get("choice") or {}).get("chosen") or "baseline"
    for item in SWEEP:
        if item.name == name:
            return item
    raise SystemExit(f"--method {name!r} is none of {[item.name for item in SWEEP]}")


def run_chosen(plan: SpecPlan, rows: tuple[Prompt, ...], model_dir: Path, scratch: Path, budget: Budget,
               report: Report, item: Method, gateway_env: dict[str, str]) -> None:
    entry: dict[str, Any] = {"method": item.name, "cells": {}, "candidates": {}, "streaming": {}}
    report.body["chosen"] = entry
    say(f"chosen method: starting vLLM ({item.name})")
    with serve(plan, item, model_dir, scratch, entry, budget) as url:
        greedy_texts(url, rows[-plan.identity_rows:], plan)
        with gateway(url, plan, scratch, gateway_env) as (gateway_url, gateway_log):
            common: dict[str, Any] = {"vllm_url": url, "vllm_model": DEFAULT_SERVED_MODEL_NAME,
                                      "output_tokens": plan.max_tokens, "gateway_url": gateway_url,
                                      "gateway_log": gateway_log, "api_key": BENCH_KEY,
                                      "timeout_s": plan.request_timeout_s, "ignore_eos": False}
            offset = 0
            for cell in plan.chosen_cells:
                if budget.left() < 30 + cell.requests / max(5.0, cell.concurrency * 5.0):
                    entry["cells"][str(cell.concurrency)] = {"skipped": "out of device time"}
                    continue
                paths = run_interleaved(("direct", "gateway"), cell, rounds=plan.rounds,
                                        base_prompts=rotated(rows, offset), **common)
                offset += cell.requests
                result: dict[str, Any] = dict(paths)
                for summary_of_path in paths.values():
                    summary_of_path["acceptance"] = acceptance(summary_of_path["vllm_counted"])
                result["gateway_vs_direct"] = compare_paths(paths["gateway"], paths["direct"])
                entry["cells"][str(cell.concurrency)] = result
                say_cell(f"[{item.name} direct]", cell.concurrency, paths["direct"])
                say_cell(f"[{item.name} gateway]", cell.concurrency, paths["gateway"])
                report.save()
            run_candidates(url, plan, rows, entry, report)
            run_streaming(url, gateway_url, plan, rows, entry, report)
        entry["vllm_counters_at_end"] = read_vllm_counters(url)
    report.save()


def _direct_config(url: str, plan: SpecPlan, rows: tuple[Prompt, ...], requests: int, concurrency: int = 1,
                   processes: int = 1, **generation: Any) -> BenchConfig:
    return BenchConfig(target="vllm", vllm_url=url, vllm_model=DEFAULT_SERVED_MODEL_NAME, requests=requests,
                       concurrency=concurrency, processes=processes, prompts=rows, max_tokens=plan.max_tokens,
                       generation={**DEFAULT_GENERATION, **generation}, timeout_s=plan.request_timeout_s)


def run_candidates(url: str, plan: SpecPlan, rows: tuple[Prompt, ...], entry: dict[str, Any], report: Report) -> None:
    """The candidate step's call on its own: k samples in one request (`n`), temperature 0.7, no seed (a seed
    would give the k samples one random stream), against greedy on the same rows, one at a time. A first greedy
    pass, unrecorded, puts every row's prompt in vLLM's prefix cache, so that no call pays a prefill the others
    skip: the figures compare decoding."""
    candidates: dict[str, Any] = entry["candidates"]
    sampled = {"temperature": plan.candidate_temperature, "seed": None}
    calls = [("warm", {}), ("greedy", {})] + [(f"k{k}", {"n": k, **sampled}) for k in plan.candidate_ks]
    for name, generation in calls:
        config = _direct_config(url, plan, rows, plan.candidate_requests, **generation)
        target = run_bench(config)["targets"]["vllm"]
        target.pop("samples", None)
        if name == "warm":
            continue
        candidates[name] = target
        say(f"candidate step {name}: p50 {target['latency_ms']['p50']} ms, p95 {target['latency_ms']['p95']} ms")
        report.save()
    candidates["defaults"] = candidate_defaults(
        candidates["greedy"]["latency_ms"]["p95"],
        {k: candidates[f"k{k}"]["latency_ms"]["p95"] for k in plan.candidate_ks})
    report.save()


def run_streaming(url: str, gateway_url: str, plan: SpecPlan, rows: tuple[Prompt, ...], entry: dict[str, Any],
                  report: Report) -> None:
    """Time to the first token and to the last byte, direct and through the gateway (which holds text back until
    it is checked), streamed."""
    streaming: dict[str, Any] = entry["streaming"]
    for cell in plan.stream_cells:
        result: dict[str, Any] = {}
        for path in ("direct", "gateway"):
            config = BenchConfig(target="vllm" if path == "direct" else "gateway", gateway_url=gateway_url,
                                 api_key=BENCH_KEY, vllm_url=url, vllm_model=DEFAULT_SERVED_MODEL_NAME,
                                 requests=cell.requests, concurrency=cell.concurrency, processes=cell.processes,
                                 stream=True, prompts=tagged_prompts(f"s{path[0]}{cell.concurrency}", rows),
                                 unique_prompts=True, max_tokens=plan.max_tokens,
                                 timeout_s=plan.request_timeout_s)
            target = run_bench(config)["targets"][config.target]
            target.pop("samples", None)
            result[path] = {key: target.get(key) for key in ("requests", "ok", "by_status", "req_per_s",
                                                             "latency_ms", "ttft_ms")}
        streaming[str(cell.concurrency)] = result
        say(f"streaming c={cell.concurrency}: ttft p50 direct {result['direct']['ttft_ms']['p50']} ms, gateway "
            f"{result['gateway']['ttft_ms']['p50']} ms; last byte p50 direct {result['direct']['latency_ms']['p50']}"
            f" ms, gateway {result['gateway']['latency_ms']['p50']} ms")
        report.save()


def run_dummy(plan: SpecPlan, scratch: Path, budget: Budget, report: Report, item: Method) -> None:
    """The production architecture's speed (dummy weights, 40 forced tokens), baseline and `item`, direct."""
    dummy: dict[str, Any] = report.body.setdefault("dummy15b", {})
    folder = write_model_folder(scratch / "qwen2.5-1.5b-dummy")
    for each in (SWEEP[0], item) if item.speculative else (SWEEP[0],):
        if budget.left() < plan.start_budget_s + 60:
            dummy[each.name] = {"skipped": "out of device time"}
            continue
        entry: dict[str, Any] = {"cells": {}, "note": "random weights: acceptance here says nothing about SQL"}
        dummy[each.name] = entry
        with serve(plan, each, folder, scratch, entry, budget, dummy=True) as url:
            common: dict[str, Any] = {"vllm_url": url, "vllm_model": DEFAULT_SERVED_MODEL_NAME,
                                      "output_tokens": plan.dummy_output_tokens, "timeout_s": plan.request_timeout_s}
            run_interleaved(("direct",), Cell(8, 16), rounds=1, **common)  # warm-up, unmeasured
            for cell in plan.dummy_cells:
                result = run_interleaved(("direct",), cell, rounds=1, **common)["direct"]
                result["acceptance"] = acceptance(result["vllm_counted"])
                entry["cells"][str(cell.concurrency)] = result
                say_cell(f"[1.5B dummy {each.name}]", cell.concurrency, result)
                report.save()


# ---------------------------------------------------------------------------------------------------- main


def run(plan: SpecPlan, *, out: Path, rows_file: Path, model_dir: Path | None, phases: tuple[str, ...],
        until: float, resume: bool, method_override: str | None, gateway_env: dict[str, str]) -> dict[str, Any]:
    previous = json.loads(out.read_text()) if resume and out.is_file() else {}
    report = Report(out, previous)
    dry_run = plan.mode == "dry-run"
    report.body.update({
        "benchmark": "gpu_speculative", "dry_run": dry_run,
        "command": "python3 -m benchmarks.gpu_speculative ... (docs/benchmarks.md, section 5)",
        "plan": asdict(plan) | {"methods": [m.name for m in plan.methods]}, "rows_file": rows_file.name,
        "host": host_facts(), "accelerator": accelerator_facts(),
        "design": {
            "model": MODEL if not dry_run else "a fake vLLM (benchmarks/fake_spec_vllm.py)",
            "prompts": "Spider dev rows within the gateway's caps, the training prompt, greedy, up to max_tokens at "
                       "the model's own length; each cell starts where the last stopped in the rows",
            "acceptance": "vllm:spec_decode_num_accepted_tokens_total / vllm:spec_decode_num_draft_tokens_total over "
                          "the cell; mean_acceptance_length = 1 + accepted / drafts",
            "gateway": "one worker, cache off, production settings otherwise; the candidate step as configured by "
                       "--gateway-env (CONTRACTS: off for serving figures)",
        },
    })
    report.body.setdefault("phases_run", [])
    budget = Budget(until)
    rows = load_rows(rows_file)
    with tempfile.TemporaryDirectory(prefix="sqlgate-spec-") as scratch_name:
        scratch = Path(scratch_name)
        if model_dir is None:
            model_dir = write_model_folder(scratch / "fake-model")  # dry run: the launcher checks a config.json
        try:
            if "sweep" in phases:
                run_sweep(plan, rows, model_dir, scratch, budget, report)
                report.body["phases_run"].append("sweep")
            item = chosen_method(report.body, method_override)
            if "chosen" in phases:
                run_chosen(plan, rows, model_dir, scratch, budget, report, item, gateway_env)
                report.body["phases_run"].append("chosen")
            if "dummy15b" in phases:
                run_dummy(plan, scratch, budget, report, item)
                report.body["phases_run"].append("dummy15b")
        except Exception as error:
            report.body["error"] = f"{type(error).__name__}: {str(error)[-3000:]}"
            raise
        finally:
            report.body["summary"] = summary(report.body, report.body["design"]["model"], dry_run)
            report.save()
            # One file for every server's log: what comes back from the host is limited to a few files.
            logs = [f"===== {log.name}\n{log_tail(log, 200)}" for log in sorted(scratch.glob("*.log"))]
            (out.parent / f"{out.stem}-logs.txt").write_text("\n".join(logs) + "\n")
    return report.body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_speculative", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the report (kept and extended with --resume)")
    parser.add_argument("--model-dir", type=Path, help="the real model's folder (GPU runs)")
    parser.add_argument("--rows", type=Path, default=None, help="JSONL rows {question, context} (default: Spider)")
    parser.add_argument("--phases", default="sweep,chosen,dummy15b", help="comma-separated: sweep, chosen, dummy15b")
    parser.add_argument("--methods", default=None, help=f"comma-separated subset of {[m.name for m in SWEEP]}")
    parser.add_argument("--method", default=None, help="the method for chosen/dummy15b instead of the sweep's choice")
    parser.add_argument("--until", type=float, default=None, help="epoch seconds to stop by (default: now + 540)")
    parser.add_argument("--resume", action="store_true", help="add to the report at --out instead of replacing it")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="KEY=VALUE",
                        help="a gateway setting for the chosen phase, e.g. the candidate step's off switch")
    parser.add_argument("--dry-run", action="store_true", help="every code path on CPU against a fake vLLM")
    args = parser.parse_args(argv)
    plan = DRY_RUN_PLAN if args.dry_run else SpecPlan()
    if args.methods:
        wanted = set(args.methods.split(","))
        plan = replace(plan, methods=tuple(m for m in plan.methods if m.name in wanted))
    rows_file = args.rows or default_rows_file()
    if rows_file is None:
        parser.error("no Spider rows found: pass --rows")
    if not args.dry_run and args.model_dir is None:
        parser.error("--model-dir is needed on the GPU (or --dry-run)")
    gateway_env = dict(item.split("=", 1) for item in args.gateway_env)
    until = args.until if args.until is not None else time.time() + 540
    os.environ.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")  # FlashInfer is not in the host's bundle
    body = run(plan, out=args.out, rows_file=rows_file, model_dir=args.model_dir, phases=tuple(args.phases.split(",")),
               until=until, resume=args.resume, method_override=args.method, gateway_env=gateway_env)
    print(json.dumps(body["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
