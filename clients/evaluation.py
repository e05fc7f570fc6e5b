"""`sqlgate eval`: ask the gateway every row of an evaluation file, score the answers, keep a resumable log.

The output folder holds `run.json` (what the run is: file digest, split, route, dialect), `rows.jsonl` (one
line per finished row, appended as rows finish, so a rerun skips them), `report.json` and `report.png`.
A row is finished when the gateway answered it (200) or refused it for a reason that asking again cannot
change (400/413/422, including SQL the check rejected); rate limits, 5xx and network failures leave it for the
rerun.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from clients.connection import DEFAULT_TIMEOUT_S, Connection
from clients.eval_data import EvalRow, file_digest, load_rows, select_rows
from clients.failures import ExitCode, GatewayFailure
from clients.gateway_client import Answer, Route, SqlGatewayClient
from clients.sql_match import exact_match, normalised_match
from clients.sqlite_check import compile_in_sqlite
from clients.stats import summarise

PUBLISHED_EXACT_MATCH = 0.754
TARGET_EXACT_MATCH = 0.70
ROWS_FILE = "rows.jsonl"
RUN_FILE = "run.json"
REPORT_FILE = "report.json"
CHART_FILE = "report.png"
# The gateway's 422 codes for SQL that failed its check (ungrounded: tables or columns the schema lacks).
CHECK_CODES = ("unsafe_sql", "invalid_sql", "ungrounded_sql")


class RunMismatch(ValueError):
    """The output folder belongs to a different run (another file, split, route or dialect)."""


@dataclass
class EvalConfig:
    path: Path
    connection: Connection
    out_dir: Path
    split: str = "all"
    limit: int | None = None
    concurrency: int = 4
    route: Route = "completions"
    dialect: str = "sqlite"
    model: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_retries: int = 4
    progress: bool = True
    fresh: bool = False
    chart: bool = True


@dataclass
class EvalOutcome:
    report: dict[str, Any]
    exit_code: ExitCode
    failures: Counter[str] = field(default_factory=Counter)


def score_row(
    row: EvalRow, answer: Answer | None, failure: GatewayFailure | None, dialect: str
) -> dict[str, Any]:
    """One finished row: the prediction, both matches, the check's verdicts and the SQLite compile check."""
    check: dict[str, Any] | None = (
        answer.check if answer is not None else (failure.check if failure else None)
    )
    prediction: str | None = answer.sql if answer is not None else None
    if prediction is None and check is not None and isinstance(check.get("query"), str):
        prediction = check["query"]  # a rejected answer still carries the SQL the model wrote
    reference_compile = compile_in_sqlite(row.answer, row.context)
    result: dict[str, Any] = {
        "index": row.index,
        "question": row.question,
        "answer": row.answer,
        "prediction": prediction,
        "status": 200 if answer is not None else (failure.status if failure else None),
        "error_code": failure.code if failure else None,
        "error_message": failure.message if failure else None,
        "valid": bool(check and check.get("valid")) and answer is not None,
        "read_only": bool(check and check.get("read_only")),
        "grounded": check is not None
        and not check.get("unknown_tables")
        and not check.get("unknown_columns"),
        "statement_type": check.get("statement_type") if check else None,
        "reference_compiles": reference_compile.compiles,
        "schema_error": reference_compile.schema_error,
        "cache": answer.cache if answer is not None else None,
        "latency_ms": round(answer.latency_s * 1000, 3) if answer is not None else None,
    }
    if prediction is None:
        result.update(exact_match=False, normalised_match=False, compiles=False, compile_error="no SQL")
        return result
    compiled = compile_in_sqlite(prediction, row.context)
    result.update(
        exact_match=exact_match(prediction, row.answer),
        normalised_match=normalised_match(prediction, row.answer, row.context, dialect),
        compiles=bool(compiled.compiles),
        compile_error=compiled.error or compiled.schema_error,
    )
    return result


