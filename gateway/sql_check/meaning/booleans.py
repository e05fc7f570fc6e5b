"""SQLite has no boolean type: a comparison is the integer 1, 0 or NULL, and any number is a condition (true when
not zero). PostgreSQL (`sum(a > 2)`: no sum(boolean); `WHERE a`: WHERE must be boolean), DuckDB and SQL Server
keep the two apart, so each side is written out: a condition used as a number becomes 1/0/NULL, a number used as
a condition becomes `<> 0`. MySQL shares SQLite's rule. Text used as a condition (SQLite reads its leading digits)
is refused."""

from __future__ import annotations

import sqlglot.expressions as exp

from gateway.sql_check.dialect_names import dialect_label
from gateway.sql_check.meaning.scope import PREDICATES, Scope, parent_skipping_parens
from gateway.sql_check.transpiled import TranspileRefused

_CONDITION_HOLDERS = (exp.Where, exp.Having, exp.Qualify)
_CONNECTORS = (exp.And, exp.Or, exp.Not, exp.Xor)
_NUMERIC = frozenset({"int", "real", "num"})


def booleans(tree: exp.Expr, target: str, scope: Scope) -> None:
    if target == "mysql":
        return
    # Deepest first: a rewritten child is copied along when its parent is rewritten.
    for node in reversed(list(tree.find_all(exp.Expr))):
        if isinstance(node, exp.Paren | exp.Select | exp.Subquery | exp.Query):
            continue
        condition = _in_condition(node)
        if condition is None:
            continue
        kind = scope.kind(node)
        if condition and kind != "bool":
            _as_condition(node, kind, target)
        elif not condition and kind == "bool" and _is_boolean_value(node, scope) and not _compared_with_bool(node,
                                                                                                         scope):
            _as_number(node, target)


def _in_condition(node: exp.Expr) -> bool | None:
    """True where the node is read as a condition, False where as a value, None where neither matters (a
    clause, a name, a part of a larger predicate's syntax)."""
    parent = parent_skipping_parens(node)
    if parent is None:
        return None
    arg = _arg_of(node)
    if isinstance(parent, (*_CONDITION_HOLDERS, *_CONNECTORS)):
        return True
    if isinstance(parent, exp.Join):
        return True if arg == "on" else None
    if isinstance(parent, exp.If):
        return arg == "this"
    if isinstance(node, PREDICATES) or _is_column_like(node):
        return False if _value_position(parent) else None
    return None


def _arg_of(node: exp.Expr) -> str | None:
    child = node
    while isinstance(child.parent, exp.Paren):
        child = child.parent
    return child.arg_key


def _value_position(parent: exp.Expr) -> bool:
    """Does the parent read its children as values (a select list, a function, arithmetic, a comparison)?"""
    return isinstance(parent, exp.Select | exp.Func | exp.Binary | exp.Alias | exp.Ordered | exp.Group | exp.Neg
                      | exp.Predicate | exp.Tuple | exp.Case) and not isinstance(parent, _CONNECTORS)


def _is_column_like(node: exp.Expr) -> bool:
    return isinstance(node, exp.Column) and not isinstance(node.this, exp.Star)


def _is_boolean_value(node: exp.Expr, scope: Scope) -> bool:
    return isinstance(node, PREDICATES) or (_is_column_like(node) and scope.kind(node) == "bool")


def _compared_with_bool(node: exp.Expr, scope: Scope) -> bool:
    """`is_male = TRUE`: two booleans compared stay booleans."""
    parent = parent_skipping_parens(node)
    if isinstance(parent, exp.EQ | exp.NEQ | exp.Is):
        other = parent.expression if _arg_of(node) == "this" else parent.this
        return isinstance(other, exp.Null) or scope.kind(other) == "bool"
    return False


def _as_number(node: exp.Expr, target: str) -> None:
    if target == "tsql":
        if _is_column_like(node):
            return  # a BIT column already is 1/0
        node.replace(exp.Case(ifs=[
            exp.If(this=node.copy(), true=exp.Literal.number(1)),
            exp.If(this=exp.Not(this=exp.Paren(this=node.copy())), true=exp.Literal.number(0)),
        ]))
    else:
        node.replace(exp.Cast(this=exp.Paren(this=node.copy()), to=exp.DataType.build("INT")))


def _as_condition(node: exp.Expr, kind: str | None, target: str) -> None:
    if kind in _NUMERIC:
        node.replace(exp.NEQ(this=exp.Paren(this=node.copy()) if not _is_column_like(node) else node.copy(),
                             expression=exp.Literal.number(0)))
        return
    what = "text" if kind == "text" else "a value whose type the schema does not make clear"
    raise TranspileRefused(
        f"The query uses {node.sql('sqlite')} ({what}) as a condition; SQLite reads it as a number, which "
        f"{dialect_label(target)} can't do the same way.")
