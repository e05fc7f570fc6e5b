"""Which tables to send when the whole schema does not fit the model's prompt: recall first, no vector database.

What a table offers the question: its name's words (NAME_WEIGHT each, times the share of the name they make to the
power NAME_SHARE_POWER: `type` meets a third of `Ref_Template_Types`, all of `Types`), and for each question word a
column's words meet (COLUMN_WEIGHT, once per question word), every word weighed by how few tables hold it. A word
met only through the synonym list weighs SYNONYM_WEIGHT of a literal one. The question's values add a little where the
table has columns of their kind (a number favours numeric columns, a quoted or capitalised value text columns).

Then, as long as the prompt fits: the pinned tables; the matching tables (scoring at least RELATIVE_FLOOR of the
best), each time the one that adds most to what the chosen ones already offer, while it adds at least GAIN_FLOOR
of the best score; the tables that join two chosen ones (a bridge like `Has_Pet` between `Student` and `Pets`);
and the tables a chosen one joins to that still add something. Whole tables only; ties go to the plainer name,
then the schema's order, so the choice is deterministic. Nothing that matches nothing is sent, unless nothing
matches at all (then the schema's first tables, as far as they fit).

Why "adds": the real 0.5B model answers worse for every look-alike table next to the right ones, and most
look-alikes add nothing: a warehouse layer's copy (`stg_orders` beside `orders`) offers the same words, and a table
whose only match is a `name` or `age` column a chosen table already has says nothing new. Filling the budget with
every matching table cost 13-15 points of execution match against the model's own tables
(reports/gpu_lease2/schema_scale.json); a floor alone still sent 1.7 / 3.6 other databases' tables at 50 / 200
and cost 8.6 / 6.4 points (git show f7dc855:reports/schema_scale.json). Copies also count once when words are
weighed, so a table copied into eight layers is not eight times less telling.
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
SYNONYM_WEIGHT = 0.5  # `student` for a table named Highschooler: a hint, not the word itself
VALUE_WEIGHT = 0.25
RELATIVE_FLOOR = 0.3  # a matching table scoring under this share of the best one is a look-alike, not a need
GAIN_FLOOR = 0.21  # ... and one adding under this share of the best score to the chosen ones adds nothing needed
# A name weighs by the share of its words the question meets, to this power: `Ref_Template_Types` meeting "type" is
# a third of the name (0.58 of the weight), `Pets` meeting "pet" all of it. The square root, not the share itself:
# the share alone dropped a gold table (recall 0.9891 at 50 tables, benchmarks/schema_scale.py --pruning-only).
NAME_SHARE_POWER = 0.5
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_TEXT_VALUE = re.compile(r"'[^']+'|\"[^\"]+\"|(?<=\s)[A-Z][a-z]{2,}")
_NUMERIC_TYPES = ("INT", "REAL", "FLOA", "DOUB", "DEC", "NUM")

Offer = dict[tuple[str, object], float]  # ("name", table shape) or ("column", question word) -> weight


@dataclass(frozen=True)
class TableOffer:
    weights: Offer  # what the table offers the question: its score, and what it may add to the chosen tables
    covers: Offer  # ... and what it answers once chosen: a question word its name holds needs no column elsewhere


def shape(table: ScopeTable) -> tuple[str, ...]:
    """What a table holds, whatever its name: the copies a warehouse's layers make of one table share it."""
    return tuple(sorted(name.lower() for name, _, _ in table.columns)) or ("", table.name.lower())


@dataclass(frozen=True)
class WordIndex:
    """A schema's name words, sorted for prefix search; in how many tables each appears, copies counted once."""

    words: tuple[str, ...]
    spread: dict[str, int]
    shapes: int  # distinct tables, copies counted once

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
    by_shape: dict[tuple[str, ...], set[str]] = {}
    for table in tables:
        by_shape.setdefault(shape(table), set()).update(
            table.words.union(*(column_words for _, column_words, _ in table.columns)))
    spread: dict[str, int] = {}
    for words in by_shape.values():
        for word in words:
            spread[word] = spread.get(word, 0) + 1
    return WordIndex(tuple(sorted(spread)), spread, len(by_shape))


