"""A live database's schema as DDL text, read from its catalog, read-only: what `sqlgate ask --schema-from` sends
instead of pasted text.

- `postgresql://…` (or `postgres://…`): tables, views and materialized views of every user schema, qualified and
  quoted as `pg_dump --schema-only` writes them, with primary, unique and foreign keys and `COMMENT ON`
  descriptions; in a read-only transaction with a statement timeout.
- `sqlite:///PATH` (or a path ending in .db, .sqlite, .sqlite3): the CREATE statements SQLite keeps as written
  (what `.schema` prints), opened read-only.
- `duckdb:///PATH` (or a path ending in .duckdb): DuckDB's own DDL of its tables and views, opened read-only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
STATEMENT_TIMEOUT_MS = 15_000


class CatalogError(ValueError):
    """The source could not be read; the message says why in the user's terms."""


def schema_from(source: str) -> str:
    """The DDL of the database at `source` (see the module's docstring for what each kind gives)."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("postgres", "postgresql"):
        return _postgres(source)
    if scheme == "sqlite" or (not scheme and source.lower().endswith(SQLITE_SUFFIXES)):
        return _sqlite(_path(source, "sqlite"))
    if scheme == "duckdb" or (not scheme and source.lower().endswith(".duckdb")):
        return _duckdb(_path(source, "duckdb"))
    raise CatalogError(f"--schema-from takes postgresql://..., sqlite:///FILE or duckdb:///FILE, not {source!r}")


def _path(source: str, scheme: str) -> Path:
    path = Path(source.removeprefix(f"{scheme}://")) if "://" in source else Path(source)
    if not path.is_file():
        raise CatalogError(f"no {scheme} database file at {path}")
    return path


def _sqlite(path: Path) -> str:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = connection.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%' ORDER BY rowid").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise CatalogError(f"cannot read {path} as SQLite: {error}") from None
    return _joined(sql for (sql,) in rows)


def _duckdb(path: Path) -> str:
    import duckdb

    try:
        connection = duckdb.connect(str(path), read_only=True)
        try:
            tables = connection.execute("SELECT sql FROM duckdb_tables() WHERE NOT internal ORDER BY schema_name, "
                                        "table_name").fetchall()
            views = connection.execute("SELECT sql FROM duckdb_views() WHERE NOT internal ORDER BY schema_name, "
                                       "view_name").fetchall()
        finally:
            connection.close()
    except duckdb.Error as error:
        raise CatalogError(f"cannot read {path} as DuckDB: {error}") from None
    return _joined(sql for (sql,) in [*tables, *views])


_PG_COLUMNS = """
SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind,
       quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY n.nspname, c.relname, a.attnum
"""
_PG_CONSTRAINTS = """
SELECT conrelid, quote_ident(conname), pg_get_constraintdef(oid)
FROM pg_constraint WHERE contype IN ('p', 'u', 'f') ORDER BY conrelid, contype DESC, conname
"""
_PG_VIEWS = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind, pg_get_viewdef(c.oid, true)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY n.nspname, c.relname
"""
_PG_COMMENTS = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind, quote_ident(a.attname),
       d.description
FROM pg_description d
JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 3 NULLS FIRST
"""


def _postgres(url: str) -> str:
    try:
        import psycopg
    except ImportError:
        raise CatalogError("reading a PostgreSQL catalog needs psycopg: pip install 'psycopg[binary]'") from None
    try:
        with psycopg.connect(url, connect_timeout=10,
                             options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}") as connection:
            connection.read_only = True
            with connection.cursor() as cursor:
                # As pg_dump does: with no schema on the search path, every type and every table a view reads is
                # written qualified (`public.mood`), so the text is the same as the database's own dump.
                cursor.execute("SELECT pg_catalog.set_config('search_path', '', false)")
                columns = cursor.execute(_PG_COLUMNS).fetchall()
                constraints = cursor.execute(_PG_CONSTRAINTS).fetchall()
                views = cursor.execute(_PG_VIEWS).fetchall()
                comments = cursor.execute(_PG_COMMENTS).fetchall()
    except psycopg.Error as error:
        raise CatalogError(f"cannot read the PostgreSQL catalog: {str(error).strip()}") from None
    tables: dict[int, tuple[str, list[str]]] = {}
    for oid, name, _, column, kind, not_null in columns:
        tables.setdefault(oid, (name, []))[1].append(f"    {column} {kind}{' NOT NULL' if not_null else ''}")
    for relation, constraint, definition in constraints:
        if relation in tables:
            tables[relation][1].append(f"    CONSTRAINT {constraint} {definition}")
    statements = [f"CREATE TABLE {name} (\n" + ",\n".join(items) + "\n)" for name, items in tables.values()]
    statements += [f"CREATE {'MATERIALIZED ' if kind == 'm' else ''}VIEW {name} AS\n{definition.rstrip(';')}"
                   for name, kind, definition in views]
    for relation, kind, column, text in comments:
        target = f"COLUMN {relation}.{column}" if column else (
            "VIEW" if kind == "v" else "TABLE") + f" {relation}"
        statements.append(f"COMMENT ON {target} IS '{text.replace(chr(39), chr(39) * 2)}'")
    return _joined(statements)


def _joined(statements: Iterable[str]) -> str:
    text = ";\n\n".join(statement.strip().rstrip(";") for statement in statements)
    if not text:
        raise CatalogError("the database has no tables")
    return text + ";\n"
