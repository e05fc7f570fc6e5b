"""The guard against two corpora: every adversarial statement refused, real read queries accepted.

Print the per-category figures (quoted in docs/sql-guard.md) with:
    .venv/bin/python -m tests.test_sql_guard_corpus
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.sql_check import SqlCheck, SqlPolicy, check_sql

CORPUS = Path(__file__).parent / "corpus"
DIALECTS = {"sqlite", "postgres", "mysql", "duckdb", "tsql"}
BENIGN_MIN_RATE = 0.99
# Under ALLOW_WRITES these categories hold single INSERT / UPDATE / DELETE statements, which that policy allows.
WRITE_CATEGORIES = {"write", "data_modifying_cte"}
# Issue 13's classes, each written for every dialect where it means something (file reads and catalogs in all
# five). All but `ungrounded` must be refused by the deny-lists alone, without a schema to ground against.
ISSUE_13_CLASSES = {"file_table", "reserved_alias", "catalog_table", "settings_clause", "backslash_escape"}
GROUNDING_ONLY = {"ungrounded"}


@dataclass(frozen=True)
class Case:
    dialect: str
    sql: str
    category: str
    schema: str | None = None


def load(name: str) -> list[Case]:
    with (CORPUS / name).open(encoding="utf-8") as lines:
        return [Case(**json.loads(line)) for line in lines if line.strip()]


ADVERSARIAL = load("adversarial.jsonl")
BENIGN = load("benign.jsonl")


def check(case: Case, policy: SqlPolicy = SqlPolicy.READ_ONLY) -> SqlCheck:
    return check_sql(case.sql, schema=case.schema, dialect=case.dialect, policy=policy)


def describe(case: Case, result: SqlCheck) -> str:
    problems = "; ".join(f"{p.code}: {p.message}" for p in result.problems) or "no problems"
    return f"[{case.dialect}/{case.category}] {case.sql[:120]!r} -> {problems}"


def test_the_corpora_are_big_and_varied_enough() -> None:
    assert len(ADVERSARIAL) >= 1000 and len(BENIGN) >= 300
    assert {case.dialect for case in ADVERSARIAL} == DIALECTS == {case.dialect for case in BENIGN}
    for category in ("file_table", "catalog_table", "settings_clause", "reserved_alias", "ungrounded", "write",
                     "ddl", "multiple_statements", "session_transaction", "comment_smuggling", "deep_nesting"):
        assert {case.dialect for case in ADVERSARIAL if case.category == category} == DIALECTS, category
    assert {case.dialect for case in ADVERSARIAL if case.category == "backslash_escape"} >= {"postgres", "mysql"}
    assert {"date_spine", "lateral", "apply", "table_hint"} <= {case.category for case in BENIGN}
    assert min(Counter(case.dialect for case in BENIGN).values()) >= 40
    assert {"write", "ddl", "multiple_statements", "comment_smuggling", "string_smuggling", "data_modifying_cte",
            "select_into", "locking", "attach_pragma", "copy", "file_function", "sleep_function",
            "deep_nesting", "huge_input", "control_characters"} <= {case.category for case in ADVERSARIAL}
    assert any(len(case.sql) > 20_000 for case in ADVERSARIAL)
    assert any(case.sql.count("(") >= 5000 for case in ADVERSARIAL)
    assert all(case.schema for case in BENIGN)


def test_every_adversarial_statement_is_refused_under_read_only() -> None:
    accepted = [describe(case, result) for case in ADVERSARIAL if (result := check(case)).valid]
    print(f"adversarial refused: {len(ADVERSARIAL) - len(accepted)}/{len(ADVERSARIAL)}")
    assert accepted == []


def test_every_adversarial_statement_but_the_ungrounded_is_refused_without_a_schema_too() -> None:
    # What stands when there is no schema, or grounding is advisory: the allow-list and the deny-lists.
    accepted = []
    for case in ADVERSARIAL:
        if case.category in GROUNDING_ONLY:
            continue
        for schema, grounding in ((None, "strict"), (case.schema, "advisory")):
            result = check_sql(case.sql, schema=schema, dialect=case.dialect, grounding=grounding)
            if result.valid:
                accepted.append(f"{grounding}, schema={schema is not None}: {describe(case, result)}")
    assert accepted == []


def test_issue_13_classes_are_refused_as_unsafe_not_merely_ungrounded() -> None:
    wrong = [describe(case, result) for case in ADVERSARIAL if case.category in ISSUE_13_CLASSES
             and (result := check(case)).error_code not in ("unsafe_sql", "invalid_sql")]
    assert wrong == []


def test_tables_and_columns_outside_the_schema_are_refused_as_ungrounded() -> None:
    cases = [case for case in ADVERSARIAL if case.category in GROUNDING_ONLY]
    assert len(cases) >= 30
    wrong = [describe(case, result) for case in cases if (result := check(case)).error_code != "ungrounded_sql"]
    assert wrong == []
    advisory = [case for case in cases
                if check_sql(case.sql, schema=case.schema, dialect=case.dialect, grounding="advisory").valid]
    assert advisory == cases  # advisory grounding reports them instead


def test_adversarial_refusals_carry_an_error_code_and_a_reason() -> None:
    for case in ADVERSARIAL:
        result = check(case)
        assert result.error_code in ("unsafe_sql", "invalid_sql", "ungrounded_sql"), describe(case, result)
        assert result.problems and all(problem.message for problem in result.problems)


def test_allow_writes_refuses_everything_but_single_data_changes() -> None:
    accepted = [describe(case, result) for case in ADVERSARIAL
                if case.category not in WRITE_CATEGORIES
                and (result := check(case, SqlPolicy.ALLOW_WRITES)).valid]
    assert accepted == []


def test_benign_read_queries_are_accepted() -> None:
    refused = [describe(case, result) for case in BENIGN if not (result := check(case)).valid]
    rate = 1 - len(refused) / len(BENIGN)
    print(f"benign accepted: {len(BENIGN) - len(refused)}/{len(BENIGN)} = {rate:.1%}")
    assert rate >= BENIGN_MIN_RATE, "\n".join(refused)


def test_benign_queries_ground_against_their_own_schema() -> None:
    # Every benign query only uses tables and columns its schema declares, so any report is a false alarm.
    false_alarms = [describe(case, result) for case in BENIGN
                    if (result := check(case)).unknown_tables or result.unknown_columns]
    rate = 1 - len(false_alarms) / len(BENIGN)
    print(f"benign grounded without false alarms: {rate:.1%}")
    assert rate >= BENIGN_MIN_RATE, "\n".join(false_alarms)


def figures() -> str:
    """Per-category and per-dialect figures for both corpora, as a small text table."""
    rows = ["corpus       category               dialect   total  refused  codes"]
    for name, cases in (("adversarial", ADVERSARIAL), ("benign", BENIGN)):
        groups: dict[tuple[str, str], list[SqlCheck]] = {}
        for case in cases:
            groups.setdefault((case.category, case.dialect), []).append(check(case))
        for (category, dialect), results in sorted(groups.items()):
            refused = sum(not result.valid for result in results)
            codes = Counter(result.problems[0].code for result in results if not result.valid)
            listed = ", ".join(f"{code} {count}" for code, count in codes.most_common())
            rows.append(f"{name:<12} {category:<22} {dialect:<9} {len(results):>5}  {refused:>7}  {listed}")
        refused_total = sum(not check(case).valid for case in cases)
        rows.append(f"{name:<12} {'ALL':<22} {'':<9} {len(cases):>5}  {refused_total:>7}  "
                    f"({refused_total / len(cases):.1%} refused)")
    return "\n".join(rows)


@pytest.mark.parametrize("name", ["adversarial.jsonl", "benign.jsonl"])
def test_corpus_lines_have_exactly_the_documented_fields(name: str) -> None:
    with (CORPUS / name).open(encoding="utf-8") as lines:
        for line in lines:
            fields = set(json.loads(line))
            assert {"dialect", "sql", "category"} <= fields <= {"dialect", "sql", "category", "schema"}


if __name__ == "__main__":
    print(figures())
