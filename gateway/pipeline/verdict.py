"""The check chain for one model answer: clean -> not truncated -> guard, grounding and compile in the model's
dialect -> transpile to the analyst's dialect -> guard again there -> the target engine (DuckDB in process; SQL
Server: none). Pure and synchronous: the same verdict for the same inputs, whether the text came from vLLM, a
candidate or the cache. A target engine reached over the network (PostgreSQL, MySQL check databases) is asked by
`in_target_engine`, which the pipeline runs off the event loop under a deadline."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from gateway.sql_check import MODEL_DIALECT, SqlPolicy, TranspileRefused, check_sql, extract_sql, transpile_sql
from gateway.sql_check.dialect_names import dialect_label
from gateway.sql_check.extract import looks_like_sql
from gateway.sql_check.target import TargetCheck, TargetEngines

# Bumped whenever the chain below can judge the same text differently; part of every cache key.
CHECK_VERSION = "5"
_NOT_TRANSLATED = TargetCheck(level=None).as_fields()


@dataclass(frozen=True)
class Verdict:
    """The outcome of the chain: `query` may leave the gateway only when `error_code` is None."""

    query: str  # in the requested dialect (the source text itself when the dialects match)
    source_query: str  # what the model wrote, cleaned
    check: dict[str, Any]

    @property
    def error_code(self) -> str | None:
        code = self.check.get("error_code")
        return str(code) if code else None


@dataclass(frozen=True)
class CheckOptions:
    policy: SqlPolicy
    grounding: str = "strict"
    unverified: str = "refuse"  # SQLGATE_SQL_UNVERIFIED: SQL reading schema text that could not be read
    expensive: str = "refuse"  # SQLGATE_SQL_EXPENSIVE: SQL that only asks for huge output or unbounded work
    # The target engines (DuckDB always; PostgreSQL / MySQL check databases when configured). None: DuckDB only.
    engines: TargetEngines | None = None


def judge(raw_text: str, finish_reason: str | None, *, schema: str, dialect: str, options: CheckOptions) -> Verdict:
    """Run the whole chain on a model's raw text."""
    return judge_query(extract_sql(raw_text), finish_reason, schema=schema, dialect=dialect, options=options)


@functools.lru_cache(maxsize=4096)
def _memo(query: str, truncated: bool, schema: str, dialect: str, options: CheckOptions) -> Verdict:
    # Memoised per process: the chain is deterministic for the same code, so a cache hit re-checked here costs a
    # lookup; a fixed guard ships as a new process (and a new CHECK_VERSION), which starts with an empty memo.
    return _judge(query, truncated, schema, dialect, options)


def judge_query(query: str, finish_reason: str | None, *, schema: str, dialect: str, options: CheckOptions
                ) -> Verdict:
    """The chain on already-extracted SQL (the cache keeps the model's text, not the verdict)."""
    return _memo(query, finish_reason == "length", schema, dialect, options)


def _judge(query: str, truncated: bool, schema: str, dialect: str, options: CheckOptions) -> Verdict:
    check = check_sql(query, schema=schema, dialect=MODEL_DIALECT, policy=options.policy,
                      grounding=options.grounding, unverified=options.unverified, expensive=options.expensive)
    result: dict[str, Any] = {**check.as_dict(), "query": query, "source_dialect": MODEL_DIALECT,
                              "dialect": MODEL_DIALECT, **_NOT_TRANSLATED}
    if truncated:
        # A length stop cuts the statement wherever the token budget ran out; a prefix can parse and even
        # compile (`... WHERE a = 1` of `... WHERE a = 1 AND b = 2`), so it is never an answer.
        refusal = _refused(result, code="truncated_sql", problem="truncated",
                           message="The model ran out of tokens before finishing the query.")
        return Verdict(query, query, refusal)
    if result["error_code"] == "invalid_sql" and not looks_like_sql(query):
        refusal = _refused(result, code="unanswerable_sql", problem="no_sql",
                           message="The model answered without a SQL query.")
        return Verdict(query, query, refusal)
    if result["error_code"] is not None or dialect == MODEL_DIALECT:
        return Verdict(query, query, result)
    return _in_target_dialect(query, schema, dialect, options, result)


