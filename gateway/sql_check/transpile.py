"""Transpile the model's checked SQL (SQLite) into the analyst's dialect with sqlglot, or refuse.

sqlglot translates syntax (LIMIT -> TOP, || -> CONCAT, strftime -> DATE_FORMAT...) but passes through what it
does not know, and SQLite's meaning differs from other engines' in places sqlglot leaves alone. This module closes
the gaps that change an answer, and refuses what it can't write faithfully:

- sqlglot's own "unsupported" warnings become refusals (unsupported_level=RAISE);
- functions sqlglot does not know (parsed as anonymous calls) and SQLite-only operators are refused;
- SQLite's own meanings (double-quoted strings, integer division, casts, booleans as numbers, text comparisons and
  collation, LIKE without case, substr, bare columns, dates, LIMIT) are made explicit first: meaning/;
- tables and columns are written as the schema wrote them (quoted where it quoted them, for engines that fold
  case); names the target reserves are quoted; names quoted only out of habit are unquoted.

The result is parsed back in the target dialect before it is returned. Pure: no I/O, no state."""

from __future__ import annotations

import sqlglot.expressions as exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from gateway.schema_model import read_schema
from gateway.sql_check.dialect_names import dialect_label
from gateway.sql_check.meaning import before_refusals, column_types, make_explicit, spell_names
from gateway.sql_check.parsing import PER_THREAD, check_tokens, get_dialect, parse, tokenize
from gateway.sql_check.result import MAX_SQL_CHARS, SUPPORTED_DIALECTS, Rejected
from gateway.sql_check.transpiled import MODEL_DIALECT, Transpiled, TranspileRefused

# Operators sqlglot writes unchanged although only these targets have them.
_ONLY_IN: dict[type[exp.Expr], frozenset[str]] = {
    exp.Glob: frozenset({"sqlite", "duckdb"}),
    exp.Typeof: frozenset({"sqlite", "duckdb"}),
}


def transpile_sql(
    sql: str, *, source: str = MODEL_DIALECT, target: str, schema: str | None = None
) -> Transpiled:
    """`sql` (one statement in `source`) written in `target`; unchanged when they are equal.

    `schema` (the request's CREATE TABLE text) lets SQLite's double-quoted strings be told from names.
    Raises TranspileRefused when the text can't be written faithfully in `target`."""
    source_name, target_name = _offered(source), _offered(target)
    if source_name == target_name:
        return Transpiled(text=sql, source_dialect=source_name, dialect=target_name)
    try:
        tree = _parse_one(sql, source_name)
        if source_name == "sqlite":
            _without_main_schema(tree)
            _having_aliases_spelled_out(tree, schema)
            before_refusals(tree, target_name, schema)
        _refuse_untranslatable(tree, target_name)
        if source_name == "sqlite":
            make_explicit(tree, target_name, schema)
        spell_names(tree, target_name, read_schema(schema or "") if source_name == "sqlite" else read_schema(""))
        text = get_dialect(target_name).generate(tree, copy=False, unsupported_level=ErrorLevel.RAISE)
        _parse_back(text, target_name)
    except TranspileRefused:
        raise
    except UnsupportedError as error:
        detail = " ".join(str(error).split())[:200]
        raise TranspileRefused(
            f"The query can't be written faithfully in {dialect_label(target_name)}: {detail}") from None
    except RecursionError:
        raise TranspileRefused("The query is nested too deeply to translate.") from None
    except Exception:  # fail closed: a half-translated query must never leave
        raise TranspileRefused(f"The query could not be translated to {dialect_label(target_name)}.") from None
    return Transpiled(text=text, source_dialect=source_name, dialect=target_name)


def _without_main_schema(tree: exp.Expr) -> None:
    """SQLite's `main.t` is the schema's table `t`; in another database `main` would name some other schema."""
    for table in tree.find_all(exp.Table):
        if table.db.lower() == "main" and not table.catalog:
            table.set("db", None)


def _having_aliases_spelled_out(tree: exp.Expr, schema: str | None) -> None:
    """SQLite lets HAVING name a select-list alias (`HAVING total > 100`); PostgreSQL, SQL Server and others don't,
    so the alias becomes the expression it names. A real column of that name keeps its meaning."""
    columns = {column.lower() for table in column_types(read_schema(schema or "")).values() for column in table}
    for select in list(tree.find_all(exp.Select)):
        having = select.args.get("having")
        if having is None:
            continue
        aliases = {item.alias.lower(): item.this for item in select.expressions
                   if isinstance(item, exp.Alias) and item.alias}
        for column in list(having.find_all(exp.Column)):
            name = column.name.lower()
            if not column.table and name in aliases and name not in columns:
                column.replace(exp.Paren(this=aliases[name].copy()))


def _offered(name: str) -> str:
    dialect = str(name).strip().lower()
    if dialect not in SUPPORTED_DIALECTS:
        raise TranspileRefused(f"The SQL dialect '{dialect[:40]}' is not offered.")
    return dialect


def _parse_one(sql: str, dialect: str) -> exp.Expr:
    if len(sql) > MAX_SQL_CHARS:
        raise TranspileRefused(f"The SQL is longer than {MAX_SQL_CHARS:,} characters.")
    tokenizer, parser = PER_THREAD.for_dialect(dialect)
    try:
        tokens = tokenize(tokenizer, sql)
        check_tokens(tokens)
        statements = parse(parser, tokens, sql)
    except Rejected as rejected:
        raise TranspileRefused(rejected.problem.message) from None
    if len(statements) != 1:
        raise TranspileRefused("Only one SQL statement can be translated.")
    return statements[0]


def _refuse_untranslatable(tree: exp.Expr, target: str) -> None:
    for call in tree.find_all(exp.Anonymous):
        raise TranspileRefused(
            f"The function {call.name.upper()}() has no known equivalent in {dialect_label(target)}.")
    for kind, dialects in _ONLY_IN.items():
        node = tree.find(kind)
        if node is not None and target not in dialects:
            word = kind.__name__.upper()
            raise TranspileRefused(f"{word} has no equivalent in {dialect_label(target)}.")


def _parse_back(text: str, target: str) -> None:
    tokenizer, parser = PER_THREAD.for_dialect(target)
    try:
        statements = parse(parser, tokenize(tokenizer, text), text)
    except Rejected:
        statements = []
    if len(statements) != 1:
        raise TranspileRefused(f"The translated query does not read back as one {dialect_label(target)} statement.")
