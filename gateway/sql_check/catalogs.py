"""Deny-lists for table references (system catalogs, server files) and for reserved words used as aliases,
written per dialect. Strict grounding already refuses every table the request's schema does not declare; these
lists are what still stands when grounding is advisory or there is no schema. Imports only sqlglot and the
check's vocabulary."""

from __future__ import annotations

import re

import sqlglot.expressions as exp

from gateway.sql_check.result import Problem

# Schemas (or databases) that are system catalogs, per dialect: credentials, settings, other tenants' schemas.
_SYSTEM_SCHEMAS: dict[str, frozenset[str]] = {
    "sqlite": frozenset({"sqlite_temp", "temp"}),
    "postgres": frozenset({"information_schema", "pg_catalog", "pg_toast"}),
    "mysql": frozenset({"information_schema", "mysql", "performance_schema", "sys"}),
    "duckdb": frozenset({"information_schema", "pg_catalog", "system", "temp"}),
    "tsql": frozenset({"information_schema", "sys", "master", "msdb", "tempdb", "model", "mssqlsystemresource"}),
}
_SYSTEM_TABLES: dict[str, frozenset[str]] = {
    "sqlite": frozenset({"dbstat", "sqlite_dbpage", "sqlite_stmt"}),
    "postgres": frozenset(),
    "mysql": frozenset(),  # mysql.user and the like are caught by their schema
    "duckdb": frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master"}),
    "tsql": frozenset({"sysobjects", "syscolumns", "sysusers", "syslogins", "sysxlogins", "sysdatabases",
                       "sysprocesses", "syscomments", "sysservers", "sysremotelogins", "sysoledbusers",
                       "sysconfigures", "syscacheobjects", "sysfiles", "sysaltfiles"}),
}
# Name prefixes of catalog tables, views and table functions.
_SYSTEM_PREFIXES: dict[str, tuple[str, ...]] = {
    "sqlite": ("sqlite_", "pragma_"),
    "postgres": ("pg_",),
    "mysql": (),
    "duckdb": ("duckdb_", "pragma_", "pg_"),
    "tsql": (),  # sys.* views are caught by their schema, the old sys* compatibility views by name
}

# Every dialect's lists apply in every dialect: the request's dialect may not be the server's (a PostgreSQL
# catalog name checked as T-SQL is still a catalog on the real server), and no analyst table is named like these.
_ALL_SYSTEM_SCHEMAS: frozenset[str] = frozenset[str]().union(*_SYSTEM_SCHEMAS.values())
_ALL_SYSTEM_TABLES: frozenset[str] = frozenset[str]().union(*_SYSTEM_TABLES.values()) | {
    "sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema", "sqlite_sequence",
    "sqlite_stat1", "sqlite_stat4"}
_ALL_SYSTEM_PREFIXES = tuple(sorted({prefix for prefixes in _SYSTEM_PREFIXES.values() for prefix in prefixes}))

_DUCKDB_QUALIFIERS = frozenset({"main", "memory"})

# A table name that reads like a path, URL, glob, stage or database link. DuckDB reads `FROM 'x.csv'` and
# `FROM "/etc/passwd"` as files (and https:// and s3:// URLs); a dot inside a quoted name is a file extension.
_FILE_LIKE = re.compile(r"[/\\:*?@~%{}\[\]]|\.")


