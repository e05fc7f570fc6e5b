"""check_sql: the one entry point. Limits and raw-text traps first, then parse, the allow-list walk, the cost guard,
grounding against the schema model, the compile step; the result says how far the SQL was verified.

Everything fails closed: any surprise while tokenizing, parsing or walking becomes `invalid_sql`, never an
exception. docs/sql-guard.md explains the policy and the problem codes."""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot.expressions as exp

from gateway.schema_model import MAX_SCHEMA_CHARS, SchemaModel, read_schema
from gateway.sql_check.compile import CompileResult, compile_sql
from gateway.sql_check.cost import cost_problems
from gateway.sql_check.grounding import Grounding, ground
from gateway.sql_check.guard import (
    BACKSLASH_QUOTE,
    CONTROL_CHARACTERS,
    EXECUTABLE_COMMENT,
    MODE_DEPENDENT_ESCAPES,
    walk_tree,
)
from gateway.sql_check.parsing import PER_THREAD, check_tokens, parse, tokenize
from gateway.sql_check.result import (
    ADVISORY_CODES,
    MAX_SQL_CHARS,
    SUPPORTED_DIALECTS,
    Allowance,
    Problem,
    Rejected,
    SqlCheck,
    SqlGrounding,
    SqlPolicy,
    Verified,
    too_deep,
)


def check_sql(
    sql: str, *, schema: str | None, dialect: str = "sqlite", policy: SqlPolicy = SqlPolicy.READ_ONLY,
    grounding: SqlGrounding | str = SqlGrounding.STRICT, unverified: Allowance | str = Allowance.REFUSE,
    expensive: Allowance | str = Allowance.REFUSE,
) -> SqlCheck:
    """Check one generated statement against the policy and the schema; never raises on any SQL text.

    `grounding="strict"` (the default) refuses tables and columns the schema lacks (`ungrounded_sql`);
    `"advisory"` only reports them. `unverified` / `expensive` = "refuse" (the default) or "allow" (a warning):
    SQL that reads a part of the schema text that could not be read (`unverifiable_sql`), SQL that only asks for
    huge output or unbounded work (`expensive_sql`). Without a schema there is nothing to ground against."""
    dialect_name = str(dialect).strip().lower()
    # a wrong mode is the caller's bug: ValueError (a wrong policy fails closed, below)
    strict = SqlGrounding(grounding) is SqlGrounding.STRICT
    allowances = Allowance(unverified), Allowance(expensive)
    try:
        return _check(sql, schema, dialect_name, _Options(SqlPolicy(policy), strict, *allowances))
    except Rejected as rejected:
        return _refused(dialect_name, rejected.problem, rejected.statement_type)
    except RecursionError:
        return _refused(dialect_name, too_deep())
    except Exception:  # fail closed: whatever sqlglot or we trip over, the SQL is not passed
        return _refused(dialect_name, _UNANALYSABLE)


@dataclass(frozen=True)
class _Options:
    policy: SqlPolicy
    strict: bool
    unverified: Allowance
    expensive: Allowance


_UNANALYSABLE = Problem("parse_error", "The SQL could not be analysed, so it is refused.")


def _refused(dialect: str, problem: Problem, statement_type: str | None = None) -> SqlCheck:
    return SqlCheck(valid=False, statement_type=statement_type, read_only=False, tables=(), columns=(),
                    unknown_tables=(), unknown_columns=(), problems=(problem,), dialect=dialect,
                    verified_reason="refused before it could be verified")


def _check(sql: str, schema: str | None, dialect_name: str, options: _Options) -> SqlCheck:
    root = _statement(sql, dialect_name)
    if schema is not None and len(schema) > MAX_SCHEMA_CHARS:
        raise Rejected(Problem("schema_too_long", f"The schema is {len(schema):,} characters long; the check reads "
                                                  f"at most {MAX_SCHEMA_CHARS:,}."), root.key)
    model = read_schema(schema) if schema and schema.strip() else None
    walk = walk_tree(root, options.policy, dialect_name, model.qualifiers() if model else frozenset())
    if walk.blocking:
        return SqlCheck(valid=False, statement_type=root.key, read_only=False, tables=walk.table_names(),
                        columns=(), unknown_tables=(), unknown_columns=(), problems=tuple(walk.blocking),
                        dialect=dialect_name, verified_reason="refused before it could be verified")
    costly = cost_problems(root)
    if costly and options.expensive is Allowance.REFUSE:
        return SqlCheck(valid=False, statement_type=root.key, read_only=isinstance(root, exp.Query),
                        tables=walk.table_names(), columns=(), unknown_tables=(), unknown_columns=(),
                        problems=tuple(costly), dialect=dialect_name,
                        verified_reason="refused before any engine saw it: it only asks for huge output")
    grounding = ground(walk, model, dialect_name)
    problems: list[Problem] = [*grounding.problems, *walk.warnings]
    problems += [Problem("expensive_allowed", problem.message) for problem in costly]
    compiled = compile_sql(sql, schema=schema, dialect=dialect_name,
                           touched=grounding.touched if model is not None else None)
    if compiled.compiled is False and grounding.problems and not options.strict:
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
    elif grounding.unverifiable:
        # The engine could not decide without those tables: say which statement stopped it.
        problems[:0] = _unverifiable(grounding, options.unverified)
    blocking = {problem.code for problem in problems} - ADVISORY_CODES
    valid = not blocking and not (options.strict and grounding.problems)
    return SqlCheck(
        valid=valid,
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
        verified=_verified(compiled, grounding, model),
        verified_reason=None if compiled.compiled is True else _reason(compiled, grounding, model),
    )


def _statement(sql: str, dialect_name: str) -> exp.Expr:
    """The one statement of `sql`, parsed within the check's limits, or Rejected."""
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
    return statements[0]


def _unverifiable(grounding: Grounding, allowance: Allowance) -> list[Problem]:
    code = "unverifiable" if allowance is Allowance.REFUSE else "unverifiable_allowed"
    return [Problem(code, f"The query reads {part.name or 'a table'}, which the schema defines in a statement the "
                          f"check could not read ({part.reason}): {part.excerpt}")
            for part in grounding.unverifiable]


def _verified(compiled: CompileResult, grounding: Grounding, model: SchemaModel | None) -> Verified:
    if compiled.compiled is True:
        return "compiled"
    if model is not None and grounding.covered:
        return "grounded"
    return "unverified"


def _reason(compiled: CompileResult, grounding: Grounding, model: SchemaModel | None) -> str:
    if model is None:
        return "There is no schema to check the query against."
    if grounding.unverifiable:
        return "It reads a part of the schema that could not be read."
    return compiled.message or "It was not compiled."
