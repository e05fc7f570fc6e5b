"""The values a question and its candidate queries talk about, so that synthesized rows make their filters select
something: `WHERE country = 'France'` binds 'France' to `country`; `age > 30` binds 30 to `age`; a quoted value or
a number in the question is kept unbound, for any column of its kind.

Pure and bounded: only the parse tree of each query is read, never executed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import SqlglotError

Value = int | float | str

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike)
_QUOTED = re.compile(r"""'([^'\n]{1,60})'|"([^"\n]{1,60})"|“([^”\n]{1,60})”""")
_NUMBER = re.compile(r"(?<![\w.])-?\d{1,9}(?:\.\d{1,6})?(?![\w.])")
# Capitalised words inside a sentence are often values ("students from France"): kept as unbound text.
_PROPER = re.compile(r"(?<=\s)[A-Z][a-zA-Z]{2,30}(?:\s[A-Z][a-zA-Z]{2,30})?")
MAX_BOUND_PER_COLUMN = 6
MAX_UNBOUND = 12


@dataclass
class Literals:
    """Values bound to a column name (lower-cased), and values with no column."""

    bound: dict[str, list[Value]] = field(default_factory=dict)
    unbound: list[Value] = field(default_factory=list)

    def bind(self, column: str, value: Value) -> None:
        values = self.bound.setdefault(column.lower(), [])
        if value not in values and len(values) < MAX_BOUND_PER_COLUMN:
            values.append(value)

    def add(self, value: Value) -> None:
        if value not in self.unbound and len(self.unbound) < MAX_UNBOUND:
            self.unbound.append(value)

    def key(self) -> tuple[object, ...]:
        """Everything that decides the data, hashable (the synthesized rows are a function of it)."""
        return (tuple(sorted((column, tuple(map(repr, values))) for column, values in self.bound.items())),
                tuple(map(repr, self.unbound)))


def from_question(question: str, literals: Literals) -> None:
    """Quoted values and numbers of the question (and capitalised words after the first)."""
    for match in _QUOTED.finditer(question):
        literals.add(next(group for group in match.groups() if group))
    for match in _NUMBER.finditer(question):
        literals.add(_number(match.group(0)))
    for match in _PROPER.finditer(question):
        literals.add(match.group(0))


def from_queries(queries: Iterable[str], literals: Literals, columns: frozenset[str] = frozenset(),
                 dialect: str = "sqlite") -> None:
    """Each comparison of a column with constants binds them to the column; other constants stay unbound. A
    double-quoted word that names no column of the schema (`columns`, lower-cased) is a string, as SQLite reads it
    (`name = "John"`, the training data's own style)."""
    for sql in queries:
        try:
            tree = sqlglot.parse_one(sql, read=dialect)
        except (SqlglotError, RecursionError, ValueError):
            continue
        if tree is None:
            continue
        for node in tree.find_all(*_COMPARISONS, exp.In, exp.Between):
            column = _column_of(node, columns)
            for value in _constants(node, columns):
                if column is not None:
                    literals.bind(column, value)
                else:
                    literals.add(value)


def _is_string_word(node: exp.Expression | None, columns: frozenset[str]) -> bool:
    """A double-quoted identifier that names no column: SQLite's string fallback."""
    if not isinstance(node, exp.Column) or node.table:
        return False
    identifier = node.this
    return isinstance(identifier, exp.Identifier) and bool(identifier.quoted) and bool(columns) \
        and identifier.name.lower() not in columns


def _column_of(node: exp.Expression | exp.Condition, columns: frozenset[str]) -> str | None:
    this = node.this
    while isinstance(this, exp.Lower | exp.Upper | exp.Trim | exp.Cast | exp.Paren):
        this = this.this
    if isinstance(this, exp.Column) and this.name and not _is_string_word(this, columns):
        return this.name
    other = node.args.get("expression")
    if isinstance(other, exp.Column) and other.name and isinstance(this, exp.Literal):
        return other.name  # `30 < age`
    return None


def _constants(node: exp.Expression | exp.Condition, columns: frozenset[str]) -> list[Value]:
    values: list[Value] = [column.name for column in node.find_all(exp.Column) if _is_string_word(column, columns)]
    for literal in node.find_all(exp.Literal):
        if literal.is_string:
            text = literal.this
            if isinstance(node, exp.Like | exp.ILike):
                text = text.replace("%", "").replace("_", " ").strip()
            if text:
                values.append(text)
        else:
            values.append(_number(literal.this))
    return values


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return 0