def table_problem(table: exp.Table, dialect: str, declared_qualifiers: frozenset[str] = frozenset()
                  ) -> Problem | None:
    """Why this table reference is refused whatever the schema says, or None. `declared_qualifiers`: the
    schema / database names the request's CREATE TABLE text itself uses."""
    parts = [part for part in (table.args.get("catalog"), table.args.get("db"), table.this) if part is not None]
    for part in parts:
        if isinstance(part, exp.Identifier) and _FILE_LIKE.search(part.name):
            return Problem("forbidden_expression",
                           f"The table name '{part.name[:80]}' reads like a file, URL or link; only tables of "
                           "the schema can be read.")
        if isinstance(part, exp.Literal):
            return Problem("forbidden_expression", "A string is not a table name; only tables of the schema "
                                                   "can be read.")
    if not isinstance(table.this, exp.Identifier):
        return None  # a table function: the walk decides whether that function is allowed
    name = table.name.lower()
    qualifiers = [part.lower() for part in (table.catalog, table.db) if part]
    if dialect == "duckdb" and any(q not in _DUCKDB_QUALIFIERS | declared_qualifiers for q in qualifiers):
        # DuckDB reads `secrets.csv` (and "secrets"."csv") as the file of that name when no such table exists.
        shown = ".".join([*[q for q in (table.catalog, table.db) if q], table.name])
        return Problem("forbidden_expression",
                       f"In DuckDB '{shown[:80]}' reads a file of that name unless such a table exists; only "
                       "main or a schema the CREATE TABLE text declares may qualify a table.")
    if (name in _ALL_SYSTEM_TABLES or any(q in _ALL_SYSTEM_SCHEMAS for q in qualifiers)
            or name.startswith(_ALL_SYSTEM_PREFIXES)):
        shown = ".".join([*[q for q in (table.catalog, table.db) if q], table.name])
        return Problem("forbidden_expression", f"The SQL reads the system catalog '{shown[:80]}'.")
    return None



# Words a server runs as a statement of their own. SQL Server needs no `;` between statements, so
# `SELECT 1 SHUTDOWN` is a SELECT and then a SHUTDOWN, while sqlglot reads SHUTDOWN as the column's alias.
_STATEMENT_WORDS = frozenset({
    "alter", "analyze", "attach", "backup", "begin", "call", "checkpoint", "cluster", "commit", "copy", "create",
    "dbcc", "deallocate", "declare", "delete", "deny", "detach", "discard", "drop", "dump", "end", "exec",
    "execute", "explain", "grant", "go", "goto", "insert", "install", "kill", "listen", "load", "lock", "merge",
    "notify", "pragma", "prepare", "print", "raiserror", "reconfigure", "reindex", "release", "reset",
    "restore", "revert", "revoke", "rollback", "save", "savepoint", "set", "setuser", "show", "shutdown",
    "truncate", "unlock", "update", "use", "vacuum", "waitfor", "while", "writetext", "updatetext",
    "readtext", "bulk", "open", "close", "fetch", "return", "break", "continue", "if", "else", "tran",
    "transaction", "trigger", "disable", "enable", "flush", "handler", "optimize", "repair", "checksum",
})
# SQL Server's reserved keywords (docs: "Reserved keywords (Transact-SQL)"); none is a valid bare alias there.
_TSQL_RESERVED_TEXT = """
add all alter and any as asc authorization backup begin between break browse bulk by cascade case check
checkpoint close clustered coalesce collate column commit compute constraint contains containstable continue
convert create cross current current_date current_time current_timestamp current_user cursor database dbcc
deallocate declare default delete deny desc disk distinct distributed double drop dump else end errlvl escape
except exec execute exists exit external fetch file fillfactor for foreign freetext freetexttable from full
function goto grant group having holdlock identity identity_insert identitycol if in index inner insert
intersect into is join key kill left like lineno load merge national nocheck nonclustered not null nullif of
off offsets on open opendatasource openquery openrowset openxml option or order outer over percent pivot plan
precision primary print proc procedure public raiserror read readtext reconfigure references replication
restore restrict return revert revoke right rollback rowcount rowguidcol rule save schema securityaudit select
semantickeyphrasetable semanticsimilaritydetailstable semanticsimilaritytable session_user set setuser
shutdown some statistics system_user table tablesample textsize then to top tran transaction trigger truncate
try_convert tsequal union unique unpivot update updatetext use user values varying view waitfor when where
while with writetext go
"""
_TSQL_RESERVED = frozenset(_TSQL_RESERVED_TEXT.split())
_RESERVED_ALIASES: dict[str, frozenset[str]] = {"tsql": _TSQL_RESERVED | _STATEMENT_WORDS}


def alias_problem(identifier: exp.Identifier, dialect: str) -> Problem | None:
    """A bare alias that is a reserved word of the dialect: the server may run it as a statement."""
    if identifier.args.get("quoted"):
        return None
    word = identifier.name.lower()
    if word in _RESERVED_ALIASES.get(dialect, _STATEMENT_WORDS):
        return Problem("forbidden_expression",
                       f"'{identifier.name[:40]}' is a reserved word in {dialect}, not an alias: the server "
                       "could run it as a statement of its own. Quote the alias or choose another name.")
    return None
