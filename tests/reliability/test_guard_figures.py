"""The guard figures the reliability report quotes, computed the way `make reliability` computes them."""

from __future__ import annotations

from tests.reliability.sql_guard import guard_figures
from tests.test_sql_guard_corpus import ADVERSARIAL, BENIGN


def test_the_report_refuses_every_adversarial_query_and_accepts_the_benign_ones() -> None:
    figures = guard_figures(examples=30)
    assert figures.adversarial == len(ADVERSARIAL) and figures.benign == len(BENIGN)
    assert figures.rejection_rate == 1.0, figures.adversarial_accepted_samples
    assert figures.acceptance_rate >= 0.99, figures.benign_refused_samples
    assert [run.examples for run in figures.generated] == [30] * len(figures.generated)
    assert all(run.failure is None for run in figures.generated), [run.failure for run in figures.generated]
    assert figures.without_schema["refused"] == figures.without_schema["total"] > 0
    assert set(figures.by_dialect) == {"sqlite", "postgres", "mysql", "duckdb", "tsql"}
    assert all(row["refused"] == row["total"] for row in figures.by_category.values()), figures.by_category
    assert figures.passed
