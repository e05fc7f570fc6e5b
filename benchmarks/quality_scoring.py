"""Every figure of reports/quality.json, computed from the per-row file (reports/quality_rows.jsonl) alone, so
anyone can recompute them: `python -m benchmarks.quality_scoring reports/quality_rows.jsonl`.

Exact match is the publication's (clients/sql_match.py: strip, lower-case, collapse whitespace, drop a trailing
`;`). The direct path's "fences stripped" variant takes the content of the first fenced block when there is one
(docs/eval.md, CONTRACTS.md). Compile figures use the gateway's own compile step (SQLite, the row's schema).
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlglot

from clients.sql_match import exact_match, normalised_match
from clients.stats import summarise
from gateway.sql_check import check_sql
from gateway.sql_check.compile import compile_sql
from gateway.synth.judge import execution_match

FENCE = re.compile(r"```(?:sql)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
OTHER_DIALECTS = ("postgres", "mysql", "tsql", "duckdb")
_VERDICT = {True: "compiled", False: "does_not_compile", None: "undecided"}


def fences_stripped(text: str) -> str:
    """The content of the first fenced block if there is one, else the whole text."""
    found = FENCE.search(text)
    return found.group(1) if found else text


def compiles(sql: str | None, schema: str) -> bool:
    return bool(sql and sql.strip()) and compile_sql(sql or "", schema=schema, dialect="sqlite").compiled is True


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _ms(values: Iterable[float]) -> dict[str, Any]:
    figures = summarise([value / 1000 for value in values], scale=1000.0)
    return {"p50_ms": figures.get("p50"), "p95_ms": figures.get("p95"), "p99_ms": figures.get("p99"),
            "n": figures.get("count")}


def score_rows(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The report's figures for these rows (each a line of quality_rows.jsonl)."""
    total = len(rows)
    direct = _direct(rows)
    gateway = _gateway(rows)
    by_db: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_db[str(row.get("db_id"))].append(row)
    per_database = {db: {"rows": len(group),
                         "direct_exact_match_fences_stripped": _direct(group)["exact_match_fences_stripped"],
                         "direct_compile_rate": _direct(group)["compile_rate"],
                         "gateway_exact_match": _gateway(group)["exact_match"],
                         "gateway_compile_rate_of_200": _gateway(group)["compile_rate_of_200"],
                         "gateway_refusal_rate": _gateway(group)["refusal_rate"]}
                    for db, group in sorted(by_db.items())}
    fenced_em = direct["exact_match_fences_stripped"]
    return {
        "rows": total,
        "direct": direct,
        "gateway": gateway,
        "execution_match": execution_figures(rows),
        "gateway_minus_direct_fences_stripped_pp": (round((gateway["exact_match"] - fenced_em) * 100, 2)
                                                    if total and fenced_em is not None else None),
        "per_database": per_database,
    }


