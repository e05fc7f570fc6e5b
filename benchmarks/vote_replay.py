"""Replay the gateway's vote on a `make quality` rows file that kept each row's samples (`--samples K`): the
greedy answer (`direct_text`, the gateway's own greedy call) and the K samples of the gateway's own candidate call
(`direct_samples`, same seed), judged by the gateway's check, voted by canonical form and by results, under both
policies, and scored by execution match on synthesized databases. It answers "what would this vote have returned
on that run" without a model: the GPU run's samples are re-voted here on the CPU.

    python -m benchmarks.vote_replay reports/gpu_quality_rows.jsonl --out reports/gpu_vote_replay.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.quality_scoring import AGREEMENT_BUCKETS, fences_stripped, read_rows
from benchmarks.results import host_facts, say, write_report
from gateway.pipeline.candidates import Ballot, Candidate, vote
from gateway.pipeline.results_vote import results_vote
from gateway.pipeline.verdict import CheckOptions, judge
from gateway.sql_check import SqlPolicy
from gateway.synth.judge import execution_match

OPTIONS = CheckOptions(policy=SqlPolicy("read_only"))


def candidates_of(row: dict[str, Any]) -> list[Candidate]:
    """The greedy answer first, then the samples, each judged by the whole check."""
    texts = [(row.get("direct_text") or "", row.get("direct_finish_reason"))]
    texts += list(zip(row.get("direct_samples") or [], row.get("direct_samples_finish") or [], strict=False))
    return [Candidate(judge(text or "", reason, schema=row["context"], dialect="sqlite", options=OPTIONS), reason,
                      text or "") for text, reason in texts]


def replay_row(row: dict[str, Any]) -> dict[str, Any] | None:
    """Execution match of each way to answer this row, or None when the row can't be decided."""
    schema, question, gold = row["context"], row["question"], row["answer"]

    def matches(sql: str | None) -> bool:
        return bool(execution_match(sql, gold, schema=schema, question=question))

    direct = execution_match(fences_stripped(row.get("direct_text") or ""), gold, schema=schema, question=question)
    if direct is None:
        return None
    candidates = candidates_of(row)
    greedy = candidates[0]
    started = time.perf_counter()
    by_results = results_vote(candidates, schema=schema, question=question)
    vote_s = time.perf_counter() - started
    canonical = vote(candidates)

    def answer(ballot: Ballot, policy: str) -> str | None:
        if policy == "on_failure" and greedy.verdict.error_code is None:
            return greedy.verdict.source_query
        winner = ballot.winner
        return winner.verdict.source_query if winner is not None else None

    return {"direct": direct, "vote_s": vote_s, "agreement": by_results.ballot.agreement()["ratio"],
            **{f"{method}_{policy}": matches(answer(ballot, policy))
               for method, ballot in (("results", by_results.ballot), ("canonical", canonical))
               for policy in ("always", "on_failure")}}


def summarise(results: list[dict[str, Any]], undecidable: int) -> dict[str, Any]:
    n = len(results)

    def share(predicate: Callable[[dict[str, Any]], bool], rows: list[dict[str, Any]]) -> float | None:
        return round(sum(predicate(r) for r in rows) / len(rows), 4) if rows else None

    keys = ("direct", "results_always", "results_on_failure", "canonical_always", "canonical_on_failure")
    by_agreement = {}
    for floor, label in AGREEMENT_BUCKETS:
        upper = {0.75: 1.01, 0.5: 0.75, 0.0: 0.5}[floor]
        members = [r for r in results if floor <= r["agreement"] < upper]
        by_agreement[label] = {"rows": len(members), "results_always": share(lambda r: r["results_always"], members)}
    times = sorted(r["vote_s"] * 1000 for r in results)
    return {
        "decidable_rows": n, "undecidable_rows": undecidable,
        "execution_match": {key: share(lambda r, key=key: r[key], results) for key in keys},
        "results_always_minus_direct_pp": (round((share(lambda r: r["results_always"], results) or 0)
                                                  * 100 - (share(lambda r: r["direct"], results) or 0) * 100, 2)),
        "by_agreement_results_always": by_agreement,
        "vote_ms": {"p50": round(statistics.median(times), 2) if times else None,
                    "p95": round(times[int(len(times) * 0.95)], 2) if times else None,
                    "max": round(times[-1], 2) if times else None},
    }


def build_times_10_tables(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The synthesized databases' own cost for a 10-table schema (each row's tables plus distractors from the other
    databases, benchmarks/schema_scale_data.py): the issue's bound is 20 ms on this machine."""
    from benchmarks.schema_scale_data import scaled
    from gateway.synth import Literals, build, from_queries, from_question
    from gateway.synth.judge import request_seed, schema_columns

    times = []
    for item in scaled(rows, 10):
        question = str(item.row["question"])
        started = time.perf_counter()
        literals = Literals()
        from_question(question, literals)
        from_queries([str(item.row["answer"])], literals, schema_columns(item.schema))
        build(item.schema, literals, request_seed(item.schema, question))
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"schemas": len(times), "p50": round(statistics.median(times), 2),
            "p95": round(times[int(len(times) * 0.95)], 2), "max": round(times[-1], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vote_replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=Path, help="a quality rows file run with --samples K")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = [row for row in read_rows(args.rows) if row.get("direct_samples")]
    if not rows:
        parser.error(f"{args.rows} has no rows with direct_samples: run make quality with --samples K")
    replayed = [replay_row(row) for row in rows]
    results = [r for r in replayed if r is not None]
    report = {"benchmark": "vote_replay", "rows_file": str(args.rows), "rows": len(rows),
              "summary": {**summarise(results, len(replayed) - len(results)),
                          "synth_build_ms_10_tables": build_times_10_tables(rows)},
              "design": __doc__.split("\n\n")[0], "command": f"python -m benchmarks.vote_replay {args.rows}",
              "host": host_facts()}
    write_report(report, args.out)
    say(f"vote replay: {report['summary']['execution_match']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
