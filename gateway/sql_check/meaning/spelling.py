"""Names as the schema wrote them. SQLite compares every name without case, quoted or not; the analyst's database
does not: PostgreSQL folds an unquoted name to lower case (a table created as "Users" is only found as "Users"),
MySQL on Linux finds a table only by its exact name. So each table and column the schema defines is written with
the schema's spelling, and quoted where the schema quoted it (PostgreSQL), where it is not a plain name, or where
the target reserves it. Other names (aliases, CTEs) keep the query's spelling; quotes SQLite needed only out of
habit are dropped."""

from __future__ import annotations

import re

import sqlglot.expressions as exp
from sqlglot.dialects.dialect import NormalizationStrategy

from gateway.schema_model import SchemaModel
from gateway.sql_check.parsing import get_dialect
from gateway.sql_check.reserved_words import reserved_in

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CASE_FOLDING = frozenset({"postgres"})  # where a quoted name keeps its case and an unquoted one is folded


def spell_names(tree: exp.Expr, target: str, model: SchemaModel) -> None:
    dialect = get_dialect(target)
    known = frozenset(word.lower() for word in getattr(dialect.generator_class, "RESERVED_KEYWORDS", ()))
    reserved = reserved_in(target, known)
    strategy = dialect.normalization_strategy
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    aliases = {alias.name.lower() for alias in tree.find_all(exp.TableAlias) if alias.name}
    columns = {column.name.lower(): column for table in model.tables for column in table.columns}
    for identifier in list(tree.find_all(exp.Identifier)):
        name = identifier.this
        if not isinstance(name, str):
            continue
        parent = identifier.parent
        if isinstance(parent, exp.Collate):
            continue  # a collation's name, quoted as the rule wrote it
        written: tuple[str, str] | None = None  # (spelling, quote) from the schema
        names_table = (isinstance(parent, exp.Table) and identifier.arg_key == "this" and name.lower() not in ctes) or (
            isinstance(parent, exp.Column) and identifier.arg_key == "table" and name.lower() not in aliases)
        if names_table:
            table = model.lookup(name, _qualifier(parent)).table
            written = (table.name, table.quote) if table else None
        elif isinstance(parent, exp.Column) and identifier.arg_key == "this":
            column = columns.get(name.lower())
            written = (column.name, column.quote) if column else None
        if written is not None:
            _as_written(identifier, *written, target=target, reserved=reserved)
        elif _PLAIN_NAME.fullmatch(name):
            _plain(identifier, name, reserved, strategy)


def _qualifier(node: exp.Expr | None) -> str:
    """The schema a table reference names (`sales.orders`, or `sales.orders.id` for a column), "" for none."""
    return node.text("db") if node is not None else ""


def written_identifier(name: str, quote: str, target: str) -> exp.Identifier:
    """A schema name as the analyst's database in `target` holds it (for building that database's tables)."""
    dialect = get_dialect(target)
    known = frozenset(word.lower() for word in getattr(dialect.generator_class, "RESERVED_KEYWORDS", ()))
    identifier = exp.Identifier(this=name, quoted=False)
    _as_written(identifier, name, quote, target=target, reserved=reserved_in(target, known))
    return identifier


def _as_written(identifier: exp.Identifier, spelling: str, quote: str, *, target: str,
                reserved: frozenset[str]) -> None:
    identifier.set("this", spelling)
    plain = bool(_PLAIN_NAME.fullmatch(spelling))
    case_kept = bool(quote) and target in _CASE_FOLDING and spelling != spelling.lower()
    if not plain or case_kept:
        identifier.set("quoted", True)
    elif spelling.lower() in reserved:
        _plain(identifier, spelling, reserved, get_dialect(target).normalization_strategy)
    else:
        identifier.set("quoted", False)


def _plain(identifier: exp.Identifier, name: str, reserved: frozenset[str], strategy: NormalizationStrategy) -> None:
    if name.lower() in reserved:
        # Quoting makes the name case-sensitive in folding dialects: fold it the way an unquoted name is.
        if strategy in (NormalizationStrategy.LOWERCASE, NormalizationStrategy.UPPERCASE):
            identifier.set("this", name.upper() if strategy is NormalizationStrategy.UPPERCASE else name.lower())
        identifier.set("quoted", True)
    elif identifier.quoted:
        identifier.set("quoted", False)
