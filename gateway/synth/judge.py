"""Execution match on synthesized databases, test-suite style (Zhong et al. 2020): a prediction matches when it
returns the reference's rows on every instance. A reference that returns nothing on every instance (or fails to
run) cannot tell right from wrong: the row is undecidable, not counted."""

from __future__ import annotations

import hashlib
import itertools

from gateway.synth.execute import Outcome, ordered, row_sort_key, run
from gateway.synth.instances import build, plan_tables
from gateway.synth.literals import Literals, from_queries, from_question


def schema_columns(schema: str) -> frozenset[str]:
    return frozenset(column.name.lower() for table in plan_tables(schema) for column in table.columns)


def request_seed(schema: str, question: str) -> int:
    """The instances' seed: the same request always sees the same rows."""
    return int.from_bytes(hashlib.sha256(f"{schema}\x00{question}".encode()).digest()[:8], "big")


def execution_match(prediction: str | None, reference: str, *, schema: str, question: str) -> bool | None:
    """True / False, or None when the reference can't decide (empty everywhere, or it does not run)."""
    literals = Literals()
    from_question(question, literals)
    # The reference's literals only: the rows (and so whether the row is decidable) are the same for every
    # prediction judged against it; a prediction filtering on another value finds nothing and mismatches.
    from_queries([reference], literals, schema_columns(schema))
    instances = build(schema, literals, request_seed(schema, question))
    keep_order = ordered(reference)
    gold = run(reference, instances.images, keep_order)
    if gold.error is not None or gold.empty_everywhere:
        return None
    if not prediction or not prediction.strip():
        return False
    guess = run(prediction, instances.images, keep_order)
    return guess.error is None and same_results(guess, gold, keep_order)


MAX_PERMUTED_COLUMNS = 6


def same_results(guess: Outcome, gold: Outcome, keep_order: bool) -> bool:
    """Equal on every instance, allowing the columns in another order (`SELECT b, a` answers `SELECT a, b`), as
    Spider's execution evaluation does."""
    if guess.results == gold.results:
        return True
    widths = {len(row) for rows in (*guess.results, *gold.results) for row in rows}
    if len(widths) != 1 or (width := widths.pop()) < 2 or width > MAX_PERMUTED_COLUMNS:
        return False
    for order in itertools.permutations(range(width)):
        permuted = tuple(_reorder(rows, order, keep_order) for rows in guess.results)
        if permuted == gold.results:
            return True
    return False


def _reorder(rows: tuple[tuple[object, ...], ...], order: tuple[int, ...], keep_order: bool
             ) -> tuple[tuple[object, ...], ...]:
    moved = [tuple(row[i] for i in order) for row in rows]
    return tuple(moved if keep_order else sorted(moved, key=row_sort_key))
