"""The check's vocabulary: policy, problems, the result object and the limits. A leaf: imports nothing of the
gateway's, so every other module of the check (and of the gateway) can use it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

MAX_SQL_CHARS = 20_000
# sqlglot's recursive-descent parser spends ~20 Python frames per nested parenthesis, so ~45 levels exhaust
# the default recursion limit; 32 leaves head-room for the caller's own stack. Real text-to-SQL rarely
# passes 10.
MAX_PAREN_DEPTH = 32
# Left-deep chains (a OR b OR ...) parse without recursion but make deep trees that recursive consumers
# choke on.
MAX_TREE_DEPTH = 256

# Only the dialects whose attack classes the guard's corpora and engine tests cover (docs/sql-guard.md says,
# per dialect, what it stops). BigQuery, Snowflake, Oracle, Spark, ClickHouse... were dropped: each has its
# own file, stage, catalog and settings syntax that nothing here tests.
SUPPORTED_DIALECTS: frozenset[str] = frozenset({"sqlite", "postgres", "mysql", "duckdb", "tsql"})


class SqlGrounding(StrEnum):
    STRICT = "strict"  # a table or column the request's schema lacks refuses the SQL (`ungrounded_sql`)
    ADVISORY = "advisory"  # ... is only reported


class SqlPolicy(StrEnum):
    READ_ONLY = "read_only"
    ALLOW_WRITES = "allow_writes"  # the seed allowed INSERT/UPDATE/DELETE; DDL stays forbidden


class Allowance(StrEnum):
    """What to do with SQL the check can't verify, or that only asks for huge output or unbounded work."""

    REFUSE = "refuse"  # 422 unverifiable_sql / expensive_sql
    ALLOW = "allow"  # answered, with a warning among the problems


# How far an answer was verified: `compiled` (an engine compiled it against the schema), `grounded` (every table
# and column it names was checked against the schema; compiling was not possible, `verified_reason` says why),
# `unverified` (neither: no schema, or a part of it that could not be read).
Verified = Literal["compiled", "grounded", "unverified"]


@dataclass(frozen=True)
class Problem:
    code: str
    message: str


# Grounding codes: they refuse the SQL under strict grounding (error code `ungrounded_sql`) and are only
# reported under advisory grounding.
GROUNDING_CODES: frozenset[str] = frozenset({"unknown_table", "unknown_column", "ambiguous_table"})
# Codes that never make a check invalid by themselves (the grounding ones only under advisory grounding; the
# `_allowed` ones are the warnings of SQLGATE_SQL_UNVERIFIED / SQLGATE_SQL_EXPENSIVE = allow).
ADVISORY_CODES: frozenset[str] = frozenset({"unknown_table", "unknown_column", "ambiguous_table", "no_where_clause",
                                            "unverifiable_allowed", "expensive_allowed"})
# Blocking codes that mean "this is not SQL we could read"; every other blocking code means "unsafe".
INVALID_CODES: frozenset[str] = frozenset({"empty", "parse_error", "too_long", "too_deep", "does_not_compile"})


@dataclass(frozen=True)
class SqlCheck:
    valid: bool
    statement_type: str | None
    read_only: bool
    tables: tuple[str, ...]
    columns: tuple[str, ...]
    unknown_tables: tuple[str, ...]
    unknown_columns: tuple[str, ...]
    problems: tuple[Problem, ...]
    dialect: str
    # The compile step (compile.py): True compiles against the schema, False does not, None not decided (why in
    # the message) or not tried (the check stopped earlier).
    compiled: bool | None = None
    compile_message: str | None = None
    verified: Verified = "unverified"
    verified_reason: str | None = None  # why not compiled (null when compiled)

    @property
    def error_code(self) -> str | None:
        """None when valid, else `invalid_sql` (unreadable), `schema_too_long`, `expensive_sql` (only asks for huge
        output or unbounded work), `unsafe_sql` (readable but not allowed), `unverifiable_sql` (it reads a part of
        the schema that could not be read) or `ungrounded_sql` (it uses tables or columns the schema lacks)."""
        if self.valid:
            return None
        codes = {problem.code for problem in self.problems}
        if codes & (INVALID_CODES - {"does_not_compile"}):
            return "invalid_sql"
        if "schema_too_long" in codes:
            return "schema_too_long"
        if "expensive" in codes:
            return "expensive_sql"
        if "unverifiable" in codes:
            return "unverifiable_sql"
        # Invalid with grounding problems means strict grounding refused it (an unknown column also fails the
        # compile step; the grounding problem names the cause).
        if codes & GROUNDING_CODES:
            return "ungrounded_sql"
        if "does_not_compile" in codes:
            return "invalid_sql"
        return "unsafe_sql"

    def as_dict(self) -> dict[str, object]:
        """The check object of docs/contract.md, plus `error_code`."""
        return {
            "valid": self.valid,
            "statement_type": self.statement_type,
            "read_only": self.read_only,
            "tables": list(self.tables),
            "columns": list(self.columns),
            "unknown_tables": list(self.unknown_tables),
            "unknown_columns": list(self.unknown_columns),
            "problems": [{"code": problem.code, "message": problem.message} for problem in self.problems],
            "dialect": self.dialect,
            "compiled": self.compiled,
            "compile_message": self.compile_message,
            "verified": self.verified,
            "verified_reason": self.verified_reason,
            "error_code": self.error_code,
        }



class Rejected(Exception):
    """Stops the check early with one problem; caught by `check_sql`, never leaves the package."""

    def __init__(self, problem: Problem, statement_type: str | None = None) -> None:
        super().__init__(problem.code)
        self.problem = problem
        self.statement_type = statement_type


def too_deep() -> Problem:
    return Problem("too_deep", f"The SQL is nested too deeply (more than {MAX_PAREN_DEPTH} levels of "
                               "parentheses or a very long chain of operators).")