def _in_target_dialect(query: str, schema: str, dialect: str, options: CheckOptions, source: dict[str, Any]
                       ) -> Verdict:
    try:
        text = transpile_sql(query, source=MODEL_DIALECT, target=dialect, schema=schema).text
    except TranspileRefused as refused:
        refusal = _refused(source, code="untranslatable_sql", problem="untranslatable", message=str(refused))
        return Verdict(query, query, refusal)
    again = check_sql(text, schema=schema, dialect=dialect, policy=options.policy, grounding=options.grounding,
                      unverified=options.unverified, expensive=options.expensive)
    result = {**again.as_dict(), "query": text, "source_dialect": MODEL_DIALECT, "dialect": dialect,
              **_NOT_TRANSLATED}
    if again.compiled is False and again.error_code == "invalid_sql":
        # The compile step's engine refuses what SQLite accepted (a DuckDB binder error): not kept. In the duckdb
        # dialect that engine is the target engine itself.
        if dialect == "duckdb":
            engine = (options.engines or _LOCAL_ONLY).check(text, schema=schema, dialect=dialect)
            if engine.refused is not None:
                return with_target(Verdict(text, query, result), engine, dialect)
        refusal = _refused(result, code="untranslatable_sql", problem="untranslatable",
                           message=f"The translated query does not compile in {dialect}: {again.compile_message}")
        return Verdict(text, query, refusal)
    if again.error_code is not None:
        return Verdict(text, query, result)
    # The compile step is authoritative in the model's dialect; the second check's own `compiled` is what the
    # check could say in the target dialect, the target engine's word comes next.
    result["source_compiled"] = source.get("compiled")
    verdict = Verdict(text, query, result)
    engines = options.engines or _LOCAL_ONLY
    if engines.remote(dialect):  # asked by the pipeline, off the event loop (in_target_engine)
        return with_target(verdict, TargetCheck.translation(f"the {dialect_label(dialect)} check database has not "
                                                            "been asked"), dialect)
    return with_target(verdict, engines.check(text, schema=schema, dialect=dialect), dialect)


_LOCAL_ONLY = TargetEngines()


def in_target_engine(verdict: Verdict, *, schema: str, dialect: str, engines: TargetEngines | None) -> Verdict:
    """The configured check database's word on a valid answer (a network call: run it off the event loop)."""
    if engines is None or verdict.error_code is not None or not engines.remote(dialect):
        return verdict
    return with_target(verdict, engines.check(verdict.query, schema=schema, dialect=dialect), dialect)


def with_target(verdict: Verdict, target: TargetCheck, dialect: str) -> Verdict:
    """The verdict with the target engine's word: its level, or its refusal (`untranslatable_sql`)."""
    if target.refused is not None:
        message = (f"{dialect_label(dialect)} refuses the translated query ({target.engine}: {target.refused}); "
                   "the model's SQLite can't be written faithfully there.")
        return refuse(verdict, code="untranslatable_sql", problem="target_refused", message=message,
                      **target.as_fields())
    return Verdict(verdict.query, verdict.source_query, {**verdict.check, **target.as_fields()})


def refuse(verdict: Verdict, *, code: str, problem: str, message: str, **extra: Any) -> Verdict:
    """The same answer refused with `code` (a step after the chain decided against it); `extra` joins the check."""
    return Verdict(verdict.query, verdict.source_query,
                   {**_refused(verdict.check, code=code, problem=problem, message=message), **extra})


def _refused(result: dict[str, Any], *, code: str, problem: str, message: str) -> dict[str, Any]:
    problems = [{"code": problem, "message": message}, *result.get("problems", [])]
    return {**result, "valid": False, "error_code": code, "problems": problems}

