"""The SQL guard: one statement, an allow-listed read-only tree, grounding against the request's schema.

Everything here fails closed: any surprise while tokenizing, parsing or walking becomes `invalid_sql`, never
an exception. docs/sql-guard.md explains the policy and the problem codes.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import sqlglot.expressions as exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.parser import Parser
from sqlglot.tokenizer_core import Token, TokenType
from sqlglot.tokens import Tokenizer

MAX_SQL_CHARS = 20_000
# sqlglot's recursive-descent parser spends ~20 Python frames per nested parenthesis, so ~45 levels exhaust
# the default recursion limit; 32 leaves head-room for the caller's own stack. Real text-to-SQL rarely
# passes 10.
MAX_PAREN_DEPTH = 32
# Left-deep chains (a OR b OR ...) parse without recursion but make deep trees that recursive consumers
# choke on.
MAX_TREE_DEPTH = 256
MAX_SCHEMA_CHARS = 20_000  # the gateway caps schemas far lower; past this, grounding is skipped

SUPPORTED_DIALECTS: frozenset[str] = frozenset(
    {"sqlite", "postgres", "mysql", "duckdb", "bigquery", "tsql", "snowflake", "oracle", "redshift", "trino",
     "presto", "spark", "databricks", "clickhouse", "hive", "teradata"}
)


class SqlPolicy(StrEnum):
    READ_ONLY = "read_only"
    ALLOW_WRITES = "allow_writes"  # the seed allowed INSERT/UPDATE/DELETE; DDL stays forbidden


@dataclass(frozen=True)
class Problem:
    code: str
    message: str


# Advisory codes: reported, but they never make a check invalid.
ADVISORY_CODES: frozenset[str] = frozenset({"unknown_table", "unknown_column", "no_where_clause"})
# Blocking codes that mean "this is not SQL we could read"; every other blocking code means "unsafe".
INVALID_CODES: frozenset[str] = frozenset({"empty", "parse_error", "too_long", "too_deep"})


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

    @property
    def error_code(self) -> str | None:
        """None when valid, else `invalid_sql` (unreadable) or `unsafe_sql` (readable but not allowed)."""
        if self.valid:
            return None
        if any(problem.code in INVALID_CODES for problem in self.problems):
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
            "error_code": self.error_code,
        }


# ------------------------------------------------------------------------------------------------------------
# Allow-lists. Exact types only: a dialect-specific subclass of an allowed node is not allowed until reviewed.

_READ_NODES: frozenset[type[exp.Expr]] = frozenset({
    # query structure
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE, exp.From, exp.Join,
    exp.Where, exp.Group, exp.Having, exp.Qualify, exp.Order, exp.Ordered, exp.Limit, exp.Offset, exp.Fetch,
    exp.LimitOptions,
    exp.Distinct, exp.Table, exp.TableAlias, exp.Alias, exp.Column, exp.Identifier, exp.Star, exp.Values,
    exp.Tuple, exp.Window, exp.WindowSpec, exp.Filter, exp.WithinGroup, exp.IgnoreNulls, exp.RespectNulls,
    exp.Cube, exp.Rollup, exp.GroupingSets, exp.Unnest, exp.Placeholder,
    # literals and types
    exp.Literal, exp.Null, exp.Boolean, exp.Var, exp.DataType, exp.DataTypeParam, exp.Interval, exp.RawString,
    exp.ByteString, exp.HexString, exp.BitString, exp.National, exp.UnicodeString, exp.Array, exp.Bracket,
    exp.JSONPath, exp.JSONPathKey, exp.JSONPathRoot, exp.JSONPathSubscript, exp.JSONPathWildcard,
    # operators and predicates
    exp.Paren, exp.Neg, exp.Not, exp.And, exp.Or, exp.Xor, exp.EQ, exp.NEQ, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.DPipe,
    exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseXor, exp.BitwiseNot, exp.BitwiseLeftShift,
    exp.BitwiseRightShift,
    exp.Like, exp.ILike, exp.Glob, exp.SimilarTo, exp.RegexpLike, exp.RegexpILike, exp.Escape, exp.Is, exp.In,
    exp.Between, exp.Exists, exp.Any, exp.All, exp.Collate, exp.AtTimeZone,
})

# Ordinary read functions (aggregates, windows, conditionals, casts, strings, maths, dates, JSON reads).
_READ_FUNCTIONS: frozenset[type[exp.Expr]] = frozenset({
    # aggregates and window functions
    exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.GroupConcat, exp.ArrayAgg, exp.Stddev, exp.StddevPop,
    exp.StddevSamp, exp.Variance, exp.VariancePop, exp.Median, exp.Mode, exp.CountIf, exp.AnyValue, exp.First,
    exp.Last, exp.FirstValue, exp.LastValue, exp.NthValue, exp.Lag, exp.Lead, exp.RowNumber, exp.Rank,
    exp.DenseRank, exp.PercentRank, exp.CumeDist, exp.Ntile, exp.PercentileCont, exp.PercentileDisc, exp.Corr,
    exp.CovarPop, exp.CovarSamp, exp.LogicalAnd, exp.LogicalOr, exp.Grouping, exp.ApproxDistinct, exp.ArgMax,
    exp.ArgMin, exp.BitwiseAndAgg, exp.BitwiseOrAgg, exp.BitwiseXorAgg,
    # conditionals and casts
    exp.Case, exp.If, exp.Coalesce, exp.Nullif, exp.Nvl2, exp.Greatest, exp.Least, exp.Cast, exp.TryCast,
    exp.Convert,
    # maths
    exp.Abs, exp.Ceil, exp.Floor, exp.Round, exp.Trunc, exp.Sqrt, exp.Cbrt, exp.Pow, exp.Exp, exp.Ln, exp.Log,
    exp.Sign, exp.Pi, exp.Degrees, exp.Radians, exp.Sin, exp.Cos, exp.Tan, exp.Asin, exp.Acos, exp.Atan,
    exp.Atan2, exp.Cot, exp.Rand, exp.SafeDivide,
    # strings
    exp.Lower, exp.Upper, exp.Length, exp.BitLength, exp.ByteLength, exp.Substring, exp.SubstringIndex,
    exp.Trim, exp.Replace, exp.Concat, exp.ConcatWs, exp.StrPosition, exp.Left, exp.Right, exp.Pad,
    exp.Repeat, exp.Reverse, exp.Initcap, exp.Ascii, exp.Chr, exp.Unicode, exp.Split, exp.SplitPart,
    exp.RegexpExtract, exp.RegexpReplace, exp.RegexpCount, exp.RegexpSubstr, exp.Levenshtein, exp.Soundex,
    exp.Translate, exp.Hex, exp.Unhex, exp.MD5, exp.Format, exp.NumberToStr, exp.ToChar, exp.ToNumber,
    exp.Contains, exp.StartsWith, exp.EndsWith, exp.Space, exp.Stuff,
    # dates and times
    exp.CurrentDate, exp.CurrentTime, exp.CurrentTimestamp, exp.CurrentDatetime, exp.Localtime,
    exp.Localtimestamp, exp.Date, exp.Datetime, exp.Time, exp.Timestamp, exp.DateAdd, exp.DateSub,
    exp.DateDiff, exp.DateTrunc, exp.TimestampTrunc, exp.DatetimeTrunc, exp.TimeTrunc, exp.Extract, exp.Year,
    exp.Month, exp.Day, exp.DayOfWeek, exp.DayOfWeekIso, exp.DayOfMonth, exp.DayOfYear, exp.Hour, exp.Minute,
    exp.Second, exp.Quarter, exp.Week, exp.WeekOfYear, exp.Dayname, exp.Monthname, exp.LastDay, exp.TimeToStr,
    exp.StrToTime, exp.StrToDate, exp.StrToUnix, exp.TimeStrToTime, exp.TimeStrToDate, exp.TimeStrToUnix,
    exp.TimeToUnix, exp.TimeToTimeStr, exp.UnixToTime, exp.UnixToStr, exp.UnixToTimeStr, exp.TsOrDsToDate,
    exp.TsOrDsToTimestamp, exp.TsOrDsToDatetime, exp.TsOrDsToTime, exp.TsOrDsAdd, exp.TsOrDsDiff,
    exp.TsOrDsToDateStr, exp.DateStrToDate, exp.DateToDateStr, exp.DatetimeAdd, exp.DatetimeSub,
    exp.DatetimeDiff, exp.TimestampAdd, exp.TimestampSub, exp.TimestampDiff, exp.TimeAdd, exp.TimeSub,
    exp.TimeDiff, exp.AddMonths, exp.MonthsBetween, exp.MakeInterval, exp.DateFromParts, exp.TimeFromParts,
    exp.TimestampFromParts, exp.UnixDate, exp.UnixSeconds, exp.ConvertTimezone, exp.UtcDate, exp.UtcTime,
    exp.UtcTimestamp,
    # JSON and arrays (reads only)
    exp.JSONExtract, exp.JSONExtractScalar, exp.JSONBExtract, exp.JSONBExtractScalar, exp.JSONObject,
    exp.JSONArray, exp.JSONArrayAgg, exp.JSONObjectAgg, exp.ParseJSON, exp.JSONType, exp.ArraySize,
    exp.ArrayContains, exp.ArrayToString,
})

# Functions sqlglot does not model (they parse as exp.Anonymous) that are plain reads in the dialects we
# serve.
# Anything else anonymous (pg_sleep, load_file, dblink, xp_cmdshell, load_extension, ...) is refused.
_READ_ANONYMOUS_FUNCTIONS: frozenset[str] = frozenset({
    "julianday", "total", "printf", "ltrim", "rtrim", "age", "date_part", "field", "unixepoch", "char_length",
    "character_length", "datepart", "datename", "isnull", "nvl", "octet_length", "strpos", "to_date",
    "to_timestamp", "mid", "lcase", "ucase", "locate", "position", "truncate", "date_diff", "eomonth",
    "makedate", "maketime", "timediff", "sec_to_time", "time_to_sec", "period_diff", "to_days", "weekday",
    "yearweek", "justify_days", "isfinite", "trim_scale", "div", "ceiling", "log10", "log2", "power",
    "square", "random", "likelihood", "instr", "concat_ws", "format_number", "date", "datetime", "time",
    "strftime", "now", "sysdate", "curtime", "getdate", "current_date",
})

# Under ALLOW_WRITES these may appear below a root INSERT / UPDATE / DELETE.
_WRITE_ROOTS: tuple[type[exp.Expr], ...] = (exp.Insert, exp.Update, exp.Delete)
_WRITE_NODES: frozenset[type[exp.Expr]] = frozenset({exp.Schema, exp.Returning, exp.OnConflict})

# Used only to word the problem: every one of these is already refused by the allow-list.
_WRITE_OR_DDL: tuple[type[exp.Expr], ...] = (
    exp.DML, exp.DDL, exp.Drop, exp.Alter, exp.TruncateTable, exp.Grant, exp.Revoke, exp.Set, exp.Command,
    exp.Pragma, exp.Attach, exp.Detach, exp.Copy, exp.Use, exp.Transaction, exp.Commit, exp.Rollback,
    exp.LoadData, exp.Merge, exp.Cache, exp.Uncache, exp.Refresh, exp.Analyze, exp.Kill, exp.Export,
    exp.Install, exp.Execute, exp.ExecuteSql, exp.Declare, exp.Comment, exp.RenameColumn, exp.SwapTable,
    exp.Undrop, exp.AlterSession, exp.StoredProcedure, exp.Put, exp.Get, exp.MultitableInserts,
)

# Catalogs that hold credentials, settings or the whole schema: never what an analyst's question needs.
_SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "mysql", "performance_schema", "sys",
                             "sqlite_temp", "master", "msdb", "tempdb", "snowflake", "account_usage"})
_SYSTEM_TABLES = frozenset({
    "sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema", "sqlite_sequence",
    "sqlite_stat1", "pg_shadow", "pg_authid", "pg_user", "pg_roles", "pg_settings", "pg_file_settings",
    "pg_hba_file_rules", "pg_stat_activity", "pg_largeobject", "pg_user_mappings", "pg_tables", "pg_proc",
    "pg_class", "pg_namespace", "pg_database", "pg_stat_statements", "sysobjects", "syscolumns", "sysusers",
})

# MySQL / MariaDB run the text of /*! ... */ and /*M! ... */ as SQL and read /*+ ... */ as hints (SET_VAR),
# while sqlglot keeps all three as plain comments. Searched in the raw text, so no tokenizer subtlety can hide
# one; the price is refusing the same characters inside a string literal.
_EXECUTABLE_COMMENT = re.compile(r"/\*(?:M?!|\+)")
# Whether a comment or string ends at them differs between engines, or they are never legitimate in a query.
_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x85\u2028\u2029]")
# MySQL reads \' inside a string as an escaped quote, unless sql_mode has NO_BACKSLASH_ESCAPES: then the string
# ends there and `'a\'; DROP TABLE t; -- '` is two statements. The guard cannot know the mode, so it refuses both.
_MODE_DEPENDENT_ESCAPES = frozenset({"mysql"})
_BACKSLASH_QUOTE = re.compile(r"\\['\"]")


# ------------------------------------------------------------------------------------------------------------
# check_sql


class _Rejected(Exception):
    """Stops the check early with one problem; never leaves this module."""

    def __init__(self, problem: Problem, statement_type: str | None = None) -> None:
        super().__init__(problem.code)
        self.problem = problem
        self.statement_type = statement_type


def check_sql(
    sql: str, *, schema: str | None, dialect: str = "sqlite", policy: SqlPolicy = SqlPolicy.READ_ONLY
) -> SqlCheck:
    """Check one generated statement against the policy and the schema; never raises."""
    dialect_name = str(dialect).strip().lower()
    try:
        return _check(sql, schema, dialect_name, SqlPolicy(policy))
    except _Rejected as rejected:
        return _refused(dialect_name, rejected.problem, rejected.statement_type)
    except RecursionError:
        return _refused(dialect_name, _too_deep())
    except Exception:  # fail closed: whatever sqlglot or we trip over, the SQL is not passed
        return _refused(dialect_name, _UNANALYSABLE)


_UNANALYSABLE = Problem("parse_error", "The SQL could not be analysed, so it is refused.")


def _refused(dialect: str, problem: Problem, statement_type: str | None = None) -> SqlCheck:
    return SqlCheck(valid=False, statement_type=statement_type, read_only=False, tables=(), columns=(),
                    unknown_tables=(), unknown_columns=(), problems=(problem,), dialect=dialect)


def _too_deep() -> Problem:
    return Problem("too_deep", f"The SQL is nested too deeply (more than {MAX_PAREN_DEPTH} levels of "
                               "parentheses or a very long chain of operators).")


def _check(sql: str, schema: str | None, dialect_name: str, policy: SqlPolicy) -> SqlCheck:
    if not isinstance(sql, str):
        raise _Rejected(Problem("parse_error", "The SQL is not text."))
    if len(sql) > MAX_SQL_CHARS:
        raise _Rejected(Problem("too_long", f"The SQL is {len(sql):,} characters long; the limit is "
                                            f"{MAX_SQL_CHARS:,}."))
    if not sql.strip():
        raise _Rejected(Problem("empty", "There is no SQL statement."))
    if _CONTROL_CHARACTERS.search(sql):
        raise _Rejected(Problem("parse_error", "The SQL contains control characters (NUL, vertical tab, "
                                               "Unicode line separators...), which no query needs."))
    if dialect_name not in SUPPORTED_DIALECTS:
        raise _Rejected(Problem("parse_error", f"The SQL dialect '{dialect_name[:40]}' is not supported."))

    if _EXECUTABLE_COMMENT.search(sql):
        raise _Rejected(Problem("forbidden_expression",
                                "The SQL contains an executable comment (/*! ... */ or /*+ ... */); "
                                "MySQL-family servers act on its contents."))
    if dialect_name in _MODE_DEPENDENT_ESCAPES and _BACKSLASH_QUOTE.search(sql):
        raise _Rejected(Problem("forbidden_expression",
                                "A backslash before a quote ends the string or not depending on the server's "
                                "sql_mode (NO_BACKSLASH_ESCAPES); write a quote inside a string as ''."))
    tokenizer, parser = _PER_THREAD.for_dialect(dialect_name)
    tokens = _tokenize(tokenizer, sql)
    _check_tokens(tokens)
    statements = _parse(parser, tokens, sql)
    if not statements:
        raise _Rejected(Problem("empty", "There is no SQL statement, only comments or semicolons."))
    if len(statements) > 1:
        kinds = ", ".join(statement.key.upper() for statement in statements[:5])
        raise _Rejected(Problem("multiple_statements",
                                f"Only one statement is allowed; found {len(statements)} ({kinds})."))
    root = statements[0]
    walk = _walk(root, policy)
    if walk.blocking:
        return SqlCheck(valid=False, statement_type=root.key, read_only=False, tables=walk.table_names(),
                        columns=(), unknown_tables=(), unknown_columns=(), problems=tuple(walk.blocking),
                        dialect=dialect_name)

    grounding = _ground(walk, schema, dialect_name)
    problems = [*grounding.problems, *walk.warnings]
    return SqlCheck(
        valid=True,
        statement_type=root.key,
        read_only=isinstance(root, exp.Query),
        tables=walk.table_names(),
        columns=grounding.columns,
        unknown_tables=grounding.unknown_tables,
        unknown_columns=grounding.unknown_columns,
        problems=tuple(problems),
        dialect=dialect_name,
    )


@functools.lru_cache(maxsize=32)
def _dialect(name: str) -> Dialect:
    return Dialect.get_or_raise(name)


class _PerThread(threading.local):
    """One sqlglot tokenizer and parser per dialect and thread. Both reset themselves at the start of every call,
    and building them afresh cost ~40 us of the check's ~250 us; they hold state while working, hence per thread."""

    def __init__(self) -> None:
        self.by_dialect: dict[str, tuple[Tokenizer, Parser]] = {}

    def for_dialect(self, name: str) -> tuple[Tokenizer, Parser]:
        pair = self.by_dialect.get(name)
        if pair is None:
            dialect = _dialect(name)
            pair = self.by_dialect[name] = (dialect.tokenizer(), dialect.parser())
        return pair