class ResultStore:
    """`rows.jsonl` in the output folder: finished rows, appended and flushed one by one."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.rows_path = out_dir / ROWS_FILE
        self.run_path = out_dir / RUN_FILE

    def prepare(self, identity: dict[str, Any], *, fresh: bool) -> None:
        """Create the folder; refuse to mix runs unless `fresh`, which starts over."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if fresh:
            self.rows_path.unlink(missing_ok=True)
        elif self.run_path.exists():
            previous = json.loads(self.run_path.read_text(encoding="utf-8"))
            differing = sorted(key for key in identity if previous.get(key) != identity[key])
            if differing:
                raise RunMismatch(
                    f"{self.out_dir} holds a run with a different {', '.join(differing)}; "
                    "use another --out folder or --fresh to start over"
                )
        self.run_path.write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")

    def load(self) -> dict[int, dict[str, Any]]:
        """Finished rows by index; a torn last line (the process died mid-write) is ignored."""
        finished: dict[int, dict[str, Any]] = {}
        if not self.rows_path.exists():
            return finished
        for line in self.rows_path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("index"), int):
                finished[record["index"]] = record
        return finished

    def open_for_append(self) -> TextIO:
        handle = self.rows_path.open("a", encoding="utf-8")
        # A previous run killed mid-line leaves a fragment: start on a fresh line so this record stays whole.
        if handle.tell() > 0:
            with self.rows_path.open("rb") as reader:
                reader.seek(-1, 2)
                if reader.read(1) != b"\n":
                    handle.write("\n")
        return handle


def summarise_results(results: list[dict[str, Any]], selected: int) -> dict[str, Any]:
    """Shares over the rows that finished; `complete` says whether that is every selected row."""
    scored = len(results)

    def share(key: str) -> float | None:
        return round(sum(1 for r in results if r.get(key) is True) / scored, 4) if scored else None

    reference_known = [r for r in results if r.get("reference_compiles") is not None]
    return {
        "rows_selected": selected,
        "rows_scored": scored,
        "complete": scored == selected,
        "exact_match": share("exact_match"),
        "exact_match_count": sum(1 for r in results if r.get("exact_match") is True),
        "normalised_match": share("normalised_match"),
        "valid_sql": share("valid"),
        "read_only_sql": share("read_only"),
        "schema_grounded_sql": share("grounded"),
        "compiles_sqlite": share("compiles"),
        "reference_compiles_sqlite": (
            round(sum(1 for r in reference_known if r["reference_compiles"]) / len(reference_known), 4)
            if reference_known
            else None
        ),
        "rejected_by_check": sum(
            1
            for r in results
            if r.get("status") == 422 and r.get("error_code") in CHECK_CODES
        ),
        "refused_input": sum(
            1
            for r in results
            if r.get("status") not in (200, None) and r.get("error_code") not in CHECK_CODES
        ),
        "cache_hits": sum(1 for r in results if r.get("cache") == "hit"),
        "latency_ms": summarise(
            r["latency_ms"] for r in results if isinstance(r.get("latency_ms"), int | float)
        ),
    }


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    from tqdm import tqdm  # type: ignore[import-untyped]

    return tqdm(total=total, initial=initial, file=sys.stderr, disable=not enabled, unit="row", desc="eval")


async def _evaluate_pending(
    config: EvalConfig,
    pending: list[EvalRow],
    store: ResultStore,
    finished: dict[int, dict[str, Any]],
    on_row: Callable[[], None],
) -> tuple[Counter[str], list[GatewayFailure], str]:
    """Ask for every pending row with `concurrency` workers; returns failures that left rows unanswered."""
    failures: Counter[str] = Counter()
    unanswered: list[GatewayFailure] = []
    rows: Iterator[EvalRow] = iter(pending)
    async with SqlGatewayClient(
        config.connection, model=config.model, timeout_s=config.timeout_s, max_retries=config.max_retries
    ) as client:
        model = await client.discover_model() if config.route != "sql" else (config.model or "")
        with store.open_for_append() as handle:

            async def worker() -> None:
                for row in rows:  # one shared iterator: each row goes to exactly one worker
                    answer: Answer | None = None
                    failure: GatewayFailure | None = None
                    try:
                        answer = await client.ask(
                            row.question, row.context, dialect=config.dialect, route=config.route
                        )
                    except GatewayFailure as exc:
                        if exc.exit_code in (ExitCode.AUTH,) or exc.code == "model_not_found":
                            raise  # every other row would fail the same way
                        failure = exc
                    if failure is not None and not failure.final:
                        failures[f"{failure.status or 'network'} {failure.code or ''}".strip()] += 1
                        unanswered.append(failure)
                    else:
                        result = score_row(row, answer, failure, config.dialect)
                        finished[row.index] = result
                        handle.write(json.dumps(result, ensure_ascii=False) + "\n")
                        handle.flush()
                    on_row()

            async with asyncio.TaskGroup() as group:
                for _ in range(max(1, config.concurrency)):
                    group.create_task(worker())
    return failures, unanswered, model


