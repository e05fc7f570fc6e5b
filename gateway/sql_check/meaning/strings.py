"""Strings SQLite reads differently: a "double-quoted" word that names no column is a string literal; a number
meeting a TEXT column is compared as text, and a TEXT column meeting a numeric one as a number (datatype3.html,
"Type Conversions Prior To Comparison")."""

from __future__ import annotations

import re

import sqlglot.expressions as exp

from gateway.schema_model import SchemaModel
from gateway.sql_check.dialect_names import dialect_label
from gateway.sql_check.meaning.scope import Scope, affinity, query_selects
from gateway.sql_check.names import query_columns
from gateway.sql_check.transpiled import TranspileRefused

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def strings_in_double_quotes(tree: exp.Expr, model: SchemaModel) -> None:
    """SQLite reads `WHERE name = "Alice"` as a string when no column is called Alice; so must the target.

    Only with a readable schema that knows every table the query reads; otherwise the name stays a name (the
    target then refuses an unknown column, rather than answering something else)."""
    if not model.tables:
        return
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    names: set[str] = set()
    for table in tree.find_all(exp.Table):
        if not table.db and table.name.lower() in ctes:
            continue
        found = model.lookup(table.name, table.db).table
        if found is None:
            return
        names |= found.column_names()
    for node in tree.find_all(exp.Alias, exp.TableAlias, exp.CTE, exp.Subquery):
        if node.alias:
            names.add(node.alias.lower())
        alias = node.args.get("alias")
        if isinstance(alias, exp.TableAlias):
            names |= {column.name.lower() for column in alias.columns}
        if isinstance(node, exp.CTE | exp.Subquery):
            names |= query_columns(node.this) or frozenset()
    for column in list(tree.find_all(exp.Column)):
        identifier = column.this
        if (not column.table and isinstance(identifier, exp.Identifier) and identifier.quoted
                and identifier.name.lower() not in names):
            column.replace(exp.Literal.string(identifier.name))


def text_comparisons(tree: exp.Expr, target: str, scope: Scope) -> None:
    """A number meeting a TEXT column becomes text; a TEXT column meeting a numeric column is read as a number."""
    for comparison in list(tree.find_all(*_COMPARISONS)):
        _compare(scope, comparison.this, comparison.expression, target, isinstance(comparison, exp.EQ | exp.NEQ))
    for membership in list(tree.find_all(exp.In)):
        _membership(scope, membership, target)
    for between in list(tree.find_all(exp.Between)):
        for bound in (between.args.get("low"), between.args.get("high")):
            if bound is not None:
                _compare(scope, between.this, bound, target, False)


def _membership(scope: Scope, membership: exp.In, target: str) -> None:
    """`x IN (values)` / `x IN (SELECT y ... [UNION SELECT z ...])`: each value meets x as in a comparison, and x
    itself is converted at most once."""
    values = list(membership.expressions)
    query = membership.args.get("query")
    for select in query_selects(query.this if isinstance(query, exp.Subquery) else None):
        if len(select.expressions) == 1:
            values.append(select.expressions[0])
    left = membership.this
    left_kind = affinity(scope.declared(left))
    kinds = [affinity(scope.declared(value)) for value in values]
    if left_kind == "text":
        for value in values:
            if scope.declared(value) is None:
                _number_as_text(value)
        numeric = [value for value, kind in zip(values, kinds, strict=True) if kind in ("int", "real", "num")]
        if numeric and target == "mysql":
            for value in numeric:  # the numbers as text, each of them
                target_value = value.this if isinstance(value, exp.Alias) else value
                target_value.replace(exp.Cast(this=target_value.copy(), to=exp.DataType.build("TEXT")))
        elif numeric:
            _text_as_number(left, "", target, numeric[0], True)
    elif left_kind in _NUMERIC:
        for value, kind in zip(values, kinds, strict=True):
            if kind == "text":
                _text_as_number(value, "", target, left, True)
        strings = [value for value in membership.expressions if _string(value)]
        if strings and all(_LOOKS_NUMERIC.fullmatch(value.name) for value in strings):
            for value in strings:
                _string_meets_number(left, value)
        elif strings:  # some text no number equals: compare as text, the numbers of the list too
            for value in membership.expressions:
                _number_as_text(value)
            operand = left.this if isinstance(left, exp.Alias) else left
            operand.replace(exp.Cast(this=operand.copy(), to=exp.DataType.build("TEXT")))
    elif left_kind is None and scope.declared(left) is None and "text" in kinds:
        _number_as_text(left)


