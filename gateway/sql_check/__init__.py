"""The SQL check: one statement, an allow-listed read-only tree, grounding against the request's schema.

Public names (docs/contract.md; tools outside the gateway import them): `check_sql(query, *, schema, dialect,
policy)`, `SqlPolicy`, `SqlCheck` (`.valid`, `.error_code`, `.problems`, `.as_dict()`), `Problem`,
`SUPPORTED_DIALECTS`, and the schema and model-output helpers below. One concern a module:

    result.py     the vocabulary (policy, problems, result, limits) - a leaf
    parsing.py    tokenize and parse with limits
    guard.py      the allow-list walk
    catalogs.py   per-dialect deny-lists: system catalogs, file-like table names, reserved words as aliases
    grounding.py  tables and columns against the schema model (gateway/schema_model: the one schema reader)
    schema.py     the public schema helpers, views of that model
    cost.py       what only asks for huge output or unbounded work (expensive_sql)
    extract.py    model output -> bare SQL
    schema_db.py  the schema model -> empty SQLite images (cached per text) and DuckDB DDL
    duck.py       the bounded DuckDB the compile step prepares in
    compile.py    compile_sql: prepare the query on a real engine against those empty tables
    check.py      check_sql, which runs them in order
    transpile.py  transpile_sql: the checked SQLite query in the analyst's dialect, or a refusal
    transpiled.py its vocabulary (Transpiled, TranspileRefused, MODEL_DIALECT) - a leaf
    reserved_words.py  words each target reserves (quoted when transpiling) - a leaf
    meaning/      SQLite's meanings made explicit before transpiling (a package of rules)
    target/       the target engines: does the transpiled query compile on the analyst's engine?
    dialect_names.py   how each dialect is named to a person, in menu order - a leaf
"""

from gateway.schema_model import SchemaModel, read_schema
from gateway.sql_check.check import check_sql
from gateway.sql_check.compile import CompileResult, compile_sql
from gateway.sql_check.dialect_names import dialect_label, in_menu_order
from gateway.sql_check.extract import extract_sql
from gateway.sql_check.result import (
    ADVISORY_CODES,
    INVALID_CODES,
    MAX_PAREN_DEPTH,
    MAX_SQL_CHARS,
    SUPPORTED_DIALECTS,
    Allowance,
    Problem,
    SqlCheck,
    SqlGrounding,
    SqlPolicy,
    Verified,
)
from gateway.sql_check.schema import create_table_statements, find_create_tables, parse_schema
from gateway.sql_check.transpile import transpile_sql
from gateway.sql_check.transpiled import MODEL_DIALECT, Transpiled, TranspileRefused

__all__ = [
    "ADVISORY_CODES",
    "INVALID_CODES",
    "MAX_PAREN_DEPTH",
    "MAX_SQL_CHARS",
    "MODEL_DIALECT",
    "SUPPORTED_DIALECTS",
    "Allowance",
    "CompileResult",
    "Problem",
    "SchemaModel",
    "SqlCheck",
    "SqlGrounding",
    "SqlPolicy",
    "TranspileRefused",
    "Transpiled",
    "Verified",
    "check_sql",
    "compile_sql",
    "create_table_statements",
    "dialect_label",
    "extract_sql",
    "find_create_tables",
    "in_menu_order",
    "parse_schema",
    "read_schema",
    "transpile_sql",
]
