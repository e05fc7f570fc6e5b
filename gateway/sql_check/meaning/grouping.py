"""Grouping the way SQLite does:

- SELECT DISTINCT may order by columns it does not select (as GROUP BY, with the bare-column rule below);
- bare columns in an aggregate query take their value from some row of the group (an arbitrary-value aggregate
  elsewhere), or, when the query holds exactly one min() or max(), from the row holding it: no other engine has
  that rule, so such a query is refused.
"""

from __future__ import annotations

import sqlglot.expressions as exp

from gateway.sql_check.meaning.scope import inside, own
from gateway.sql_check.transpiled import TranspileRefused

# ANY_VALUE where the target has it (MariaDB does not, so MySQL gets MIN too: a value of some row all the same).
_HAS_ANY_VALUE = frozenset({"duckdb"})
ANY_ROW = "sqlgate_any_row"


def distinct_order(tree: exp.Expr) -> None:
    """`SELECT DISTINCT a FROM t ORDER BY b`: SQLite orders by b of some row of each distinct group; PostgreSQL,
    SQL Server and MySQL refuse it. As GROUP BY a, the ORDER BY column becomes a bare column (below)."""
    for select in list(tree.find_all(exp.Select)):
        order = select.args.get("order")
        distinct = select.args.get("distinct")
        if (not isinstance(order, exp.Order) or not isinstance(distinct, exp.Distinct) or distinct.args.get("on")
                or select.args.get("group") or any(True for _ in own(select, select, exp.AggFunc))):
            continue
        items = [item.this if isinstance(item, exp.Alias) else item for item in select.expressions]
        if not all(isinstance(item, exp.Column) and not isinstance(item.this, exp.Star) for item in items):
            continue
        selected = {item.sql() for item in items} | {item.alias.lower() for item in select.expressions
                                                     if isinstance(item, exp.Alias)}
        columns = [column for column in own(order, select, exp.Column)
                   if column.sql() not in selected and column.name.lower() not in selected]
        if columns:
            select.set("distinct", None)
            select.set("group", exp.Group(expressions=[item.copy() for item in items]))


def bare_columns(tree: exp.Expr, target: str) -> None:
    """Wrap the columns an aggregate query selects without grouping by them (SQLite allows it, the others refuse
    or, MySQL with ONLY_FULL_GROUP_BY off aside, would too) in an arbitrary-value aggregate."""
    for select in list(tree.find_all(exp.Select)):
        group = select.args.get("group")
        keys = list(group.expressions) if isinstance(group, exp.Group) else []
        clauses = [*select.expressions, select.args.get("having"), select.args.get("order")]
        aggregates = [a for clause in clauses if clause is not None for a in own(clause, select, exp.AggFunc)
                      if a.find_ancestor(exp.Window) is None]
        if not keys and not aggregates:
            continue
        if any(not isinstance(key, exp.Column) for key in keys):
            continue  # grouped by position or expression: leave it to the target's own check
        aliases = {item.alias.lower() for item in select.expressions if isinstance(item, exp.Alias)}
        # `strftime('%m', d) AS month ... GROUP BY month`: the columns of a grouped alias are the key itself
        grouped = [item for item in select.expressions if isinstance(item, exp.Alias)
                   and any(isinstance(key, exp.Column) and not key.table and key.name.lower() == item.alias.lower()
                           for key in keys)]
        bare = [column for clause in clauses if clause is not None for column in own(clause, select, exp.Column)
                if not inside(column, select, (exp.AggFunc, exp.Window)) and not isinstance(column.this, exp.Star)
                and not _is_key(column, keys) and not _output_alias(column, aliases)
                and not any(column in item.find_all(exp.Column) for item in grouped)]
        if not bare:
            continue
        if sum(isinstance(a, exp.Min | exp.Max) for a in aggregates) == 1:
            raise TranspileRefused(
                f"The query selects {bare[0].sql('sqlite')} next to a MIN() or MAX() without grouping by it; "
                "SQLite then takes it from the row holding the minimum or maximum, which other databases can't "
                "express this way.")
        for column in bare:
            wrapped: exp.Expr = (exp.AnyValue(this=column.copy()) if target in _HAS_ANY_VALUE
                                 else exp.Min(this=column.copy()))
            wrapped.meta[ANY_ROW] = True  # any row's value will do: no collation needed (text.py)
            if column.parent is select:
                wrapped = exp.alias_(wrapped, exp.Identifier(this=column.name, quoted=column.this.quoted))
            column.replace(wrapped)


def _output_alias(column: exp.Column, aliases: set[str]) -> bool:
    return not column.table and column.name.lower() in aliases and column.find_ancestor(exp.Order) is not None


def _is_key(column: exp.Column, keys: list[exp.Expr]) -> bool:
    name, table = column.name.lower(), column.table.lower()
    for key in keys:
        if (isinstance(key, exp.Column) and key.name.lower() == name
                and (not table or not key.table or key.table.lower() == table)):
            return True
    return False
