"""Re-binding a verified query to a new question's values: "singers from France" was verified as
`... WHERE Country = 'France'`; "singers from Spain" gets `... WHERE Country = 'Spain'`, every other byte of the
verified query kept.

Only the literals the old question's values appear in are touched (a quoted string, SQLite's double-quoted string
when no column or table has that name, a number). A value that changed but appears nowhere in the query, two
values that claim the same literal, a tokenizer that can't read the query: no re-binding (None), and the
question is answered by the model instead. Whatever comes out is checked again in full before it is used."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Literal

import sqlglot
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import TokenType

from gateway.memory.question import QuestionShape, Value

Kind = Literal["string", "word", "number"]
Span = tuple[int, int]


@dataclass(frozen=True)
class SqlLiteral:
    start: int  # first character in the query (the opening quote)
    end: int  # one past the last (the closing quote)
    kind: Kind
    text: str  # the value, unquoted and unescaped


def sql_literals(sql: str, names: frozenset[str]) -> list[SqlLiteral] | None:
    """Every literal of the query; a double-quoted word counts as a string unless `names` (the schema's table and
    column names, lower-cased) has it. None when the query can't be tokenized."""
    try:
        tokens = sqlglot.tokenize(sql, read="sqlite")
    except (SqlglotError, RecursionError, ValueError):
        return None
    found: list[SqlLiteral] = []
    for token in tokens:
        span = (token.start, token.end + 1)
        if token.token_type == TokenType.STRING:
            found.append(SqlLiteral(*span, "string", token.text))
        elif token.token_type == TokenType.NUMBER:
            found.append(SqlLiteral(*span, "number", token.text))
        elif (token.token_type == TokenType.IDENTIFIER and sql[token.start:token.start + 1] == '"'
              and token.text.lower() not in names):
            found.append(SqlLiteral(*span, "word", token.text))
    return found


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def place(value: Value, literal: SqlLiteral) -> Span | None:
    """Where in the literal's text the question's value is: all of it (a number, or a whole string equal to it)
    or a word-bounded part of a string (`'%France%'`, `'Paris, France'`), any case."""
    if value.number:
        same = _number(literal.text) == _number(value.text) if literal.kind == "number" else literal.text == value.text
        return (0, len(literal.text)) if same else None
    if literal.kind == "number":
        return None
    match = re.search(r"(?<![0-9A-Za-z])" + re.escape(value.text) + r"(?![0-9A-Za-z])", literal.text, re.IGNORECASE)
    return (match.start(), match.end()) if match else None


def _cased(written: str, old: str, new: str) -> str:
    """The new value in the case the query wrote the old one in."""
    if written == old:
        return new
    if written == old.lower():
        return new.lower()
    if written == old.upper():
        return new.upper()
    return new


def _quoted(literal: SqlLiteral, text: str) -> str:
    if literal.kind == "number":
        return text
    if literal.kind == "word":
        return '"' + text.replace('"', '""') + '"'
    return "'" + text.replace("'", "''") + "'"


def _narrowed(old: Value, new: Value) -> tuple[Value, Value]:
    """The part of two multi-word names that differs: "City Aberdeen" / "City Dunmore" -> "Aberdeen" / "Dunmore"
    (the question's own words around a name are not the value)."""
    a, b = old.text.split(), new.text.split()
    while len(a) > 1 and len(b) > 1 and a[0] == b[0]:
        a, b = a[1:], b[1:]
    while len(a) > 1 and len(b) > 1 and a[-1] == b[-1]:
        a, b = a[:-1], b[:-1]
    return Value(" ".join(a), number=False), Value(" ".join(b), number=False)


def _places(value: Value, literals: list[SqlLiteral]) -> list[tuple[int, Span]]:
    return [(index, span) for index, literal in enumerate(literals) if (span := place(value, literal)) is not None]


def rebind(sql: str, old: QuestionShape, new: QuestionShape, names: frozenset[str]) -> str | None:
    """`sql` (verified for `old`) with `new`'s values in place of `old`'s; `sql` itself when no value changed."""
    if old.template != new.template or len(old.values) != len(new.values):
        return None
    changed = [(a, b) for a, b in zip(old.values, new.values, strict=True) if not a.same(b)]
    if not changed:
        return sql
    literals = sql_literals(sql, names)
    if literals is None:
        return None
    edits: dict[int, list[tuple[Span, str]]] = {}
    kept: dict[int, list[Span]] = {}
    for a, b in zip(old.values, new.values, strict=True):
        places = _places(a, literals)
        if not places and not a.same(b) and not a.number:
            a, b = _narrowed(a, b)
            places = _places(a, literals)
        if a.same(b):
            for index, span in places:
                kept.setdefault(index, []).append(span)
            continue
        if not places or a.number != b.number:
            return None  # nowhere to put the new value: the query does not say where the old one went
        for index, span in places:
            written = literals[index].text[span[0]:span[1]]
            edits.setdefault(index, []).append((span, _cased(written, a.text, b.text)))
    for index, spans in edits.items():
        edits[index] = spans = sorted(set(spans))  # two equal values with the same new value: one edit
        changed_spans = [span for span, _ in spans]
        if len(set(changed_spans)) < len(changed_spans) or any(span in kept.get(index, []) for span in changed_spans):
            return None  # the same characters claimed for two different new values: which one goes there?
        taken = sorted(changed_spans + kept.get(index, []))
        if any(later[0] < earlier[1] for earlier, later in itertools.pairwise(taken)):
            return None  # overlapping claims
    out, at = [], 0
    for index in sorted(edits):
        literal = literals[index]
        text, cut = literal.text, 0
        pieces = []
        for (start, end), replacement in sorted(edits[index]):
            pieces += [text[cut:start], replacement]
            cut = end
        pieces.append(text[cut:])
        out += [sql[at:literal.start], _quoted(literal, "".join(pieces))]
        at = literal.end
    out.append(sql[at:])
    return "".join(out)