_PER_THREAD = _PerThread()


def _tokenize(tokenizer: Tokenizer, sql: str) -> list[Token]:
    try:
        return tokenizer.tokenize(sql)
    except TokenError:
        raise _Rejected(Problem("parse_error", "The SQL has an unterminated string, quoted name or comment, "
                                               "or a character that is not SQL.")) from None


def _check_tokens(tokens: list[Token]) -> None:
    """Reject nesting deeper than the parser can take before it recurses into it."""
    depth = 0
    for token in tokens:
        if token.token_type in _OPENERS:
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                raise _Rejected(_too_deep())
        elif token.token_type in _CLOSERS:
            depth -= 1


_OPENERS = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE})
_CLOSERS = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE})


def _parse(parser: Parser, tokens: list[Token], sql: str) -> list[exp.Expr]:
    try:
        parsed = parser.parse(tokens, sql)
    except ParseError as error:
        raise _Rejected(Problem("parse_error", _parse_error_message(error))) from None
    # `;;` yields None and a trailing comment after `;` yields a bare Semicolon: neither is a statement.
    return [statement for statement in parsed
            if statement is not None and not isinstance(statement, exp.Semicolon)]


def _parse_error_message(error: ParseError) -> str:
    # sqlglot's own description can carry token reprs; the position and the offending text are what help.
    details = error.errors[0] if error.errors else {}
    near = " ".join(str(details.get("highlight") or "").split())[:40]
    line, column = details.get("line"), details.get("col")
    where = f" (line {line}, column {column})" if line and column else ""
    return f"The SQL could not be parsed near '{near}'{where}." if near else f"The SQL could not be parsed{where}."


