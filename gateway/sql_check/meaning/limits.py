"""LIMIT and subqueries: SQLite reads a negative LIMIT as none and a negative OFFSET as 0 (the others raise);
MySQL and MariaDB refuse LIMIT inside an IN/ANY/ALL subquery (it is moved into a derived table, which they take);
a subquery in FROM needs a name in PostgreSQL, MySQL and SQL Server (SQLite lets it go without); a subquery used as
a value that finds several rows gives the first in SQLite and raises elsewhere (it gets LIMIT 1)."""

from __future__ import annotations

import sqlglot.expressions as exp

# MySQL's documented way to say "no limit" when an OFFSET is given.
_MYSQL_NO_LIMIT = "18446744073709551615"


def _negative(node: exp.Expr | None) -> bool:
    value = node.args.get("expression") if isinstance(node, exp.Limit | exp.Offset) else node
    return isinstance(value, exp.Neg) and isinstance(value.this, exp.Literal) and not value.this.is_string


def limits(tree: exp.Expr, target: str) -> None:
    for query in list(tree.find_all(exp.Select, exp.SetOperation)):
        limit, offset = query.args.get("limit"), query.args.get("offset")
        if offset is not None and _negative(offset):
            query.set("offset", None)
            offset = None
        if limit is not None and _negative(limit):
            if offset is not None and target == "mysql":
                query.set("limit", exp.Limit(expression=exp.Literal.number(_MYSQL_NO_LIMIT)))
            else:
                query.set("limit", None)
    _scalar_subqueries_limited(tree)
    if target == "mysql":
        _limits_out_of_in_subqueries(tree)
    if target in ("postgres", "mysql", "tsql"):
        _named_derived_tables(tree)


# Where a subquery is a set of rows, not a value.
_ROW_SETS = (exp.In, exp.Exists, exp.From, exp.Join, exp.SetOperation, exp.Any, exp.All, exp.CTE, exp.Lateral)


def _scalar_subqueries_limited(tree: exp.Expr) -> None:
    for subquery in list(tree.find_all(exp.Subquery)):
        parent = subquery.parent
        while isinstance(parent, exp.Paren):
            parent = parent.parent
        select = subquery.this
        if parent is None or isinstance(parent, _ROW_SETS) or not isinstance(select, exp.Select):
            continue
        if select.args.get("limit") is not None or len(select.expressions) != 1:
            continue
        grouped = select.args.get("group") is not None
        if not grouped and any(True for _ in select.find_all(exp.AggFunc)):
            continue  # an aggregate without GROUP BY finds exactly one row
        select.set("limit", exp.Limit(expression=exp.Literal.number(1)))


def _limits_out_of_in_subqueries(tree: exp.Expr) -> None:
    for membership in list(tree.find_all(exp.In, exp.Any, exp.All)):
        query = membership.args.get("query") if isinstance(membership, exp.In) else membership.this
        inner = query.this if isinstance(query, exp.Subquery) else query
        if not isinstance(inner, exp.Query) or inner.args.get("limit") is None:
            continue
        derived = exp.select("*").from_(exp.Subquery(this=inner.copy(), alias=exp.TableAlias(
            this=exp.to_identifier("sqlgate_limited"))))
        inner.replace(derived)


def _named_derived_tables(tree: exp.Expr) -> None:
    count = 0
    for subquery in list(tree.find_all(exp.Subquery)):
        if subquery.alias or not isinstance(subquery.parent, exp.From | exp.Join):
            continue
        count += 1
        subquery.set("alias", exp.TableAlias(this=exp.to_identifier(f"sqlgate_derived_{count}")))
