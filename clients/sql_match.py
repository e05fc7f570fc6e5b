"""Comparing generated SQL with a reference: the publication's exact match and a sqlglot-normalised match.

`exact_match` is the model publication's metric, character for character (samrat-kar/llm-fine-tune,
`src/evaluation_utils.py`: strip, lower-case, collapse whitespace, strip trailing semicolons, compare).

`normalised_match` compares sqlglot canonical forms, built by `canonical_sql` in these steps:

1. parse exactly one statement in the dialect (default sqlite); a prediction that does not parse never
   matches;
2. a double-quoted name used as a column that names no column of any table in the schema becomes a string
   literal (SQLite's own rule: `WHERE name = "Bob"` compares with the text 'Bob');
3. `sqlglot.optimizer.qualify` with the schema's tables and columns: every column gets its table, identifiers
   are lower-cased (SQLite names are case-insensitive, quoted or not), and table / derived-table aliases are
   renamed by position (`T1`, `a`, or no alias at all all become `_0`, `_1`, ...); stars are not expanded;
4. the result columns of the outermost query lose their aliases (`AS total`, including the ones step 3 adds),
   after ORDER BY references to them are replaced by the expressions they name;
5. `INNER JOIN` becomes `JOIN`, `LEFT OUTER JOIN` becomes `LEFT JOIN`, an explicit `ASC` is dropped;
6. printed by sqlglot in the dialect: keywords and function names upper-case, single spaces, `!=` as `<>`,
   no trailing semicolon.

Everything else still counts: literal values and their case, the order of conditions, projections and joins,
`count(*)` against `count(col)`, `LIMIT`, `DISTINCT`, parentheses that change nothing. When step 3 fails for
either query (sqlglot raises on some shapes), both are compared after steps 1, 2, 5 and 6 with identifiers
lower-cased; when the reference itself does not parse, the two exact-match forms are compared instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify

from gateway.sql_check import read_schema

_WHITESPACE = re.compile(r"\s+")

SchemaColumns = Mapping[str, Mapping[str, str]]


def normalise_exact(sql: str) -> str:
    """The publication's normalisation: strip, lower-case, collapse whitespace, drop trailing `;`."""
    sql = sql.strip().lower()
    sql = _WHITESPACE.sub(" ", sql)
    return sql.rstrip(";").strip()


def exact_match(prediction: str, reference: str) -> bool:
    """Exact match exactly as the model's publication scored it."""
    return normalise_exact(prediction) == normalise_exact(reference)


def schema_columns(schema: str, dialect: str = "sqlite") -> dict[str, dict[str, str]]:
    """Tables (and views) and their typed columns, read by the gateway's one schema reader
    (`gateway.sql_check.read_schema`); `dialect` is kept for callers: the reader reads every dialect's DDL."""
    tables: dict[str, dict[str, str]] = {}
    for table in read_schema(schema).tables:
        columns = {column.name.lower(): column.type or "TEXT" for column in table.columns}
        if columns:
            tables.setdefault(table.name.lower(), columns)
    return tables


def canonical_sql(sql: str, schema: SchemaColumns, dialect: str = "sqlite", *, qualified: bool = True) -> str:
    """The canonical form described in the module docstring; raises `SqlglotError` when it cannot be built."""
    statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    if len(statements) != 1:
        raise SqlglotError(f"expected one statement, found {len(statements)}")
    tree = _quoted_names_to_strings(statements[0], schema)
    if qualified:
        tree = qualify(
            tree,
            schema={name: dict(columns) for name, columns in schema.items()},
            dialect=dialect,
            expand_stars=False,
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
            canonicalize_table_aliases=True,
        )
        tree = _drop_output_aliases(tree)
    else:
        for identifier in tree.find_all(exp.Identifier):
            identifier.set("this", identifier.name.lower())
            identifier.set("quoted", False)
    _simplify_keywords(tree)
    return tree.sql(dialect=dialect, normalize_functions="upper")


def normalised_match(prediction: str, reference: str, schema: str, dialect: str = "sqlite") -> bool:
    """True when both queries have the same canonical form (see the module docstring)."""
    columns = schema_columns(schema, dialect)
    try:
        canonical_sql(reference, columns, dialect, qualified=False)
    except (SqlglotError, RecursionError):
        return exact_match(prediction, reference)
    try:
        return canonical_sql(prediction, columns, dialect) == canonical_sql(reference, columns, dialect)
    except (SqlglotError, RecursionError):
        pass
    try:
        return canonical_sql(prediction, columns, dialect, qualified=False) == canonical_sql(
            reference, columns, dialect, qualified=False
        )
    except (SqlglotError, RecursionError):
        return False


def _quoted_names_to_strings(tree: exp.Expr, schema: SchemaColumns) -> exp.Expr:
    known = {column for columns in schema.values() for column in columns}
    for column in list(tree.find_all(exp.Column)):
        identifier = column.this
        if (
            not column.table
            and isinstance(identifier, exp.Identifier)
            and identifier.quoted
            and identifier.name.lower() not in known
        ):
            column.replace(exp.Literal.string(identifier.name))
    return tree


def _outer_selects(tree: exp.Expr) -> list[exp.Select]:
    if isinstance(tree, exp.Select):
        return [tree]
    if isinstance(tree, exp.SetOperation):
        return _outer_selects(tree.left) + _outer_selects(tree.right)
    if isinstance(tree, exp.Subquery):
        return _outer_selects(tree.this)
    return []


def _drop_output_aliases(tree: exp.Expr) -> exp.Expr:
    for select in _outer_selects(tree):
        aliased = {
            projection.alias.lower(): projection.this
            for projection in select.expressions
            if isinstance(projection, exp.Alias)
        }
        order = select.args.get("order")
        if isinstance(order, exp.Order):
            for column in list(order.find_all(exp.Column)):
                target = aliased.get(column.name.lower())
                if not column.table and target is not None:
                    column.replace(target.copy())
        select.set(
            "expressions",
            [p.this if isinstance(p, exp.Alias) else p for p in select.expressions],
        )
    return tree


def _simplify_keywords(tree: exp.Expr) -> None:
    for join in tree.find_all(exp.Join):
        kind = str(join.args.get("kind") or "").upper()
        if kind == "INNER" or (kind == "OUTER" and join.args.get("side")):
            join.set("kind", None)
    for ordered in tree.find_all(exp.Ordered):
        if not ordered.args.get("desc"):
            ordered.set("desc", None)
