"""check_sql: the one entry point. Limits and raw-text traps first, then parse, the allow-list walk, grounding.

Everything fails closed: any surprise while tokenizing, parsing or walking becomes `invalid_sql`, never an
exception. docs/sql-guard.md explains the policy and the problem codes."""

from __future__ import annotations

import sqlglot.expressions as exp

from gateway.sql_check.compile import CompileResult, compile_sql
from gateway.sql_check.grounding import ground
from gateway.sql_check.guard import (
    BACKSLASH_QUOTE,
    CONTROL_CHARACTERS,
    EXECUTABLE_COMMENT,
    MODE_DEPENDENT_ESCAPES,
    walk_tree,
)
from gateway.sql_check.parsing import PER_THREAD, check_tokens, parse, tokenize
from gateway.sql_check.result import (
    MAX_SQL_CHARS,
    SUPPORTED_DIALECTS,
    Problem,
    Rejected,
    SqlCheck,
    SqlGrounding,
    SqlPolicy,
    too_deep,
)
from gateway.sql_check.schema import schema_qualifiers


def check_sql(
    sql: str, *, schema: str | None, dialect: str = "sqlite", policy: SqlPolicy = SqlPolicy.READ_ONLY,
    grounding: SqlGrounding | str = SqlGrounding.STRICT,
) -> SqlCheck:
    """Check one generated statement against the policy and the schema; never raises on any SQL text.

    `grounding="strict"` (the default) refuses tables and columns the schema lacks (`ungrounded_sql`);
    `"advisory"` only reports them. Without a readable schema there is nothing to ground against."""
    dialect_name = str(dialect).strip().lower()
    strict = SqlGrounding(grounding) is SqlGrounding.STRICT  # a wrong mode is the caller's bug: ValueError
    try:
        return _check(sql, schema, dialect_name, SqlPolicy(policy), strict)
    except Rejected as rejected:
        return _refused(dialect_name, rejected.problem, rejected.statement_type)
    except RecursionError:
        return _refused(dialect_name, too_deep())
    except Exception:  # fail closed: whatever sqlglot or we trip over, the SQL is not passed
        return _refused(dialect_name, _UNANALYSABLE)


_UNANALYSABLE = Problem("parse_error", "The SQL could not be analysed, so it is refused.")


def _refused(dialect: str, problem: Problem, statement_type: str | None = None) -> SqlCheck:
    return SqlCheck(valid=False, statement_type=statement_type, read_only=False, tables=(), columns=(),
                    unknown_tables=(), unknown_columns=(), problems=(problem,), dialect=dialect)




def _check(sql: str, schema: str | None, dialect_name: str, policy: SqlPolicy, strict: bool) -> SqlCheck:
    if not isinstance(sql, str):
        raise Rejected(Problem("parse_error", "The SQL is not text."))
    if len(sql) > MAX_SQL_CHARS:
        raise Rejected(Problem("too_long", f"The SQL is {len(sql):,} characters long; the limit is "
                                            f"{MAX_SQL_CHARS:,}."))
    if not sql.strip():
        raise Rejected(Problem("empty", "There is no SQL statement."))
    if CONTROL_CHARACTERS.search(sql):
        raise Rejected(Problem("parse_error", "The SQL contains control characters (NUL, vertical tab, "
                                               "Unicode line separators...), which no query needs."))
    if dialect_name not in SUPPORTED_DIALECTS:
        raise Rejected(Problem("parse_error", f"The SQL dialect '{dialect_name[:40]}' is not supported."))

    if EXECUTABLE_COMMENT.search(sql):
        raise Rejected(Problem("forbidden_expression",
                                "The SQL contains an executable comment (/*! ... */ or /*+ ... */); "
                                "MySQL-family servers act on its contents."))
    if dialect_name in MODE_DEPENDENT_ESCAPES and BACKSLASH_QUOTE.search(sql):
        raise Rejected(Problem("forbidden_expression",
                                "A backslash before a quote ends the string or not depending on server settings "
                                "(MySQL's NO_BACKSLASH_ESCAPES, PostgreSQL's standard_conforming_strings); "
                                "write a quote inside a string as ''."))
    tokenizer, parser = PER_THREAD.for_dialect(dialect_name)
    tokens = tokenize(tokenizer, sql)
    check_tokens(tokens)
    statements = parse(parser, tokens, sql)
    if not statements:
        raise Rejected(Problem("empty", "There is no SQL statement, only comments or semicolons."))
    if len(statements) > 1:
        kinds = ", ".join(statement.key.upper() for statement in statements[:5])
        raise Rejected(Problem("multiple_statements",
                                f"Only one statement is allowed; found {len(statements)} ({kinds})."))
    root = statements[0]
    declared = schema_qualifiers(schema) if schema else frozenset()
    walk = walk_tree(root, policy, dialect_name, declared)
    if walk.blocking:
        return SqlCheck(valid=False, statement_type=root.key, read_only=False, tables=walk.table_names(),
                        columns=(), unknown_tables=(), unknown_columns=(), problems=tuple(walk.blocking),
                        dialect=dialect_name)

    grounding = ground(walk, schema, dialect_name)
    problems = [*grounding.problems, *walk.warnings]
    compiled = compile_sql(sql, schema=schema, dialect=dialect_name)
    if compiled.compiled is False and grounding.problems and not strict:
        # Advisory grounding is for partial schemas: an engine that lacks the tables can't judge the query.
        compiled = CompileResult(compiled=None, engine=compiled.engine, path=compiled.path,
                                 message="not decided: the query uses tables or columns the given schema lacks "
                                         "(advisory grounding)")
    if compiled.compiled is False:
        # After the grounding problems, which name the cause when there is one ("no such column" is the engine's
        # word for an unknown column); first otherwise.
        failed = Problem("does_not_compile",
                         f"The SQL does not compile against the schema ({compiled.engine}: {compiled.message}).")
        problems.insert(len(grounding.problems), failed)
    return SqlCheck(
        valid=compiled.compiled is not False and not (strict and grounding.problems),
        statement_type=root.key,
        read_only=isinstance(root, exp.Query),
        tables=walk.table_names(),
        columns=grounding.columns,
        unknown_tables=grounding.unknown_tables,
        unknown_columns=grounding.unknown_columns,
        problems=tuple(problems),
        dialect=dialect_name,
        compiled=compiled.compiled,
        compile_message=compiled.message,
    )