# ------------------------------------------------------------------------------------------------------------
# the walk: allow-list, plus the tables and columns that grounding needs


@dataclass
class _Walk:
    root: exp.Expr
    blocking: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    tables: list[exp.Table] = field(default_factory=list)
    columns: list[exp.Column] = field(default_factory=list)
    insert_columns: list[exp.Identifier] = field(default_factory=list)
    ctes: dict[str, exp.CTE] = field(default_factory=dict)

    def table_names(self) -> tuple[str, ...]:
        return _unique(table.name for table in self.tables if table.name.lower() not in self.ctes)


def _walk(root: exp.Expr, policy: SqlPolicy) -> _Walk:
    walk = _Walk(root)
    allow_writes = policy is SqlPolicy.ALLOW_WRITES and isinstance(root, _WRITE_ROOTS)
    if not isinstance(root, exp.Query) and not allow_writes:
        walk.blocking.append(_root_problem(root, policy))
        return walk
    if isinstance(root, (exp.Update, exp.Delete)) and root.args.get("where") is None:
        verb = root.key.upper()
        walk.warnings.append(Problem("no_where_clause",
                                     f"{verb} has no WHERE clause, so it changes every row of the table."))

    stack: list[tuple[exp.Expr, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TREE_DEPTH:
            raise _Rejected(_too_deep(), root.key)
        problem = _node_problem(node, root, allow_writes)
        if problem is not None:
            if problem not in walk.blocking:
                walk.blocking.append(problem)
            continue
        if isinstance(node, exp.Table):
            walk.tables.append(node)
            system = _system_table(node)
            if system:
                walk.blocking.append(Problem("forbidden_expression",
                                             f"The SQL reads the system catalog '{system}'."))
        elif isinstance(node, exp.Column):
            walk.columns.append(node)
        elif isinstance(node, exp.CTE):
            walk.ctes[node.alias_or_name.lower()] = node
        elif isinstance(node, exp.Schema) and isinstance(node.parent, exp.Insert):
            walk.insert_columns.extend(e for e in node.expressions if isinstance(e, exp.Identifier))
        stack.extend((child, depth + 1) for child in node.iter_expressions(reverse=True))
    return walk


def _root_problem(root: exp.Expr, policy: SqlPolicy) -> Problem:
    verb = root.key.upper()
    if isinstance(root, _WRITE_ROOTS):
        return Problem("not_read_only", f"{verb} statements are not allowed: the policy is read-only.")
    if isinstance(root, _WRITE_OR_DDL):
        allowed = "SELECT" if policy is SqlPolicy.READ_ONLY else "SELECT, INSERT, UPDATE and DELETE"
        return Problem("not_read_only", f"{verb} statements are not allowed; only {allowed} can be run.")
    return Problem("forbidden_expression", f"A {verb} statement is not a query; only SELECT can be run.")


def _node_problem(node: exp.Expr, root: exp.Expr, allow_writes: bool) -> Problem | None:
    node_type = type(node)
    if node_type in _READ_NODES or node_type in _READ_FUNCTIONS:
        return None
    if allow_writes and (node is root or node_type in _WRITE_NODES):
        return None
    if isinstance(node, exp.Anonymous):
        name = node.name
        if name.lower() in _READ_ANONYMOUS_FUNCTIONS and isinstance(node.this, str):
            return None
        return Problem("forbidden_function", f"The function {name[:60]}() is not an allowed read function.")
    if isinstance(node, exp.Into):
        return Problem("select_into", "SELECT ... INTO writes a table or file; only plain SELECT is allowed.")
    if isinstance(node, exp.Lock):
        return Problem("locking_clause", "FOR UPDATE / FOR SHARE take row locks; plain SELECT only.")
    if isinstance(node, _WRITE_OR_DDL):
        where = "inside a query (for example a data-modifying CTE)" if node is not root else ""
        return Problem("not_read_only", f"{node.key.upper()} is not allowed {where}".rstrip() + ".")
    if isinstance(node, exp.Func):
        return Problem("forbidden_function",
                       f"The function {node.sql_name()[:60]}() is not an allowed read function.")
    if isinstance(node, exp.Dot):
        return Problem("forbidden_expression", "Schema-qualified calls and dotted paths are refused.")
    if isinstance(node, (exp.Parameter, exp.SessionParameter, exp.PropertyEQ)):
        return Problem("forbidden_expression", "Session variables and parameters are not allowed.")
    if isinstance(node, exp.Hint):
        return Problem("forbidden_expression", "Optimizer hints are not allowed.")
    return Problem("forbidden_expression", f"The SQL uses '{node.key}', which is not on the list of "
                                           "constructs allowed in a read query.")


def _system_table(table: exp.Table) -> str | None:
    name = table.name.lower()
    qualifiers = {part.lower() for part in (table.db, table.catalog) if part}
    if name in _SYSTEM_TABLES:
        return name
    if qualifiers & _SYSTEM_SCHEMAS:
        return f"{table.db or table.catalog}.{table.name}"
    return None


# ------------------------------------------------------------------------------------------------------------
# grounding: which tables and columns does the SQL use that the schema lacks?

_Columns = frozenset[str] | None  # None: the source's columns are not known, so anything resolves against it
_SCOPES = (exp.Select, exp.SetOperation, exp.Update, exp.Delete, exp.Insert)


@dataclass(frozen=True)
class _Grounding:
    columns: tuple[str, ...] = ()
    unknown_tables: tuple[str, ...] = ()
    unknown_columns: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()


def _ground(walk: _Walk, schema: str | None, dialect: str) -> _Grounding:
    known = _parse_schema_cached(schema, dialect) if schema and schema.strip() else {}
    resolver = _Resolver(walk, known, dialect)
    columns: list[str] = []
    unknown_columns: list[str] = []
    problems: list[Problem] = []
    for column in walk.columns:
        outcome = resolver.resolve(column)
        if outcome is None:
            continue
        if outcome.known and not isinstance(column.this, exp.Star):
            columns.append(column.name)
        if outcome.problem and known:
            unknown_columns.append(column.name)
            problems.append(outcome.problem)
    for identifier in walk.insert_columns:
        columns.append(identifier.name)
        target = walk.root.find(exp.Table)
        table_columns = known.get(target.name.lower()) if target is not None else None
        if table_columns is not None and identifier.name.lower() not in table_columns:
            unknown_columns.append(identifier.name)
            problems.append(Problem("unknown_column", f"Column '{identifier.name}' is not in table "
                                                      f"'{target.name if target else ''}'."))
    unknown_tables: tuple[str, ...] = ()
    if known:
        unknown_tables = tuple(name for name in walk.table_names() if name.lower() not in known)
        problems[:0] = [Problem("unknown_table", f"Table '{name}' is not in the schema.")
                        for name in unknown_tables]
    return _Grounding(columns=_unique(columns), unknown_tables=unknown_tables,
                      unknown_columns=_unique(unknown_columns), problems=tuple(_unique_problems(problems)))


@dataclass(frozen=True)
class _Resolution:
    known: bool  # a real column (not an output alias or a string in disguise)
    problem: Problem | None = None


class _Resolver:
    """Resolve column references through aliases, derived tables, CTEs and enclosing queries."""

    def __init__(self, walk: _Walk, known: Mapping[str, frozenset[str]], dialect: str) -> None:
        self._walk = walk
        self._known = known
        self._dialect = dialect
        self._sources: dict[int, dict[str, tuple[_Columns, str]]] = {}

    def resolve(self, column: exp.Column) -> _Resolution | None:
        name = column.name.lower()
        qualifier = column.table.lower()
        scope = _enclosing_scope(column)
        while scope is not None:
            if isinstance(scope, exp.SetOperation):
                if not qualifier and name in _lower_set(scope.named_selects):
                    return _Resolution(known=False)
            else:
                sources = self._sources_of(scope)
                if qualifier:
                    if qualifier in sources:
                        return self._in_source(column, *sources[qualifier])
                else:
                    if any(cols is None or name in cols for cols, _ in sources.values()):
                        return _Resolution(known=True)
                    if name in _output_aliases(scope):
                        return _Resolution(known=False)
            scope = _enclosing_scope(scope)
        if qualifier:
            return _Resolution(known=False, problem=Problem(
                "unknown_column",
                f"'{column.table}.{column.name}': '{column.table}' is no table or alias in the query."))
        if column.this.args.get("quoted") and self._dialect == "sqlite":
            return None  # SQLite reads an unresolvable "double-quoted" name as a string literal
        if isinstance(column.this, exp.Star):
            return None
        return _Resolution(known=False, problem=Problem(
            "unknown_column", f"Column '{column.name}' is not in any table the query reads."))

    def _in_source(self, column: exp.Column, columns: _Columns, label: str) -> _Resolution:
        if columns is None or isinstance(column.this, exp.Star) or column.name.lower() in columns:
            return _Resolution(known=True)
        return _Resolution(known=False, problem=Problem(
            "unknown_column", f"Column '{column.name}' is not in {label}."))

    def _sources_of(self, scope: exp.Expr) -> dict[str, tuple[_Columns, str]]:
        """Alias -> (columns, how to name it to a person) for the FROM / JOIN items of one query."""
        cached = self._sources.get(id(scope))
        if cached is not None:
            return cached
        sources: dict[str, tuple[_Columns, str]] = {}
        for source in _source_expressions(scope):
            alias, columns, label = self._source(source)
            if alias:
                sources[alias.lower()] = (columns, label)
        self._sources[id(scope)] = sources
        return sources

    def _source(self, source: exp.Expr) -> tuple[str, _Columns, str]:
        if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
            name = source.name.lower()
            alias_columns = _alias_columns(source)
            cte = self._walk.ctes.get(name) if not source.db else None
            if alias_columns is not None:
                columns: _Columns = alias_columns
            elif cte is not None:
                columns = _alias_columns(cte)
                if columns is None:
                    columns = _query_columns(cte.this)
            elif self._known:
                columns = self._known.get(name)
            else:
                columns = None
            kind = "the result of WITH" if cte is not None else "table"
            alias = f" (alias {source.alias})" if source.alias else ""
            return source.alias_or_name, columns, f"{kind} '{source.name}'{alias}"
        if isinstance(source, exp.Subquery):
            columns = _alias_columns(source)
            columns = columns if columns is not None else _query_columns(source.this)
            return source.alias, columns, f"the subquery '{source.alias}'"
        return source.alias_or_name, None, f"'{source.alias_or_name}'"


def _enclosing_scope(node: exp.Expr) -> exp.Expr | None:
    parent = node.parent
    while parent is not None and not isinstance(parent, _SCOPES):
        parent = parent.parent
    return parent


def _source_expressions(scope: exp.Expr) -> Iterator[exp.Expr]:
    if isinstance(scope, (exp.Update, exp.Delete, exp.Insert)):
        target = scope.this
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(target, exp.Expr):
            yield target
    from_ = scope.args.get("from_")
    if isinstance(from_, exp.From):
        yield from_.this
        yield from from_.expressions
    for key in ("joins", "laterals", "using"):
        for item in scope.args.get(key) or ():
            yield item.this if isinstance(item, (exp.Join, exp.Lateral)) else item


def _alias_columns(node: exp.Expr) -> frozenset[str] | None:
    alias = node.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.columns:
        return frozenset(column.name.lower() for column in alias.columns)
    return None


def _query_columns(query: exp.Expr) -> _Columns:
    if not isinstance(query, exp.Query):
        return None
    select = query
    while isinstance(select, exp.SetOperation):
        select = select.left
    if not isinstance(select, exp.Select):
        return None
    if any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
           for e in select.expressions):
        return None
    return _lower_set(select.named_selects)


def _output_aliases(scope: exp.Expr) -> frozenset[str]:
    if not isinstance(scope, exp.Select):
        return frozenset()
    return frozenset(e.alias.lower() for e in scope.expressions if isinstance(e, exp.Alias) and e.alias)


def _lower_set(names: Iterable[str]) -> frozenset[str]:
    return frozenset(name.lower() for name in names if name)


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    unique = []
    for name in names:
        if name and name.lower() not in seen:
            seen.add(name.lower())
            unique.append(name)
    return tuple(unique)


def _unique_problems(problems: Iterable[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


# ------------------------------------------------------------------------------------------------------------
# schemas: the CREATE TABLE text that comes with each request

_CREATE_TABLE = re.compile(
    r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:GLOBAL|LOCAL)\s+)?(?:TEMP(?:ORARY)?\s+)?TABLE\b", re.IGNORECASE
)
_NAME = r"""(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[\w$]+)"""
_CREATE_TABLE_HEAD = re.compile(
    rf"{_CREATE_TABLE.pattern}\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>{_NAME}(?:\s*\.\s*{_NAME}){{0,2}})\s*(?=\()",
    re.IGNORECASE,
)
_CONSTRAINT_WORDS = frozenset({"primary", "foreign", "unique", "check", "constraint", "key", "index",
                               "fulltext", "spatial", "exclude", "period"})


def parse_schema(schema: str, dialect: str = "sqlite") -> dict[str, frozenset[str]]:
    """Table name -> column names (lower-cased) from lenient CREATE TABLE text; never raises."""
    return dict(_parse_schema_cached(schema, dialect))


@functools.lru_cache(maxsize=256)
def _parse_schema_cached(schema: str, dialect: str) -> Mapping[str, frozenset[str]]:
    tables: dict[str, set[str]] = {}
    if len(schema) > MAX_SCHEMA_CHARS:
        return {}
    try:
        for statement in _create_table_statements(schema):
            parsed = _parse_create_table(statement, dialect)
            if parsed is not None:
                name, columns = parsed
                tables.setdefault(name, set()).update(columns)
    except (Exception, RecursionError):
        pass  # a schema we cannot read only means less grounding, never a failed request
    return {name: frozenset(columns) for name, columns in tables.items()}


def _create_table_statements(text: str) -> list[str]:
    """Split at each CREATE TABLE, so `CREATE TABLE a (...) CREATE TABLE b (...)` without `;` works too."""
    starts = [match.start() for match in _CREATE_TABLE.finditer(text)]
    chunks = [text[start:end] for start, end in zip(starts, [*starts[1:], len(text)], strict=True)]
    return [chunk.strip().rstrip(";, \t\r\n") for chunk in chunks]


def _parse_create_table(statement: str, dialect: str) -> tuple[str, set[str]] | None:
    for read in dict.fromkeys((dialect if dialect in SUPPORTED_DIALECTS else "sqlite", "sqlite")):
        try:
            parsed = _dialect(read).parse(statement)
        except (ParseError, TokenError, RecursionError):
            continue
        create = parsed[0] if len(parsed) == 1 else None
        if isinstance(create, exp.Create) and isinstance(create.this, exp.Schema | exp.Table):
            table = create.this.this if isinstance(create.this, exp.Schema) else create.this
            if not isinstance(table, exp.Table) or not table.name:
                continue
            if isinstance(create.this, exp.Schema):
                columns = {d.name.lower() for d in create.this.expressions if isinstance(d, exp.ColumnDef)}
            else:
                query_columns = _query_columns(create.expression) if create.expression else None
                columns = set(query_columns or ())
            return table.name.lower(), columns
    return _parse_create_table_by_hand(statement)


def _parse_create_table_by_hand(statement: str) -> tuple[str, set[str]] | None:
    """Fallback for text sqlglot refuses: the name, then the first word of each top-level item."""
    head = _CREATE_TABLE_HEAD.match(statement)
    if head is None:
        return None
    body = _balanced_parens(statement, head.end())
    if body is None:
        body = statement[head.end() + 1:]
    name = _unquote(re.split(r"\s*\.\s*", head.group("name"))[-1]).lower()
    columns = set()
    for item in _split_top_level(body):
        words = item.split()
        if words and words[0].lower() not in _CONSTRAINT_WORDS:
            columns.add(_unquote(words[0]).lower())
    return name, columns


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] + name[-1] in ('""', "``", "[]"):
        return name[1:-1]
    return name


