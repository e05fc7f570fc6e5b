"""SQLite's arithmetic written out for engines that compute otherwise (each checked on the real engine by
tests/test_dialect_meaning.py):

- `a / b` of two integers is integer division, truncating toward zero (DuckDB and MySQL return a fraction); a
  division or remainder by zero is NULL (PostgreSQL and DuckDB raise);
- `a % b` computes on integers (operands are truncated first);
- `CAST(x AS INT)` truncates (PostgreSQL, DuckDB and MySQL round), into a 64-bit integer; text cast to a number
  keeps SQLite's leading-digits reading only where the target has it (MySQL) or for a literal;
- `round(x, n)` rounds halves away from zero on the decimal value (PostgreSQL has no round(double precision,
  integer); DuckDB and MySQL round a double's binary value);
- `max(a, b)` / `min(a, b)` are NULL when any argument is (GREATEST and LEAST skip NULLs elsewhere);
- an average or a division with a fraction is a double (MySQL computes decimals to 4 places).
"""

from __future__ import annotations

import sqlite3

import sqlglot.expressions as exp

from gateway.sql_check.dialect_names import dialect_label
from gateway.sql_check.meaning.scope import Scope, affinity
from gateway.sql_check.transpiled import TranspileRefused

_INTEGER_KINDS = frozenset({"int", "bool"})
# Targets whose `/` on two integers is not integer division.
_FRACTIONAL_DIVISION = frozenset({"duckdb", "mysql"})
# Targets that raise on a division or remainder by zero.
_ZERO_RAISES = frozenset({"postgres", "duckdb", "tsql"})
_LENIENT_TEXT_CASTS = frozenset({"mysql"})


def numbers(tree: exp.Expr, target: str, scope: Scope) -> None:
    for node in list(tree.find_all(exp.Div, exp.Mod, exp.Cast, exp.Round, exp.Greatest, exp.Least, exp.Avg)):
        if isinstance(node, exp.Div):
            _division(node, target, scope)
        elif isinstance(node, exp.Mod):
            _remainder(node, target, scope)
        elif isinstance(node, exp.Cast):
            _cast(node, target, scope)
        elif isinstance(node, exp.Round):
            _round(node, target, scope)
        elif isinstance(node, exp.Greatest | exp.Least):
            _scalar_extreme(node, target)
        elif isinstance(node, exp.Avg) and target == "mysql" and scope.kind(node.this) != "real":
            node.set("this", _double(node.this))


def _double(node: exp.Expr) -> exp.Expr:
    return exp.Cast(this=node.copy(), to=exp.DataType.build("DOUBLE"))


def _nonzero(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Literal) and not node.is_string and float(node.this) != 0:
        return node.copy()
    return exp.Nullif(this=node.copy(), expression=exp.Literal.number(0))


def _division(node: exp.Div, target: str, scope: Scope) -> None:
    left, right = scope.kind(node.this), scope.kind(node.expression)
    if left in _INTEGER_KINDS and right in _INTEGER_KINDS:
        if target in _FRACTIONAL_DIVISION:
            divisor = _nonzero(node.expression) if target in _ZERO_RAISES else node.expression.copy()
            node.replace(exp.IntDiv(this=node.this.copy(), expression=divisor))
        return  # sqlglot writes `a / NULLIF(b, 0)` for the others, whose `/` divides integers as SQLite does
    if {left, right} <= {"int", "bool", "real"}:
        if target == "mysql":  # a decimal literal or an integer dividend makes MySQL compute to 4 places
            node.set("this", _double(node.this))
        return
    operand = node.this if left not in _INTEGER_KINDS | {"real"} else node.expression
    raise TranspileRefused(
        f"The query divides {operand.sql('sqlite')}, whose type the schema does not make clear; SQLite divides "
        f"integers and fractions differently, so the division can't be written faithfully in "
        f"{dialect_label(target)}.")


