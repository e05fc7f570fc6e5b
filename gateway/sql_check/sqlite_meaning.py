"""SQLite's meanings that other engines spell differently, made explicit in the tree before it is written in
another dialect. sqlglot translates syntax; these are the rules where the same text means something else elsewhere
(or nothing at all), each worded after SQLite's documentation:

- a "double-quoted" word that names no column is a string literal (with the schema only);
- a comparison of a TEXT-affinity column with a number compares text (datatype3.html, "Type Conversions Prior To
  Comparison"): `open_year < 2009` on a VARCHAR column is `open_year < '2009'`;
- LIKE ignores ASCII case;
- SELECT DISTINCT may order by columns it does not select (as GROUP BY, with the bare-column rule below);
- bare columns in an aggregate query take their value from some row of the group (an arbitrary-value aggregate
  elsewhere), or, when the query holds exactly one min() or max(), from the row holding it: no other engine has
  that rule, so such a query is refused;
- `date('now')`, `datetime('now')`, `date(x)`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import TypeVar

import sqlglot.expressions as exp

from gateway.schema_model import read_schema
from gateway.sql_check.names import query_columns
from gateway.sql_check.transpiled import TranspileRefused

_E = TypeVar("_E", bound=exp.Expr)
# Default collations compare ASCII letters without case, as SQLite's LIKE does.
_LIKE_IGNORES_CASE = frozenset({"sqlite", "mysql", "tsql"})
_HAS_ILIKE = frozenset({"postgres", "redshift", "duckdb", "snowflake", "clickhouse", "spark", "databricks"})
_HAS_ANY_VALUE = frozenset({"duckdb", "bigquery", "snowflake", "mysql", "spark", "databricks", "trino", "presto",
                            "redshift"})
_HAS_TRY_CAST = frozenset({"duckdb", "tsql", "snowflake", "bigquery", "trino", "presto", "spark", "databricks",
                           "clickhouse"})
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def make_explicit(tree: exp.Expr, target: str, schema: str | None) -> None:
    """Rewrite `tree` (parsed as SQLite) in place so that `target` reads it with SQLite's meaning."""
    strings_in_double_quotes(tree, schema)
    text_comparisons(tree, target, schema)
    dates(tree, target)
    case_insensitive_like(tree, target)
    distinct_order(tree)
    bare_columns(tree, target)


def strings_in_double_quotes(tree: exp.Expr, schema: str | None) -> None:
    """SQLite reads `WHERE name = "Alice"` as a string when no column is called Alice; so must the target.

    Only with a readable schema that knows every table the query reads; otherwise the name stays a name (the
    target then refuses an unknown column, rather than answering something else)."""
    model = read_schema(schema) if schema and schema.strip() else None
    if model is None or not model.tables:
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


def text_comparisons(tree: exp.Expr, target: str, schema: str | None) -> None:
    """SQLite converts before comparing (datatype3.html, "Type Conversions Prior To Comparison"): a number meeting a
    TEXT column becomes text; a TEXT column meeting a numeric column is read as a number. Write both out."""
    types = column_types(schema) if schema and schema.strip() else {}
    if not types:
        return
    affinity = _Affinity(types)
    for comparison in list(tree.find_all(*_COMPARISONS)):
        _compare(affinity, comparison.this, comparison.expression, target)
    for membership in list(tree.find_all(exp.In)):
        query = membership.args.get("query")
        values = list(membership.expressions)
        if isinstance(query, exp.Subquery) and isinstance(query.this, exp.Select) and len(query.this.expressions) == 1:
            values.append(query.this.expressions[0])
        for value in values:
            _compare(affinity, membership.this, value, target)
    for between in list(tree.find_all(exp.Between)):
        for bound in (between.args.get("low"), between.args.get("high")):
            if bound is not None:
                _compare(affinity, between.this, bound, target)


