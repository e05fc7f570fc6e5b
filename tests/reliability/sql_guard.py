"""The SQL guard's figures, from the guard owner's corpora and properties (tests/corpus/*.jsonl,
tests/test_sql_guard_*.py): adversarial rejection, benign acceptance, and a bounded generated run in which the guard
never raises and whatever it accepts re-parses to exactly one read-only query."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.reporting import with_reporter

from gateway.sql_check import SqlPolicy, check_sql
from tests.test_sql_guard_corpus import ADVERSARIAL, BENIGN, GROUNDING_ONLY, check, describe
from tests.test_sql_guard_properties import (
    DIALECTS,
    SCHEMA,
    SCHEMA_TEXT,
    SOUP,
    assert_really_one_read_query,
    mutated_queries,
    read_queries,
)


@dataclass
class GeneratedRun:
    name: str
    examples: int = 0
    accepted: int = 0
    failure: str | None = None
    seconds: float = 0.0


@dataclass
class GuardFigures:
    adversarial: int
    adversarial_refused: int
    adversarial_accepted_samples: list[str]
    benign: int
    benign_accepted: int
    benign_refused_samples: list[str]
    refusal_codes: dict[str, int]
    # {class or dialect: {"total", "refused"}} for the adversarial corpus as written (its schema, strict
    # grounding), and the same without any schema (what the deny-lists alone refuse; `ungrounded` left out)
    by_category: dict[str, dict[str, int]] = field(default_factory=dict)
    by_dialect: dict[str, dict[str, int]] = field(default_factory=dict)
    without_schema: dict[str, int] = field(default_factory=dict)
    benign_by_dialect: dict[str, dict[str, int]] = field(default_factory=dict)
    error_codes: dict[str, int] = field(default_factory=dict)
    generated: list[GeneratedRun] = field(default_factory=list)

    @property
    def rejection_rate(self) -> float:
        return self.adversarial_refused / self.adversarial

    @property
    def acceptance_rate(self) -> float:
        return self.benign_accepted / self.benign

    @property
    def passed(self) -> bool:
        deny_lists_hold = self.without_schema.get("refused") == self.without_schema.get("total")
        return (self.rejection_rate == 1.0 and self.acceptance_rate >= 0.99 and deny_lists_hold
                and all(run.failure is None for run in self.generated))

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "adversarial": {"total": self.adversarial, "refused": self.adversarial_refused,
                            "rejection_rate": round(self.rejection_rate, 4),
                            "accepted_samples": self.adversarial_accepted_samples,
                            "first_problem_codes": self.refusal_codes, "error_codes": self.error_codes,
                            "by_category": self.by_category, "by_dialect": self.by_dialect,
                            "without_schema": self.without_schema},
            "benign": {"total": self.benign, "accepted": self.benign_accepted,
                       "acceptance_rate": round(self.acceptance_rate, 4),
                       "refused_samples": self.benign_refused_samples, "by_dialect": self.benign_by_dialect},
            "generated": [{"strategy": run.name, "examples": run.examples, "accepted": run.accepted,
                           "failure": run.failure, "seconds": round(run.seconds, 1)} for run in self.generated],
        }


def corpus_figures() -> GuardFigures:
    adversarial = [(case, check(case)) for case in ADVERSARIAL]
    benign = [(case, check(case)) for case in BENIGN]
    return GuardFigures(
        adversarial=len(adversarial),
        adversarial_refused=sum(not result.valid for _, result in adversarial),
        adversarial_accepted_samples=[describe(case, result) for case, result in adversarial if result.valid][:5],
        benign=len(benign),
        benign_accepted=sum(result.valid for _, result in benign),
        benign_refused_samples=[describe(case, result) for case, result in benign if not result.valid][:5],
        refusal_codes=dict(Counter(result.problems[0].code for _, result in adversarial
                                   if result.problems).most_common()),
        by_category=_tally((case.category, not result.valid) for case, result in adversarial),
        by_dialect=_tally((case.dialect, not result.valid) for case, result in adversarial),
        without_schema=_tally(("all", not check_sql(case.sql, schema=None, dialect=case.dialect).valid)
                              for case, _ in adversarial if case.category not in GROUNDING_ONLY)["all"],
        benign_by_dialect={dialect: {"total": row["total"], "accepted": row["total"] - row["refused"]}
                           for dialect, row in _tally((case.dialect, not result.valid)
                                                      for case, result in benign).items()},
        error_codes=dict(Counter(str(result.error_code) for _, result in adversarial).most_common()),
    )


def _tally(outcomes: Iterable[tuple[str, bool]]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for key, refused in outcomes:
        row = table.setdefault(key, {"total": 0, "refused": 0})
        row["total"] += 1
        row["refused"] += refused
    return dict(sorted(table.items()))


def _generated(name: str, strategy: st.SearchStrategy[str], schema: str | None, examples: int) -> GeneratedRun:
    run = GeneratedRun(name)

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(sql=strategy, dialect=DIALECTS)
    def never_raises_and_accepts_only_one_read_query(sql: str, dialect: str) -> None:
        run.examples += 1
        result = check_sql(sql, schema=schema, dialect=dialect, policy=SqlPolicy.READ_ONLY)
        assert result.valid == (result.error_code is None)
        if result.valid:
            run.accepted += 1
            assert_really_one_read_query(sql, dialect, schema_tables=set(SCHEMA) if schema else None)

    started = time.perf_counter()
    try:
        with with_reporter(lambda _: None):
            never_raises_and_accepts_only_one_read_query()
    except Exception as failure:  # the property's counterexample, kept for the report
        run.failure = f"{type(failure).__name__}: {str(failure)[:300]}"
    run.seconds = time.perf_counter() - started
    return run


STRATEGIES: list[tuple[str, Callable[[], st.SearchStrategy[str]], str | None]] = [
    ("arbitrary text", lambda: st.text(max_size=400), None),
    ("SQL token soup", lambda: SOUP, SCHEMA_TEXT),
    ("mutated read queries", mutated_queries, SCHEMA_TEXT),
    ("generated read queries", read_queries, SCHEMA_TEXT),
]


def guard_figures(*, examples: int) -> GuardFigures:
    """The corpora, then `examples` generated inputs per strategy."""
    figures = corpus_figures()
    figures.generated = [_generated(name, make(), schema, examples) for name, make, schema in STRATEGIES]
    return figures