def _compare(scope: Scope, left: exp.Expr, right: exp.Expr, target: str, equality: bool) -> None:
    left_type, right_type = scope.declared(left), scope.declared(right)
    left_kind, right_kind = affinity(left_type), affinity(right_type)
    if left_kind == "text":
        if right_type is None:
            _number_as_text(right)
        elif right_kind in _NUMERIC:
            _text_as_number(left, right_type or "", target, right, equality)
    elif right_kind == "text":
        if left_type is None:
            _number_as_text(left)
        elif left_kind in _NUMERIC:
            _text_as_number(right, left_type or "", target, left, equality)
    elif left_kind in _NUMERIC and _string(right):
        _string_meets_number(left, right)
    elif right_kind in _NUMERIC and _string(left):
        _string_meets_number(right, left)


def _string(node: exp.Expr) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _string_meets_number(column: exp.Expr, literal: exp.Expr) -> None:
    """`airline_id = 'United'`: SQLite reads a string that looks like a number as that number and compares other
    text as text, which no number equals (PostgreSQL and DuckDB would raise casting it, MySQL read it as 0)."""
    text = literal.name
    if _LOOKS_NUMERIC.fullmatch(text):
        number = text.strip().lstrip("+")
        literal.replace(exp.Neg(this=exp.Literal.number(number[1:])) if number.startswith("-")
                        else exp.Literal.number(number))
    else:
        value = column.this if isinstance(column, exp.Alias) else column
        value.replace(exp.Cast(this=value.copy(), to=exp.DataType.build("TEXT")))


# SQLite applies numeric affinity to the text: text that reads as a number compares as that number, other text
# compares unequal (and above every number).
_NUMBER_TEXT = r"^[[:space:]]*[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?[[:space:]]*$"
_LOOKS_NUMERIC = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")
_NUMERIC = ("int", "real", "num")


def _text_as_number(column: exp.Expr, declared: str, target: str, other: exp.Expr, equality: bool) -> None:
    value = column.this if isinstance(column, exp.Alias) else column
    double = exp.DataType.build("DOUBLE")
    # Other text becomes NaN, which PostgreSQL and DuckDB order above every number and equal to no number: where
    # SQLite puts text (a NULL would turn `NOT IN` and `<>` into NULL instead).
    not_a_number = exp.If(this=exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())),
                          true=exp.Cast(this=exp.Literal.string("NaN"), to=double))
    if target == "duckdb":
        value.replace(exp.Case(ifs=[exp.If(this=exp.Not(this=exp.Is(this=exp.TryCast(this=value.copy(), to=double),
                                                                    expression=exp.Null())),
                                           true=exp.TryCast(this=value.copy(), to=double)), not_a_number]))
    elif target == "tsql":  # no NaN in SQL Server's float: NULL for text that is no number
        value.replace(exp.TryCast(this=value.copy(), to=double))
    elif target == "postgres":
        guarded = exp.Case(ifs=[exp.If(this=exp.RegexpLike(this=value.copy(), expression=exp.Literal.string(
            _NUMBER_TEXT)), true=exp.Cast(this=value.copy(), to=double)), not_a_number])
        value.replace(guarded)
    elif equality:
        # MySQL reads any text as a number ('' and 'abc' as 0): compare the number as text instead (exact for
        # keys written canonically, which is what joins on a text key hold).
        target_value = other.this if isinstance(other, exp.Alias) else other
        target_value.replace(exp.Cast(this=target_value.copy(), to=exp.DataType.build("TEXT")))
    else:
        raise TranspileRefused(
            f"The query orders the text column {value.sql('sqlite')} against a number; SQLite compares only text "
            f"that reads as a number that way, which {dialect_label(target)} can't express faithfully.")


def _number_as_text(node: exp.Expr | None) -> None:
    if isinstance(node, exp.Literal) and not node.is_string:
        node.replace(exp.Literal.string(node.this))
    elif isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        node.replace(exp.Literal.string(f"-{node.this.this}"))