def _remainder(node: exp.Mod, target: str, scope: Scope) -> None:
    for key in ("this", "expression"):
        operand = node.args[key]
        kind = scope.kind(operand)
        if kind in ("real", "num"):
            node.set(key, _truncated(operand, target))
        elif kind not in _INTEGER_KINDS:
            raise TranspileRefused(
                f"The query takes a remainder of {operand.sql('sqlite')}, whose type the schema does not make "
                f"clear; SQLite computes it on integers, which {dialect_label(target)} does not.")
    if target in _ZERO_RAISES:
        node.set("expression", _nonzero(node.expression))


def _truncated(node: exp.Expr, target: str) -> exp.Expr:
    if target == "tsql":  # SQL Server's CAST to an integer truncates
        return exp.Cast(this=node.copy(), to=exp.DataType.build("BIGINT"))
    return exp.Cast(this=exp.Trunc(this=node.copy()), to=exp.DataType.build("BIGINT"))


def _cast(node: exp.Cast, target: str, scope: Scope) -> None:
    wanted = affinity(node.to.sql("sqlite"))
    if wanted not in ("int", "real", "num"):
        return
    source = scope.kind(node.this)
    if source == "text" or source is None:
        if isinstance(node.this, exp.Literal | exp.Neg) or target in _LENIENT_TEXT_CASTS:
            if isinstance(node.this, exp.Literal | exp.Neg):
                node.replace(_evaluated(node))
            return
        raise TranspileRefused(
            f"The query casts {node.this.sql('sqlite')} to a number: SQLite reads the leading digits of text (0 "
            f"when there are none), which {dialect_label(target)} does not (it raises or rounds).")
    if wanted == "int":
        node.replace(_truncated(node.this, target) if source in ("real", "num") else
                     exp.Cast(this=node.this.copy(), to=exp.DataType.build("BIGINT")))
    elif wanted == "real":
        node.set("to", exp.DataType.build("DOUBLE"))


def _evaluated(node: exp.Cast) -> exp.Expr:
    """A cast of a constant, computed by SQLite itself: the target gets SQLite's value."""
    connection = sqlite3.connect(":memory:")
    try:
        value = connection.execute(f"SELECT {node.sql('sqlite')}").fetchone()[0]
    except sqlite3.Error:
        raise TranspileRefused(f"SQLite can't compute {node.sql('sqlite')}.") from None
    finally:
        connection.close()
    if value is None:
        return exp.Null()
    literal = exp.Literal.number(abs(value))
    return exp.Neg(this=literal) if value < 0 else literal


def _round(node: exp.Round, target: str, scope: Scope) -> None:
    if target == "tsql":
        return
    decimals = node.args.get("decimals")
    if decimals is not None and not (isinstance(decimals, exp.Literal) and not decimals.is_string):
        raise TranspileRefused(f"round() with computed digits can't be written faithfully in "
                               f"{dialect_label(target)}.")
    kind = scope.kind(node.this)
    if kind == "int":
        return
    value = node.this.copy()
    if target == "duckdb":  # its decimal cast is exact; SQLite rounds the shortest decimal form of the double
        value = exp.Cast(this=value, to=exp.DataType.build("VARCHAR"))
    decimal = "DECIMAL(65, 30)" if target == "mysql" else ("DECIMAL(38, 18)" if target == "duckdb" else "DECIMAL")
    node.set("this", exp.Cast(this=value, to=exp.DataType.build(decimal, dialect=target)))
    node.set("decimals", decimals.copy() if decimals is not None else exp.Literal.number(0))
    node.replace(_double(node))


def _scalar_extreme(node: exp.Greatest | exp.Least, target: str) -> None:
    if node.args.get("ignore_nulls") is not False or target not in ("postgres", "tsql"):
        return  # sqlglot itself writes DuckDB's NULL check; MySQL's GREATEST is NULL when any argument is
    arguments = [node.this, *node.expressions]
    any_null = exp.or_(*(exp.Is(this=argument.copy(), expression=exp.Null()) for argument in arguments))
    node.replace(exp.Case(ifs=[exp.If(this=any_null, true=exp.Null())], default=node.copy()))