def _balanced_parens(text: str, open_at: int) -> str | None:
    """The text inside the parenthesis opening at `open_at`, skipping quoted parts; None if never closed."""
    end = _closing_paren(text, open_at)
    return None if end is None else text[open_at + 1:end]


def _closing_paren(text: str, open_at: int) -> int | None:
    depth = 0
    quote: str | None = None
    closers = {"'": "'", '"': '"', "`": "`", "[": "]"}
    for index in range(open_at, len(text)):
        char = text[index]
        if quote is not None:
            if char == quote:
                quote = None
        elif char in closers:
            quote = closers[char]
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
    return None


def _split_top_level(body: str) -> list[str]:
    items: list[str] = []
    current: list[str] = []
    depth = 0
    for char in body:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def find_create_tables(text: str) -> str:
    """The CREATE TABLE statements in free text, each on one line, joined by "; " like the training data."""
    one_line = (" ".join(statement.split()) for statement in create_table_statements(text))
    return "; ".join(dict.fromkeys(one_line))


def create_table_statements(text: str) -> tuple[str, ...]:
    """Each `CREATE TABLE name ( ... )` in free text, exactly as written (so a caller can cut it out)."""
    found: list[str] = []
    resume_at = 0
    try:
        for head in _CREATE_TABLE_HEAD.finditer(text):
            if head.start() < resume_at:
                continue  # a CREATE TABLE inside one already taken (a quoted default, say)
            end = _closing_paren(text, head.end())
            if end is None:
                break  # never closed: every later head would scan the same unclosed tail
            found.append(text[head.start():end + 1])
            resume_at = end + 1
    except Exception:  # free text from a chat; a regex surprise must not fail the request
        return ()
    return tuple(found)