def offers(question: str, tables: Sequence[ScopeTable], index: WordIndex | None = None) -> list[TableOffer]:
    """What each table offers the question (module docstring). A word weighs by how few tables hold it (inverse
    document frequency): `name` or `id`, in half the schema, says little; `highschooler` says which table."""
    index = index or word_index(tables)
    asked = question_words(question)
    literal = index.related_to(asked)
    weight = {word: math.log(1 + index.shapes / index.spread[word]) for word in literal}
    answers: dict[str, set[str]] = {}  # schema word -> the question words it answers
    for word in asked:
        for met in index.related_to(widened(frozenset({word}))):
            answers.setdefault(met, set()).add(word)
            if met not in literal:
                weight[met] = SYNONYM_WEIGHT * math.log(1 + index.shapes / index.spread[met])
    out = []
    for table in tables:
        offer: Offer = {}
        covers: Offer = {}
        in_name = table.words & weight.keys()
        if in_name:
            share = (len(in_name) / len(table.words)) ** NAME_SHARE_POWER
            offer[("name", shape(table))] = NAME_WEIGHT * share * sum(weight[word] for word in in_name)
            for word in in_name:
                for question_word in answers[word]:
                    key = ("column", question_word)
                    covers[key] = max(covers.get(key, 0.0), NAME_WEIGHT * weight[word])
        for _, column_words, _ in table.columns:
            for word in column_words & weight.keys():
                for question_word in answers[word]:
                    key = ("column", question_word)
                    offer[key] = max(offer.get(key, 0.0), COLUMN_WEIGHT * weight[word])
        for offered_key, value in offer.items():
            covers[offered_key] = max(covers.get(offered_key, 0.0), value)
        out.append(TableOffer(offer, covers))
    return out


def scores(question: str, tables: Sequence[ScopeTable], table_offers: Sequence[TableOffer]) -> list[float]:
    """Each table's relevance to the question: all it offers, and a little for the question's values."""
    has_number = bool(_NUMBER.search(question))
    has_text = bool(_TEXT_VALUE.search(question))
    out = []
    for table, offer in zip(tables, table_offers, strict=True):
        score = sum(offer.weights.values())
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
    table_offers = offers(question, tables, index)
    offered = {table.name.lower(): offer for table, offer in zip(tables, table_offers, strict=True)}
    relevance = scores(question, tables, table_offers)
    chosen: list[ScopeTable] = []
    covered: Offer = {}

    def gain(table: ScopeTable) -> float:
        return sum(max(0.0, value - covered.get(key, 0.0))
                   for key, value in offered[table.name.lower()].weights.items())

    def take(table: ScopeTable) -> None:
        chosen.append(table)
        for key, value in offered[table.name.lower()].covers.items():
            covered[key] = max(covered.get(key, 0.0), value)

    def offer(table: ScopeTable) -> None:
        if table not in chosen and fits([*chosen, table]):
            take(table)

    for name in dict.fromkeys(name.lower() for name in pinned):
        if name in by_name:
            take(by_name[name])  # the caller checked that the pinned tables fit
    best_score = max(relevance, default=0.0)
    ranked = sorted((-score, position) for position, score in enumerate(relevance)
                    if score > 0 and score >= RELATIVE_FLOOR * best_score)
    matching = [tables[position] for _, position in ranked]
    waiting = [table for table in matching if table not in chosen]
    while waiting:  # the table that adds most to the chosen ones; of equals, the plainer name, then the higher score
        pick = max(waiting, key=lambda table: (gain(table), -len(table.words)))
        waiting.remove(pick)
        added = gain(pick)
        if added <= 0 or (chosen and added < GAIN_FLOOR * best_score):
            break
        offer(pick)
    for table in _bridges(chosen, tables):
        offer(table)
    for near in list(chosen):
        for name in sorted(near.joins):
            if name in by_name and gain(by_name[name]) > 0:
                offer(by_name[name])
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
