"""Do the answers in the analyst's dialect return SQLite's rows? For every public row, the gold SQL and the
gateway's own answer (`make quality`'s rows file: `gateway_sql` where `gateway_status` is 200) go through the
gateway's dialect step exactly as the pipeline runs it (`judge_query`, then the check database for PostgreSQL and
MySQL), and every answer it returns runs on the real engine against small databases built from the row's schema
(benchmarks/dialect_data.py); its rows are compared with what the SQLite query returns on the same data.

    python -m benchmarks.dialect_engines [--data FILE] [--answers reports/quality_rows.jsonl]
        [--dialects postgres,duckdb,mysql] [--limit N] [--baseline] [--out reports/dialect_engines.json]

PostgreSQL and MariaDB are throwaway servers the script starts (benchmarks/engine_servers.py) and removes;
MariaDB is measured only where it can run (the report says why not otherwise); DuckDB runs in process.
`summary.<dialect>` = {same_result: answers with SQLite's rows / answers returned, refused: refusals / queries
tried, target_errors: answers the engine raised on, answers}. docs/eval.md quotes the figures."""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot

from benchmarks.dialect_data import Instance, TableData, comparable, instances
from benchmarks.dialect_runners import Engines, TooLarge
from benchmarks.dialect_ties import allowed_by_ties, nested_tie_variants, with_keys
from benchmarks.engine_servers import EngineUnavailable, throwaway_mariadb, throwaway_postgres
from gateway.pipeline.verdict import CheckOptions, in_target_engine, judge_query
from gateway.sql_check import SqlPolicy
from gateway.sql_check.target import TargetEngines
from gateway.synth.execute import ordered

DEFAULT_DATA = Path("/work/shared/data/spider_dev_public.jsonl")
DEFAULT_ANSWERS = Path("reports/quality_rows.jsonl")
DIALECTS = ("postgres", "duckdb", "mysql")


@dataclass(frozen=True)
class Query:
    row: int
    origin: str  # "gold" or "gateway"
    sql: str
    schema: str
    question: str