@functools.lru_cache(maxsize=256)
def canonical_schema(schema: str) -> str:
    """Cache-key form: the same for changes of whitespace, keyword case and table order; never raises.

    Memoised: a team sends a handful of schemas over and over, and tokenising one costs milliseconds."""
    try:
        tokens = _dialect("sqlite").tokenize(schema)
    except Exception:
        return " ".join(schema.split())
    statements: list[list[str]] = [[]]
    for index, token in enumerate(tokens):
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
            continue
        if token.token_type == TokenType.CREATE and statements[-1] and _starts_table(tokens, index):
            statements.append([])
        statements[-1].append(_canonical_token(token))
    for words in statements:
        while words and words[-1] == ",":
            words.pop()
    return "; ".join(sorted(" ".join(words) for words in statements if words))


def _starts_table(tokens: list[Token], index: int) -> bool:
    following = {token.token_type for token in tokens[index + 1:index + 4]}
    return TokenType.TABLE in following


def _canonical_token(token: Token) -> str:
    text = token.text
    if token.token_type == TokenType.STRING:
        return "'" + text.replace("'", "''") + "'"
    if token.token_type == TokenType.IDENTIFIER:
        return '"' + text.replace('"', '""') + '"'
    if token.token_type in (TokenType.VAR, TokenType.NUMBER):
        return text
    return text.upper()  # keywords and type names: their case carries no meaning


