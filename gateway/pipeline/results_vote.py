"""Agreement by what the candidates return: each passing candidate runs on small databases synthesized from the
request's schema (gateway/synth), seeded with the literals of the question and of the candidates, and candidates
whose rows are equal on every instance agree. Order-insensitive unless the query orders; the columns of a row are
compared as a set (`SELECT a, b` agrees with `SELECT b, a`). A candidate that fails to run agrees with nothing.
When no table of the schema could be built there is nothing to run on: agreement falls back to the SQL's
canonical form."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.pipeline.candidates import Ballot, Candidate, VoteForm, canonical_keys, vote
from gateway.synth import Literals, build, from_queries, from_question, run
from gateway.synth.execute import ordered, row_sort_key
from gateway.synth.judge import request_seed, schema_columns


@dataclass(frozen=True)
class ResultsBallot:
    ballot: Ballot
    seconds: float  # the vote's own time: building the databases and running every candidate
    instances: int


def results_vote(candidates: Sequence[Candidate], *, schema: str, question: str) -> ResultsBallot:
    """The vote by results over `candidates` (the greedy answer first)."""
    started = time.perf_counter()
    literals = Literals()
    from_question(question, literals)
    passing = [c.verdict.source_query for c in candidates if c.verdict.error_code is None]
    from_queries(passing, literals, schema_columns(schema))
    instances = build(schema, literals, request_seed(schema, question))
    if not instances.tables:
        return ResultsBallot(vote(candidates), time.perf_counter() - started, 0)

    def by_rows(passing: Sequence[Candidate]) -> list[VoteForm | None]:
        forms: list[VoteForm | None] = []
        memo: dict[str, VoteForm | None] = {}  # samples often repeat a query word for word
        for candidate in passing:
            sql = candidate.verdict.source_query
            if sql not in memo:
                outcome = run(sql, instances.images)
                memo[sql] = None if outcome.error is not None else VoteForm(
                    repr(tuple(_cells_as_sets(rows, ordered(sql)) for rows in outcome.results)),
                    outcome.empty_everywhere)
            forms.append(memo[sql])
        return forms

    ballot = vote(candidates, by_rows, method="results")
    return ResultsBallot(ballot, time.perf_counter() - started, len(instances.images))


def _cells_as_sets(rows: tuple[tuple[object, ...], ...], keep_order: bool) -> tuple[tuple[object, ...], ...]:
    """Each row's cells in a fixed order, whatever the column order the query chose (rows re-sorted after, unless
    the query orders them)."""
    cells = [tuple(sorted(row, key=lambda cell: row_sort_key((cell,)))) for row in rows]
    return tuple(cells if keep_order else sorted(cells, key=row_sort_key))


__all__ = ["ResultsBallot", "canonical_keys", "results_vote"]
