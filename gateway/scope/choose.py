"""Which tables to send when the whole schema does not fit the model's prompt: recall first, no vector database.

Each table gets a score from the question: its name's words (3 each, synonyms too), its columns' words (1 per
column that matches), and the question's values against its columns (a number favours numeric columns, a quoted
or capitalised value text columns). Then, in this order, as long as the prompt fits: the pinned tables, the
matching tables from the best down to a floor (RELATIVE_FLOOR of the best score), the tables that join two chosen
ones (a bridge like `Has_Pet` between `Student` and `Pets`), and the tables a chosen one joins to that match the
question at all. Whole tables only; ties keep the schema's order, so the choice is deterministic. Nothing that
matches nothing is sent, unless nothing matches at all (then the schema's first tables, as far as they fit).

Why a floor rather than filling the budget: sending every table that shares a word with the question (`name`,
`amount`) put ~10 look-alikes next to the right ones at 50 and 200 tables, and the real 0.5B model's execution
match fell 13-15 points against its own tables (reports/gpu_lease2/schema_scale.json). On the public rows a floor
of 0.3 keeps gold-table recall at 99.1 % (50 tables) and 99.2 % (200) while sending 4.4 and 6.2 tables instead of
9.6 and 12.4 (reports/schema_scale.json, docs/big-schemas.md).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.scope.tables import ScopeTable
from gateway.scope.words import MAX_SUFFIX, MIN_PREFIX, question_words, widened

NAME_WEIGHT = 3.0
COLUMN_WEIGHT = 1.0
VALUE_WEIGHT = 0.25
RELATIVE_FLOOR = 0.3  # a matching table scoring under this share of the best one is a look-alike, not a need
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_TEXT_VALUE = re.compile(r"'[^']+'|\"[^\"]+\"|(?<=\s)[A-Z][a-z]{2,}")
_NUMERIC_TYPES = ("INT", "REAL", "FLOA", "DOUB", "DEC", "NUM")


@dataclass(frozen=True)
class WordIndex:
    """A schema's name words, sorted for prefix search, and in how many tables each appears."""

    words: tuple[str, ...]
    spread: dict[str, int]

    def related_to(self, asked: frozenset[str]) -> set[str]:
        """The schema words that a question word is, or is a short ending away from (words.related, fast)."""
        hits = {word for word in asked if word in self.spread}
        for word in asked:
            if len(word) < MIN_PREFIX:
                continue
            start = bisect.bisect_left(self.words, word)
            for candidate in self.words[start:]:  # schema words that extend the question word
                if not candidate.startswith(word):
                    break
                if len(candidate) - len(word) <= MAX_SUFFIX:
                    hits.add(candidate)
            for cut in range(max(MIN_PREFIX, len(word) - MAX_SUFFIX), len(word)):  # ... or that it extends
                if word[:cut] in self.spread:
                    hits.add(word[:cut])
        return hits


def word_index(tables: Sequence[ScopeTable]) -> WordIndex:
    spread: dict[str, int] = {}
    for table in tables:
        for word in table.words.union(*(column_words for _, column_words, _ in table.columns)):
            spread[word] = spread.get(word, 0) + 1
    return WordIndex(tuple(sorted(spread)), spread)


def scores(question: str, tables: Sequence[ScopeTable], index: WordIndex | None = None) -> list[float]:
    """Each table's relevance to the question. A word weighs by how few tables hold it (inverse document
    frequency): `name` or `id`, in half the schema, says little; `highschooler` says which table."""
    index = index or word_index(tables)
    matched = index.related_to(widened(question_words(question)))
    total = max(1, len(tables))
    weights = {word: math.log(1 + total / index.spread[word]) for word in matched}

    def weight(name_words: frozenset[str]) -> float:
        return max((weights[word] for word in name_words if word in weights), default=0.0)

    has_number = bool(_NUMBER.search(question))
    has_text = bool(_TEXT_VALUE.search(question))
    out = []
    for table in tables:
        score = NAME_WEIGHT * sum(weights.get(word, 0.0) for word in table.words)
        score += COLUMN_WEIGHT * sum(weight(column_words) for _, column_words, _ in table.columns)
        if score > 0:
            kinds = [kind.upper() for _, _, kind in table.columns]
            numeric = [any(t in kind for t in _NUMERIC_TYPES) for kind in kinds]
            score += VALUE_WEIGHT * ((has_number and any(numeric)) + (has_text and not all(numeric)))
        out.append(score)
    return out


def choose(question: str, tables: Sequence[ScopeTable], pinned: Sequence[str],
           fits: Callable[[list[ScopeTable]], bool], index: WordIndex | None = None) -> list[ScopeTable]:
    """The tables to send, in the schema's order. `fits(tables)` says whether a prompt with them fits."""
    by_name = {table.name.lower(): table for table in tables}
    chosen: list[ScopeTable] = [by_name[name.lower()] for name in dict.fromkeys(pinned) if name.lower() in by_name]
    taken = {table.name.lower() for table in chosen}

    def offer(table: ScopeTable) -> None:
        if table.name.lower() not in taken and fits([*chosen, table]):
            chosen.append(table)
            taken.add(table.name.lower())

    relevance = scores(question, tables, index)
    floor = RELATIVE_FLOOR * max(relevance, default=0.0)
    ranked = sorted(((score, position) for position, score in enumerate(relevance) if score > 0 and score >= floor),
                    key=lambda item: (-item[0], item[1]))
    matching = [tables[position] for _, position in ranked]
    for table in matching:
        offer(table)
    for table in _bridges(chosen, tables):
        offer(table)
    matched = {table.name.lower() for table, score in zip(tables, relevance, strict=True) if score > 0}
    neighbours = [by_name[name] for near in list(chosen) for name in sorted(near.joins)
                  if name in by_name and name in matched]
    for table in neighbours:
        offer(table)
    if not matching:
        for table in tables:
            offer(table)
    order = {table.name.lower(): position for position, table in enumerate(tables)}
    return sorted(chosen, key=lambda table: order[table.name.lower()])


def _bridges(chosen: Sequence[ScopeTable], tables: Sequence[ScopeTable]) -> list[ScopeTable]:
    """Tables that join two chosen tables which do not join each other directly."""
    names = {table.name.lower() for table in chosen}
    bridges = []
    for table in tables:
        lower = table.name.lower()
        if lower not in names and len(table.joins & names) >= 2:
            bridges.append(table)
    return bridges