class _Affinity:
    """The declared type of a column reference, resolved through the FROM and JOIN items of the query it sits in,
    then of the queries around it; None when that is not unambiguous."""

    def __init__(self, types: Mapping[str, Mapping[str, str]]) -> None:
        self._types = types

    def declared(self, node: exp.Expr) -> str | None:
        if isinstance(node, exp.Alias):
            node = node.this
        if not isinstance(node, exp.Column) or isinstance(node.this, exp.Star):
            return None
        name, qualifier = node.name.lower(), node.table.lower()
        scope = node.find_ancestor(exp.Select)
        while scope is not None:
            sources = _direct_tables(scope)
            if qualifier:
                tables = [table for alias, table in sources if alias == qualifier]
            else:
                tables = [table for _, table in sources if name in self._types.get(table, {})]
            if tables:
                found = {self._types.get(table, {}).get(name) for table in tables}
                return found.pop() if len(found) == 1 else None
            scope = scope.find_ancestor(exp.Select)
        return None


def _direct_tables(select: exp.Select) -> list[tuple[str, str]]:
    """(alias or name, table name) of the tables `select` reads directly, lower-cased."""
    items: list[exp.Expr] = []
    from_ = select.args.get("from_")
    if isinstance(from_, exp.From):
        items.append(from_.this)
    items += [join.this for join in select.args.get("joins") or ()]
    return [(item.alias_or_name.lower(), item.name.lower()) for item in items if isinstance(item, exp.Table)]


def _compare(affinity: _Affinity, left: exp.Expr, right: exp.Expr, target: str) -> None:
    left_type, right_type = affinity.declared(left), affinity.declared(right)
    if left_type is not None and _text_affinity(left_type):
        if right_type is None:
            _number_as_text(right)
        elif _numeric_affinity(right_type):
            _text_as_number(left, right_type, target)
    elif right_type is not None and _text_affinity(right_type):
        if left_type is None:
            _number_as_text(left)
        elif _numeric_affinity(left_type):
            _text_as_number(right, left_type, target)


def _text_as_number(column: exp.Expr, declared: str, target: str) -> None:
    value = column.this if isinstance(column, exp.Alias) else column
    # TRY_CAST where the target has it: SQLite leaves text that is no number as text, never raising.
    cast = exp.TryCast if target in _HAS_TRY_CAST else exp.Cast
    value.replace(cast(this=value.copy(), to=exp.DataType.build(declared, dialect="sqlite")))


def _numeric_affinity(declared: str) -> bool:
    upper = declared.upper()
    return "INT" in upper or any(word in upper for word in ("REAL", "FLOA", "DOUB", "NUM", "DEC"))


def _number_as_text(node: exp.Expr | None) -> None:
    if isinstance(node, exp.Literal) and not node.is_string:
        node.replace(exp.Literal.string(node.this))
    elif isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        node.replace(exp.Literal.string(f"-{node.this.this}"))


def _text_affinity(declared: str) -> bool:
    """SQLite's rule 2 of "Determination Of Column Affinity" (rule 1, INT, wins over it)."""
    upper = declared.upper()
    return "INT" not in upper and any(word in upper for word in ("CHAR", "CLOB", "TEXT"))


def column_types(schema: str) -> Mapping[str, Mapping[str, str]]:
    """Table -> column -> declared type (lower-cased names) from the schema model; never raises."""
    return _column_types_cached(schema)


@functools.lru_cache(maxsize=64)
def _column_types_cached(schema: str) -> Mapping[str, Mapping[str, str]]:
    types: dict[str, dict[str, str]] = {}
    for table in read_schema(schema).tables:
        columns = types.setdefault(table.name.lower(), {})
        for column in table.columns:
            columns.setdefault(column.name.lower(), column.type)
    return types