def _direct(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    answered = [row for row in rows if isinstance(row.get("direct_text"), str)]
    stripped = {id(row): fences_stripped(row["direct_text"]) for row in answered}
    return {
        "exact_match": _share(sum(exact_match(row["direct_text"], row["answer"]) for row in answered), len(rows)),
        "exact_match_fences_stripped": _share(sum(exact_match(stripped[id(row)], row["answer"]) for row in answered),
                                              len(rows)),
        "compile_rate": _share(sum(compiles(stripped[id(row)], row["context"]) for row in answered), len(rows)),
        "fenced_answers": _share(sum(bool(FENCE.search(row["direct_text"])) for row in answered), len(rows)),
        "errors": len(rows) - len(answered),
        **_ms(row["direct_ms"] for row in answered if row.get("direct_ms") is not None),
    }


def _gateway(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    ok = [row for row in rows if row.get("gateway_status") == 200 and isinstance(row.get("gateway_sql"), str)]
    refused = [row for row in rows if row.get("gateway_status") == 422]
    repaired = [row for row in rows if isinstance(row.get("gateway_repair"), dict)]
    repaired_ids = {id(row) for row in repaired}
    won = [row for row in repaired if row["gateway_repair"].get("won")]
    statuses = Counter(str(row.get("gateway_status")) for row in rows)
    codes = Counter(str(row.get("gateway_code")) for row in refused)
    repair_ms = [float(row["gateway_repair"]["latency_ms"]) for row in repaired
                 if row["gateway_repair"].get("latency_ms") is not None]
    return {
        "exact_match": _share(sum(exact_match(row["gateway_sql"], row["answer"]) for row in ok), len(rows)),
        "normalized_match": _share(sum(normalised_match(row["gateway_sql"], row["answer"], row["context"])
                                       for row in ok), len(rows)),
        "answered_200": _share(len(ok), len(rows)),
        "compile_rate_of_200": _share(sum(compiles(row["gateway_sql"], row["context"]) for row in ok), len(ok)),
        "refusal_rate": _share(len(refused), len(rows)),
        "refusal_codes": dict(sorted(codes.items())),
        "statuses": dict(sorted(statuses.items())),
        "gold_refusal_rate": gold_refusal_rate(rows),
        "repair_rate": _share(len(repaired), len(rows)),
        "repair_won_rate": _share(len(won), len(repaired)),
        "repair_timed_out_rate": _share(sum(bool(row["gateway_repair"].get("timed_out")) for row in repaired),
                                        len(repaired)),
        "repair_latency": _ms(repair_ms),
        "latency_without_repair": _ms(row["gateway_ms"] for row in rows
                                      if row.get("gateway_ms") is not None and id(row) not in repaired_ids),
        "latency_with_repair": _ms(row["gateway_ms"] for row in repaired if row.get("gateway_ms") is not None),
        **_ms(row["gateway_ms"] for row in rows if row.get("gateway_ms") is not None),
    }


AGREEMENT_BUCKETS = ((0.75, "0.75-1"), (0.5, "0.5-0.75"), (0.0, "0-0.5"))


def execution_match_of_row(row: dict[str, Any]) -> dict[str, bool | None]:
    """Test-suite style on databases synthesized from the row's schema (gateway/synth/judge.py): the direct path
    (fences stripped) and the gateway (its 200 answer; a refusal is a miss); None for both when the gold query
    returns nothing on every instance (undecidable)."""
    schema, question, gold = row["context"], row["question"], row["answer"]
    direct_text = row.get("direct_text")
    direct = execution_match(fences_stripped(direct_text) if isinstance(direct_text, str) else None, gold,
                             schema=schema, question=question)
    if direct is None and execution_match(gold, gold, schema=schema, question=question) is None:
        return {"direct": None, "gateway": None}
    answered = row.get("gateway_status") == 200 and isinstance(row.get("gateway_sql"), str)
    gateway = execution_match(row["gateway_sql"] if answered else None, gold, schema=schema, question=question)
    return {"direct": bool(direct), "gateway": bool(gateway)}


def execution_figures(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`execution_match` of the report (CONTRACTS.md): shares of the decidable rows, overall and by the gateway's
    agreement (the share of candidates that agreed with its answer), plus the vote's own time."""
    judged = [(row, execution_match_of_row(row)) for row in rows]
    decidable = [(row, verdict) for row, verdict in judged if verdict["gateway"] is not None]
    by_agreement: dict[str, Any] = {}
    for floor, label in AGREEMENT_BUCKETS:
        upper = {0.75: 1.01, 0.5: 0.75, 0.0: 0.5}[floor]
        members = [(row, v) for row, v in decidable if isinstance(row.get("gateway_agreement"), int | float)
                   and floor <= row["gateway_agreement"] < upper]
        by_agreement[label] = {"rows": len(members),
                               "gateway": _share(sum(bool(v["gateway"]) for _, v in members), len(members))}
    unvoted = [(row, v) for row, v in decidable if row.get("gateway_agreement") is None]
    by_agreement["none"] = {"rows": len(unvoted),
                            "gateway": _share(sum(bool(v["gateway"]) for _, v in unvoted), len(unvoted))}
    votes = [float(row["gateway_vote"]["ms"]) for row in rows if isinstance(row.get("gateway_vote"), dict)
             and row["gateway_vote"].get("ms") is not None]
    return {
        "direct": _share(sum(bool(v["direct"]) for _, v in decidable), len(decidable)),
        "gateway": _share(sum(bool(v["gateway"]) for _, v in decidable), len(decidable)),
        "decidable_rows": len(decidable),
        "undecidable_rows": len(judged) - len(decidable),
        "by_agreement": by_agreement,
        "vote_ms": {k: v for k, v in _ms(votes).items() if k != "n"} | {"n": len(votes)},
        "judge": "gateway/synth/judge.py: same rows as the gold query on every synthesized instance (3 instances, "
                 "seeded with the question's and the gold query's values; column order free; order only where the "
                 "gold query orders); gold returning nothing everywhere = undecidable",
    }


def gold_refusal_rate(rows: Sequence[dict[str, Any]]) -> float | None:
    """Share of reference queries the gateway's check refuses (no model involved, so every row of the file)."""
    return _share(sum(not check_sql(row["answer"], schema=row["context"]).valid for row in rows), len(rows))


def compile_paths(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """How often each compile path is taken, and what it decides, for the gold SQL of these rows written in each
    dialect (sqlglot's translation from SQLite; rows it can't translate are counted apart). No model needed."""
    unique = {(row["answer"], row["context"]) for row in rows}
    report: dict[str, Any] = {}
    for dialect in ("sqlite", *OTHER_DIALECTS):
        paths: Counter[str] = Counter()
        untranslatable = 0
        refused = 0
        for answer, context in sorted(unique):
            try:
                sql = answer if dialect == "sqlite" else _translate(answer, dialect, context)
            except Exception:
                untranslatable += 1
                continue
            result = compile_sql(sql, schema=context, dialect=dialect)
            paths[f"{result.path}:{_VERDICT[result.compiled]}"] += 1
            refused += not check_sql(sql, schema=context, dialect=dialect).valid
        report[dialect] = {"queries": len(unique), "untranslatable": untranslatable, "translated_by": _translator(),
                           "paths": dict(sorted(paths.items())), "check_refused": refused}
    return report


def _translate(sql: str, dialect: str, schema: str) -> str:
    """SQLite -> `dialect` the way the gateway writes answers for analysts (gateway.sql_check.transpile: SQLite's
    double-quoted strings stay strings) where that module exists; plain sqlglot otherwise."""
    try:
        from gateway.sql_check.transpile import transpile_sql  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return str(sqlglot.transpile(sql, read="sqlite", write=dialect)[0])
    return str(transpile_sql(sql, source="sqlite", target=dialect, schema=schema).text)


def _translator() -> str:
    try:
        import gateway.sql_check.transpile  # noqa: F401  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return "sqlglot.transpile"
    return "gateway.sql_check.transpile"


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows[int(row["index"])] = row  # a later line for the same row (a resumed retry) wins
    return [rows[index] for index in sorted(rows)]


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    rows = read_rows(Path(args[0] if args else "reports/quality_rows.jsonl"))
    print(json.dumps(score_rows(rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
