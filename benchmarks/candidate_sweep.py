"""Choose the candidate step's k and strategy by measurement: for every row of a `make quality` run whose greedy
answer failed the gateway's check, draw the largest k once per strategy (one `n=k` call, the gateway's own
candidate fields) and replay the gateway's vote on the first 2, 4, ... samples.

    python -m benchmarks.candidate_sweep            # make candidate-sweep; docs/eval.md ("Choosing k")

The first k of K independent samples are distributed as k samples, so one call per row and strategy measures
every k at once. Each sample is judged by the gateway's judge (gateway/pipeline/verdict.py) and voted on by its
vote (gateway/pipeline/candidates.py): the figures are what the gateway would have answered, not a re-implementation.
Exact match is the publication's. Gains are stated against the whole file, as the quality report's are.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from benchmarks.processes import exit_cleanly_on_sigterm, log_tail
from benchmarks.quality import MODEL_DIR, SERVED_NAME, real_model_options
from benchmarks.quality_scoring import read_rows
from benchmarks.results import host_facts, latency_ms, say, write_report
from clients.sql_match import exact_match
from gateway.pipeline.candidates import Candidate, CandidateStrategy, candidate_fields, vote
from gateway.pipeline.verdict import CheckOptions, judge
from gateway.prompt import render_prompt
from gateway.settings import DEFAULT_GENERATION_CONFIG, load_generation_params
from gateway.sql_check import SqlPolicy
from launch.vllm_server import running_vllm

STRATEGIES: tuple[CandidateStrategy, ...] = ("sample", "grammar")
CHECK = CheckOptions(policy=SqlPolicy.READ_ONLY)  # the gateway's defaults: read-only, strict grounding


def failing_rows(rows_path: Path) -> tuple[list[dict[str, Any]], int]:
    """Rows whose greedy answer the gateway refused for a reason the candidate step tries to fix, and the file's
    row count."""
    rows = read_rows(rows_path)
    return [row for row in rows if isinstance(row.get("gateway_repair"), dict)], len(rows)


def ks_up_to(k_max: int) -> list[int]:
    ks, k = [], 2
    while k < k_max:
        ks.append(k)
        k *= 2
    return [*ks, k_max]


def draw(client: httpx.Client, row: dict[str, Any], strategy: CandidateStrategy, k_max: int) -> dict[str, Any]:
    generation = load_generation_params(DEFAULT_GENERATION_CONFIG)
    base = {**generation.as_upstream_fields(), **generation.candidates.as_upstream_fields(k_max)}
    payload = {"model": SERVED_NAME, "prompt": render_prompt(row["question"], row["context"]),
               **candidate_fields(base, strategy, row["context"])}
    started = time.perf_counter()
    try:
        try:
            response = client.post("/v1/completions", json=payload)
        except httpx.TransportError:  # a kept-alive connection the server closed meanwhile: one fresh try
            response = client.post("/v1/completions", json=payload)
        response.raise_for_status()
        choices = response.json()["choices"]
    except httpx.HTTPStatusError as error:
        return {"error": f"{error.response.status_code}: {error.response.text[:300]}", "texts": [],
                "seconds": time.perf_counter() - started}
    except (httpx.HTTPError, KeyError, ValueError) as error:
        return {"error": f"{type(error).__name__}: {error}"[:300], "texts": [],
                "seconds": time.perf_counter() - started}
    return {"texts": [choice.get("text") or "" for choice in choices],
            "finish_reasons": [choice.get("finish_reason") for choice in choices],
            "seconds": time.perf_counter() - started}


def replay(row: dict[str, Any], drawn: dict[str, Any], ks: list[int]) -> dict[str, Any]:
    """What the gateway answers with the first k samples, for each k."""
    candidates = [Candidate(judge(text, reason, schema=row["context"], dialect="sqlite", options=CHECK), reason, text)
                  for text, reason in zip(drawn["texts"], drawn.get("finish_reasons", []), strict=True)]
    by_k = {}
    for k in ks:
        ballot = vote(candidates[:k])
        winner = ballot.winner
        by_k[str(k)] = {"won": winner is not None,
                        "exact": winner is not None and exact_match(winner.verdict.query, row["answer"]),
                        "passing": ballot.passing}
    best = vote(candidates).winner
    return {"index": row.get("index"), "by_k": by_k, "seconds": round(drawn["seconds"], 2),
            "error": drawn.get("error"),
            "passing_all": sum(candidate.verdict.error_code is None for candidate in candidates),
            "winner_at_k_max": best.verdict.query if best is not None else None}


def summarise_strategy(results: list[dict[str, Any]], ks: list[int], file_rows: int) -> dict[str, Any]:
    tried = len(results)
    by_k = {}
    for k in ks:
        won = sum(result["by_k"][str(k)]["won"] for result in results)
        exact = sum(result["by_k"][str(k)]["exact"] for result in results)
        by_k[str(k)] = {"won": won, "won_rate": round(won / tried, 4) if tried else None,
                        "exact_match_gained_rows": exact,
                        "exact_match_gain_pp_of_file": round(100 * exact / file_rows, 2) if file_rows else None}
    errors = [result["error"] for result in results if result["error"] is not None]
    return {"rows": tried, "errors": len(errors), "error_examples": sorted(set(errors))[:5],
            "by_k": by_k, "call_latency_at_k_max": latency_ms([result["seconds"] for result in results])}


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    rows, file_rows = failing_rows(args.rows)
    vllm_log: str | None = None
    rows = rows[args.offset:]
    rows = rows[: args.limit] if args.limit else rows
    if not rows:
        raise SystemExit(f"no refused rows in {args.rows}: run `make quality` first")
    ks = ks_up_to(args.k_max)
    say(f"candidate sweep: {len(rows)} rows whose greedy answer failed the check (of {file_rows}); "
        f"k = {ks}; strategies {', '.join(STRATEGIES)}")
    results: dict[str, list[dict[str, Any]]] = {strategy: [] for strategy in STRATEGIES}
    with tempfile.TemporaryDirectory(prefix="sqlgate-sweep-") as scratch_name:
        scratch = Path(scratch_name)
        options = real_model_options(args.model, scratch, args.kv_cache)
        say("candidate sweep: starting vLLM (CPU) with the real model")
        with running_vllm(options, scratch / "vllm.log", deadline_s=600) as vllm, \
                httpx.Client(base_url=vllm.base_url, timeout=600) as client, \
                ThreadPoolExecutor(max_workers=args.concurrency) as pool, \
                tqdm(total=len(rows) * len(STRATEGIES), unit="call", desc="sweep") as bar:
            # Both strategies of a row side by side, so they see the same load.
            jobs = [(row, strategy, pool.submit(draw, client, row, strategy, args.k_max))
                    for row in rows for strategy in STRATEGIES]
            for row, strategy, job in jobs:
                results[strategy].append(replay(row, job.result(), ks))
                bar.update(1)
            errors = any(result["error"] for outcome in results.values() for result in outcome)
            vllm_log = log_tail(vllm.log_path, 40) if errors else None
    return {
        "benchmark": "candidate_sweep",
        "rows_in_file": file_rows,
        "rows_refused_by_greedy": len(rows),
        "k_max": args.k_max,
        "ks": ks,
        "strategies": {strategy: summarise_strategy(results[strategy], ks, file_rows) for strategy in STRATEGIES},
        "vllm_log_tail_on_errors": vllm_log,
        "per_row": results,
        "sampling": load_generation_params(DEFAULT_GENERATION_CONFIG).candidates.model_dump(),
        "design": {"rows": f"the rows of {args.rows} whose greedy answer the gateway refused (gateway_repair set)",
                   "k": "the first k of one n=k_max call per row and strategy, voted by the gateway's vote",
                   "exact_match": "publication's, of the gateway's answer; a row gains when the winner matches",
                   "concurrency": args.concurrency},
        "command": "python -m benchmarks.candidate_sweep",
        "host": host_facts(),
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.candidate_sweep",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=Path, default=Path("reports/quality_rows.jsonl"),
                        help="a make quality rows file (its refused rows are swept)")
    parser.add_argument("--out", type=Path, default=Path("reports/candidate_sweep.json"))
    parser.add_argument("--model", type=Path, default=MODEL_DIR)
    parser.add_argument("--k-max", type=int, default=8, help="samples per call; k = 2, 4, ... up to this")
    parser.add_argument("--offset", type=int, default=0, help="skip the first N refused rows")
    parser.add_argument("--limit", type=int, default=0, help="only the first N refused rows (0: all)")
    parser.add_argument("--concurrency", type=int, default=4, help="calls in flight")
    parser.add_argument("--kv-cache", default="1G")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    if args.k_max < 2:
        parser.error("--k-max must be at least 2")
    report = run(args)
    write_report(report, args.out)
    for strategy, figures in report["strategies"].items():
        gains = ", ".join(f"k={k}: +{v['exact_match_gain_pp_of_file']} pp ({v['won']} won)"
                          for k, v in figures["by_k"].items())
        say(f"candidate sweep: {strategy}: {gains}")
    say(f"candidate sweep: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