# ------------------------------------------------------------------------------------------------------------
# extract_sql: model output -> bare SQL

_FENCE = re.compile(
    r"```[ \t]*(?:(?!(?:SELECT|WITH)\b)[A-Za-z0-9_+-]*[ \t]*\n)?(?P<body>.*?)(?:```|\Z)",
    re.DOTALL | re.IGNORECASE,
)
_LABEL = re.compile(r"^\s*(?:sql(?:\s+query)?|answer|query|output|response)\s*:\s*", re.IGNORECASE)
_SQL_START = re.compile(
    r"^\s*(?:\(|(?:SELECT|WITH|INSERT|UPDATE|DELETE|REPLACE|MERGE|CREATE|DROP|ALTER|TRUNCATE|PRAGMA|ATTACH|"
    r"DETACH|COPY|GRANT|REVOKE|SET|EXPLAIN|VALUES|CALL|EXEC|EXECUTE|BEGIN|COMMIT|ROLLBACK|USE|SHOW|DESCRIBE|"
    r"LOAD|VACUUM|ANALYZE|REINDEX|TABLE)\b)",
    re.IGNORECASE,
)
_SQL_CONTINUATION = re.compile(
    r"^\s*(?:FROM|WHERE|GROUP|ORDER|HAVING|LIMIT|OFFSET|JOIN|INNER|LEFT|RIGHT|FULL|CROSS|NATURAL|ON|USING|AND|"
    r"OR|NOT|UNION|INTERSECT|EXCEPT|AS|WHEN|THEN|ELSE|END|CASE|INTO|RETURNING|WINDOW|QUALIFY|FETCH|FOR)\b",
    re.IGNORECASE,
)
_PROSE_START = re.compile(
    r"^\s*(?:this|these|the|here|here's|note|explanation|it|i|we|you|assuming|please|that)\b[\s:,]+[A-Za-z]",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"^\s*[A-Z][a-z']+[,:]?\s+[a-z]")