def dates(tree: exp.Expr, target: str) -> None:
    for node in list(tree.find_all(exp.Date, exp.Anonymous)):
        arguments = [node.this] if isinstance(node, exp.Date) else node.expressions
        if isinstance(node, exp.Anonymous) and node.name.lower() != "datetime":
            continue
        if len(arguments) != 1 or (isinstance(node, exp.Date) and (node.args.get("zone") or node.expressions)):
            continue
        argument = arguments[0]
        is_now = isinstance(argument, exp.Literal) and argument.is_string and argument.name.lower() == "now"
        if isinstance(node, exp.Date):
            # sqlglot writes CURRENT_DATE as GETDATE() for SQL Server, which carries the time of day too.
            today = (exp.cast(exp.CurrentTimestamp(), exp.DataType.Type.DATE) if target == "tsql"
                     else exp.CurrentDate())
            node.replace(today if is_now else exp.cast(argument, exp.DataType.Type.DATE))
        elif is_now:
            node.replace(exp.CurrentTimestamp())


def case_insensitive_like(tree: exp.Expr, target: str) -> None:
    if target in _LIKE_IGNORES_CASE:
        return
    for like in list(tree.find_all(exp.Like)):
        if target in _HAS_ILIKE:
            like.replace(exp.ILike(**like.args))
        else:
            like.set("this", exp.Lower(this=like.this))
            like.set("expression", exp.Lower(this=like.expression))


def distinct_order(tree: exp.Expr) -> None:
    """`SELECT DISTINCT a FROM t ORDER BY b`: SQLite orders by b of some row of each distinct group; PostgreSQL,
    SQL Server and MySQL refuse it. As GROUP BY a, the ORDER BY column becomes a bare column (below)."""
    for select in list(tree.find_all(exp.Select)):
        order = select.args.get("order")
        distinct = select.args.get("distinct")
        if (not isinstance(order, exp.Order) or not isinstance(distinct, exp.Distinct) or distinct.args.get("on")
                or select.args.get("group") or any(True for _ in _own(select, select, exp.AggFunc))):
            continue
        items = [item.this if isinstance(item, exp.Alias) else item for item in select.expressions]
        if not all(isinstance(item, exp.Column) and not isinstance(item.this, exp.Star) for item in items):
            continue
        selected = {item.sql() for item in items} | {item.alias.lower() for item in select.expressions
                                                     if isinstance(item, exp.Alias)}
        columns = [column for column in _own(order, select, exp.Column)
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
        aggregates = [a for clause in clauses if clause is not None for a in _own(clause, select, exp.AggFunc)
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
        bare = [column for clause in clauses if clause is not None for column in _own(clause, select, exp.Column)
                if not _inside(column, select, (exp.AggFunc, exp.Window)) and not isinstance(column.this, exp.Star)
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
            if column.parent is select:
                wrapped = exp.alias_(wrapped, exp.Identifier(this=column.name, quoted=column.this.quoted))
            column.replace(wrapped)


def _own(clause: exp.Expr, select: exp.Select, kind: type[_E]) -> Iterator[_E]:
    """Nodes of `kind` in `clause` that belong to `select`, not to a subquery inside it."""
    for node in clause.find_all(kind):
        if node.find_ancestor(exp.Select) is select or node is select:
            yield node


def _inside(node: exp.Expr, stop: exp.Expr, kinds: tuple[type[exp.Expr], ...]) -> bool:
    parent = node.parent
    while parent is not None and parent is not stop:
        if isinstance(parent, kinds):
            return True
        parent = parent.parent
    return False


def _output_alias(column: exp.Column, aliases: set[str]) -> bool:
    return not column.table and column.name.lower() in aliases and column.find_ancestor(exp.Order) is not None


def _is_key(column: exp.Column, keys: list[exp.Expr]) -> bool:
    name, table = column.name.lower(), column.table.lower()
    for key in keys:
        if (isinstance(key, exp.Column) and key.name.lower() == name
                and (not table or not key.table or key.table.lower() == table)):
            return True
    return False