def load_queries(data: Path, answers: Path | None, limit: int | None = None) -> list[list[Query]]:
    """Per public row, the gold SQL and the gateway's answer (when it returned one)."""
    gateway: dict[int, str] = {}
    if answers is not None and answers.exists():
        for line in answers.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                if record.get("gateway_status") == 200 and record.get("gateway_sql"):
                    gateway[int(record["index"])] = str(record["gateway_sql"])
    rows = []
    for index, line in enumerate(data.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        record = json.loads(line)
        queries = [Query(index, "gold", record["answer"], record["context"], record["question"])]
        if index in gateway:
            queries.append(Query(index, "gateway", gateway[index], record["context"], record["question"]))
        rows.append(queries)
    return rows[:limit] if limit else rows


def _dialect_step(query: Query, dialect: str, options: CheckOptions) -> dict[str, Any]:
    verdict = judge_query(query.sql, "stop", schema=query.schema, dialect=dialect, options=options)
    verdict = in_target_engine(verdict, schema=query.schema, dialect=dialect, engines=options.engines)
    check = verdict.check
    return {"status": 200 if verdict.error_code is None else 422, "code": verdict.error_code, "text": verdict.query,
            "target_verified": check.get("target_verified"), "message": (check.get("problems") or [{}])[0].get(
                "message") if verdict.error_code else check.get("target_message")}


def _sqlglot_alone(query: Query, dialect: str) -> dict[str, Any]:
    try:
        text = sqlglot.transpile(query.sql, read="sqlite", write=dialect,
                                 unsupported_level=sqlglot.ErrorLevel.RAISE)[0]
    except (sqlglot.errors.SqlglotError, RecursionError) as error:
        return {"status": 422, "code": "untranslatable_sql", "text": query.sql, "message": str(error)[:200]}
    return {"status": 200, "code": None, "text": text, "target_verified": None, "message": None}


def _run(session: Any, sql: str, keep_order: bool) -> tuple[str, Any]:
    try:
        return "rows", comparable(session.run(sql), keep_order)
    except TooLarge:
        return "too_large", None
    except Exception as error:  # the engine's error, whatever its driver calls it
        return "error", " ".join(str(error).split())[:300]


def measure_row(queries: list[Query], dialects: Sequence[str], options: CheckOptions, engines: Engines,
                baseline: bool = False) -> Iterator[dict[str, Any]]:
    """One record per (query, dialect[, sqlglot alone]): what the dialect step said and what the engine returned."""
    first = queries[0]
    data = instances(first.schema, first.question, [query.sql for query in queries])
    plans = [(number, dialect, variant, (_sqlglot_alone(query, dialect) if variant == "sqlglot_alone"
                                         else _dialect_step(query, dialect, options)))
             for number, query in enumerate(queries) for dialect in dialects
             for variant in (("gateway", "sqlglot_alone") if baseline else ("gateway",))]
    outcomes: list[list[tuple[str, Any]]] = [[] for _ in plans]
    expected: list[list[tuple[str, Any]]] = [[] for _ in queries]
    for number, instance in enumerate(data):
        name = f"r{first.row}_{number}"
        with engines.session("sqlite", instance, first.schema, name) as lite:
            for position, query in enumerate(queries):
                expected[position].append(_run(lite, query.sql, ordered(query.sql)))
        for dialect in dialects:
            with engines.session(dialect, instance, first.schema, name) as session:
                for index, (position, plan_dialect, _, step) in enumerate(plans):
                    if plan_dialect == dialect and step["status"] == 200:
                        outcomes[index].append(_run(session, step["text"], ordered(queries[position].sql)))
    alternatives = _Alternatives(engines, data, first.schema)
    for index, (position, dialect, variant, step) in enumerate(plans):
        query = queries[position]
        outcome = _outcome(step, expected[position], outcomes[index])
        if outcome["kind"] == "different":
            outcome = alternatives.reconsider(query.sql, expected[position], outcomes[index], outcome)
        yield {"row": query.row, "origin": query.origin, "dialect": dialect, "variant": variant, "sql": query.sql,
               **step, "outcome": outcome}


class _Alternatives:
    """The results SQLite's query allows besides the one it gave: where its answer depends on an accident of its
    plan (ties under ORDER BY ... LIMIT, at the top or in a value subquery; a bare column; the physical order of
    rows), an engine that returns another allowed result returns SQLite's result."""

    ORDERS = 8

    def __init__(self, engines: Engines, data: list[Instance], schema: str) -> None:
        self._engines, self._data, self._schema = engines, data, schema

    def reconsider(self, sql: str, expected: list[tuple[str, Any]], got: list[tuple[str, Any]],
                   outcome: dict[str, Any]) -> dict[str, Any]:
        keyed = with_keys(sql)
        for number, instance in enumerate(self._data):
            if got[number][1] == expected[number][1]:
                continue
            if not any(self._allowed(shuffled, sql, keyed, got[number]) for shuffled in
                       (instance, *(_reordered(instance, order) for order in range(self.ORDERS)))):
                return outcome
        return {"kind": "same", "allowed_alternative": True}

    @staticmethod
    def _within_ties(lite: Any, keyed: tuple[str, int, int | None, int], got: Any) -> bool:
        sql, width, limit, offset = keyed
        try:
            full = lite.run(sql)
        except Exception:  # the keyed variant did not run: no verdict beyond the plain comparison
            return False
        return allowed_by_ties(full, width, limit, offset, got)

    def _allowed(self, instance: Instance, sql: str, keyed: tuple[str, int, int | None, int] | None,
                 got: tuple[str, Any]) -> bool:
        """With the rows in this physical order: does SQLite give `got`, or allow it (ties)?"""
        with self._engines.session("sqlite", instance, self._schema, "allowed") as lite:
            if _run(lite, sql, ordered(sql)) == got:
                return True
            if keyed is not None and self._within_ties(lite, keyed, got[1]):
                return True
            return any(_run(lite, variant, ordered(sql)) == got for variant in nested_tie_variants(sql, lite.run))


def _reordered(instance: Instance, order: int) -> Instance:
    if order == 0:
        return tuple(TableData(t.name, t.columns, tuple(reversed(t.rows))) for t in instance)
    shuffler = random.Random(order)
    return tuple(TableData(t.name, t.columns, tuple(shuffler.sample(t.rows, len(t.rows)))) for t in instance)


def _outcome(step: dict[str, Any], expected: list[tuple[str, Any]], got: list[tuple[str, Any]]) -> dict[str, Any]:
    if step["status"] != 200:
        return {"kind": "refused"}
    if not expected:
        return {"kind": "undecided", "why": "no instance could be built"}
    errors = [detail for kind, detail in got if kind == "error"]
    if errors:
        return {"kind": "target_error", "error": errors[0]}
    if any(kind != "rows" for kind, _ in expected) or any(kind != "rows" for kind, _ in got):
        return {"kind": "undecided", "why": "SQLite raised or a result was too large to compare"}
    for (_, want), (_, have) in zip(expected, got, strict=True):
        if want != have:
            return {"kind": "different", "sqlite": list(want)[:5], "target": list(have)[:5]}
    return {"kind": "same"}


def summarize(records: list[dict[str, Any]], dialect: str, variant: str = "gateway") -> dict[str, Any]:
    mine = [record for record in records if record["dialect"] == dialect and record["variant"] == variant]
    kinds = Counter(record["outcome"]["kind"] for record in mine)
    answers = len(mine) - kinds["refused"]
    decided = answers - kinds["undecided"]
    return {
        "same_result": round(kinds["same"] / answers, 4) if answers else None,
        "same_result_decided": round(kinds["same"] / decided, 4) if decided else None,
        "refused": round(kinds["refused"] / len(mine), 4) if mine else None,
        "target_errors": kinds["target_error"],
        "answers": answers,
        "tried": len(mine),
        "same": kinds["same"], "different": kinds["different"], "undecided": kinds["undecided"],
        # same only as a result SQLite itself allows on the data (ties, bare columns, row order): counted in `same`
        "same_as_allowed_alternative": sum(1 for r in mine if r["outcome"].get("allowed_alternative")),
        "by_origin": {origin: dict(Counter(r["outcome"]["kind"] for r in mine if r["origin"] == origin))
                      for origin in ("gold", "gateway")},
        "target_verified": dict(Counter(str(r.get("target_verified")) for r in mine if r["status"] == 200)),
    }


def measure(rows: list[list[Query]], dialects: Sequence[str], options: CheckOptions, engines: Engines,
            baseline: bool = False, progress: bool = False) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for number, queries in enumerate(rows):
        records.extend(measure_row(queries, dialects, options, engines, baseline))
        if progress and number % 50 == 0:
            print(f"  {number}/{len(rows)} rows", file=sys.stderr)
    return records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--answers", type=Path, default=DEFAULT_ANSWERS)
    parser.add_argument("--dialects", default=",".join(DIALECTS))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--baseline", action="store_true", help="also measure plain sqlglot.transpile")
    parser.add_argument("--out", type=Path, default=Path("reports/dialect_engines.json"))
    args = parser.parse_args(argv)
    dialects = [name.strip() for name in args.dialects.split(",") if name.strip()]
    report: dict[str, Any] = {"data": str(args.data), "answers": str(args.answers), "sqlglot": sqlglot.__version__,
                              "engines": {}, "not_measured": {}}
    with ExitStack() as stack:
        urls: dict[str, str] = {}
        postgres_admin = None
        if "postgres" in dialects:
            postgres = stack.enter_context(throwaway_postgres())
            urls["postgres"], report["engines"]["postgres"] = postgres.check_url, postgres.version()
            postgres_admin = postgres.admin_url
        mariadb_socket = None
        if "mysql" in dialects:
            try:
                mariadb = stack.enter_context(throwaway_mariadb())
            except EngineUnavailable as reason:
                report["not_measured"]["mysql"] = f"MariaDB can't run here: {reason}"
                dialects.remove("mysql")
            else:
                urls["mysql"], report["engines"]["mysql"] = mariadb.check_url, mariadb.version()
                mariadb_socket = str(mariadb.socket)
        if "duckdb" in dialects:
            import duckdb

            report["engines"]["duckdb"] = f"duckdb {duckdb.__version__}"
        targets = TargetEngines(postgres_url=urls.get("postgres"), mysql_url=urls.get("mysql"), timeout_s=5.0)
        stack.callback(targets.close)
        data_engines = Engines(postgres_admin, mariadb_socket)
        stack.callback(data_engines.close)
        rows = load_queries(args.data, args.answers, args.limit)
        options = CheckOptions(policy=SqlPolicy.READ_ONLY, engines=targets)
        records = measure(rows, dialects, options, data_engines, args.baseline, progress=True)
    report["rows"] = len(rows)
    report["queries"] = sum(len(queries) for queries in rows)
    report["summary"] = {dialect: summarize(records, dialect) for dialect in dialects}
    if args.baseline:
        report["sqlglot_alone"] = {dialect: summarize(records, dialect, "sqlglot_alone") for dialect in dialects}
    report["not_same"] = [record for record in records if record["variant"] == "gateway"
                          and record["outcome"]["kind"] not in ("same", "undecided")]
    report["undecided"] = [record for record in records if record["variant"] == "gateway"
                           and record["outcome"]["kind"] == "undecided"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    for dialect, figures in report["summary"].items():
        print(f"{dialect}: same result {figures['same_result']}, refused {figures['refused']}, "
              f"target errors {figures['target_errors']}, answers {figures['answers']}/{figures['tried']}")
    for dialect, reason in report["not_measured"].items():
        print(f"{dialect}: not measured: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