_INLINE_QUERY = re.compile(r":\s*(?=(?:SELECT|WITH)\b)", re.IGNORECASE)


def extract_sql(text: str) -> str:
    """Model output -> bare SQL: drop ``` fences, a leading `SQL:`/`Answer:` label, trailing prose and `;`."""
    fenced = _FENCE.search(text)
    if fenced is not None:
        text = fenced.group("body")
    text = _LABEL.sub("", text, count=1).strip()
    if len(text) >= 2 and text[0] == text[-1] == "`" and _SQL_START.match(text[1:-1]):
        text = text[1:-1]
    lines = text.splitlines()
    start = next((index for index, line in enumerate(lines) if _SQL_START.match(line)), None)
    if start is None:
        inline = _INLINE_QUERY.search(text)  # "Here is the query: SELECT ..."
        return _strip_trailing(text[inline.end():] if inline else text)
    end = len(lines)
    following: str | None = None  # the next non-blank line after the one being looked at
    for index in range(len(lines) - 1, start - 1, -1):
        line = lines[index]
        if _PROSE_START.match(line) or (not line.strip() and (following is None or _is_prose(following))):
            end = index  # cut at the first such line: the scan runs backwards, so keep overwriting
        if line.strip():
            following = line
    return _strip_trailing("\n".join(lines[start:end]))


def _is_prose(line: str) -> bool:
    """After a blank line, a sentence ("This query ...", "Explanation: ...") ends the statement."""
    return bool(_SENTENCE.match(line)) and not _SQL_START.match(line) and not _SQL_CONTINUATION.match(line)


def _strip_trailing(text: str) -> str:
    text = text.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text