def run_eval(config: EvalConfig) -> EvalOutcome:
    """Evaluate, write `report.json` (and `report.png`) into `config.out_dir`, and return the report."""
    rows = load_rows(config.path)
    selected = select_rows(rows, config.split, config.limit)
    store = ResultStore(config.out_dir)
    identity = {
        "source_sha256": file_digest(config.path),
        "split": config.split,
        "route": config.route,
        "dialect": config.dialect,
    }
    store.prepare({**identity}, fresh=config.fresh)
    finished = store.load()
    wanted = {row.index for row in selected}
    pending = [row for row in selected if row.index not in finished]
    started = time.time()
    progress = _progress_bar(len(selected), len(selected) - len(pending), config.progress)
    try:
        failures, unanswered, model = asyncio.run(
            _evaluate_pending(config, pending, store, finished, lambda: progress.update(1))
        )
    except* GatewayFailure as group:
        progress.close()
        first = group.exceptions[0]
        assert isinstance(first, GatewayFailure)
        raise first from None
    progress.close()
    results = [finished[index] for index in (row.index for row in selected) if index in finished]
    report: dict[str, Any] = {
        "source": str(config.path),
        **identity,
        "model": model or config.model,
        "gateway": config.connection.root_url,
        "rows_in_file": len(rows),
        "rows_resumed": len(selected) - len(pending),
        "published_exact_match": PUBLISHED_EXACT_MATCH,
        "target_exact_match": TARGET_EXACT_MATCH,
        **summarise_results(results, len(wanted)),
        "unanswered_by_error": dict(failures),
        "started_at": started,
        "duration_s": round(time.time() - started, 3),
        "normalisation": "see clients/sql_match.py and docs/eval.md",
    }
    (config.out_dir / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if config.chart:
        from clients.charts import eval_chart

        eval_chart(report, config.out_dir / CHART_FILE)
    exit_code = ExitCode.OK
    if unanswered:
        exit_code = max((failure.exit_code for failure in unanswered), key=_severity)
    return EvalOutcome(report=report, exit_code=exit_code, failures=failures)


def _severity(code: ExitCode) -> int:
    return {ExitCode.AUTH: 3, ExitCode.RATE_LIMITED: 2, ExitCode.UPSTREAM: 1}.get(code, 0)


def format_summary(report: dict[str, Any], out_dir: Path) -> str:
    """The human summary printed on stdout."""

    def pct(value: Any) -> str:
        return "   n/a" if value is None else f"{value * 100:5.1f} %"

    latency = report["latency_ms"]
    lines = [
        f"sqlgate eval: {report['rows_scored']}/{report['rows_selected']} rows scored "
        f"({report['split']} split of {report['source']}), route {report['route']}, model {report['model']}",
        f"  exact match (publication)   {pct(report['exact_match'])}  "
        f"({report['exact_match_count']}/{report['rows_scored']}; "
        f"published {PUBLISHED_EXACT_MATCH * 100:.1f} %)",
        f"  normalised match (sqlglot)  {pct(report['normalised_match'])}",
        f"  valid SQL (gateway check)   {pct(report['valid_sql'])}",
        f"  read-only                   {pct(report['read_only_sql'])}",
        f"  schema-grounded             {pct(report['schema_grounded_sql'])}",
        f"  compiles in SQLite          {pct(report['compiles_sqlite'])}  "
        f"(reference answers: {pct(report['reference_compiles_sqlite']).strip()})",
        f"  rejected by the check       {report['rejected_by_check']}",
        f"  latency p50/p95/p99         {_ms(latency['p50'])} / {_ms(latency['p95'])} / {_ms(latency['p99'])} ms",
    ]
    if not report["complete"]:
        lines.append(
            f"  INCOMPLETE: {report['rows_selected'] - report['rows_scored']} rows unanswered "
            f"({', '.join(f'{k}: {v}' for k, v in report['unanswered_by_error'].items()) or 'interrupted'}); "
            "rerun the same command to finish them"
        )
    lines.append(f"report: {out_dir / REPORT_FILE}")
    return "\n".join(lines)


def _ms(value: Any) -> str:
    return "n/a" if value is None else f"{value:.0f}"
