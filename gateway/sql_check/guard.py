"""The allow-list walk: every node of the one statement must be a read construct (or, under `allow_writes`, a
plain INSERT/UPDATE/DELETE); it also collects the tables, columns and CTEs that grounding needs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot.expressions as exp

from gateway.sql_check.catalogs import alias_problem, table_problem
from gateway.sql_check.names import unique
from gateway.sql_check.result import MAX_TREE_DEPTH, Problem, Rejected, SqlPolicy, too_deep

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
    # LATERAL / CROSS APPLY / OUTER APPLY: what they join is walked like any other source
    exp.Lateral,
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
    # set-returning, reads nothing (the PostgreSQL / DuckDB date spine)
    exp.GenerateSeries, exp.ExplodingGenerateSeries,
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

# T-SQL table hints that only relax locking for a read (`FROM t WITH (NOLOCK)`); UPDLOCK, XLOCK, HOLDLOCK,
# TABLOCK... take locks and are refused.
_READ_TABLE_HINTS = frozenset({"NOLOCK", "READUNCOMMITTED", "READCOMMITTED", "NOWAIT"})

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

# MySQL / MariaDB run the text of /*! ... */ and /*M! ... */ as SQL and read /*+ ... */ as hints (SET_VAR),
# while sqlglot keeps all three as plain comments. Searched in the raw text, so no tokenizer subtlety can hide
# one; the price is refusing the same characters inside a string literal.
EXECUTABLE_COMMENT = re.compile(r"/\*(?:M?!|\+)")
# Whether a comment or string ends at them differs between engines, or they are never legitimate in a query.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x85\u2028\u2029]")
# MySQL reads \' inside a string as an escaped quote, unless sql_mode has NO_BACKSLASH_ESCAPES: then the string
# ends there and `'a\'; DROP TABLE t; -- '` is two statements. The guard cannot know the mode, so it refuses both.
# PostgreSQL does the same with standard_conforming_strings = off, and both it and DuckDB inside E'...'.
MODE_DEPENDENT_ESCAPES = frozenset({"mysql", "postgres", "duckdb"})
BACKSLASH_QUOTE = re.compile(r"\\['\"]")

# ------------------------------------------------------------------------------------------------------------
# the walk: allow-list, plus the tables and columns that grounding needs


@dataclass
class Walk:
    root: exp.Expr
    blocking: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    tables: list[exp.Table] = field(default_factory=list)
    columns: list[exp.Column] = field(default_factory=list)
    insert_columns: list[exp.Identifier] = field(default_factory=list)
    ctes: dict[str, exp.CTE] = field(default_factory=dict)

    def table_names(self) -> tuple[str, ...]:
        return unique(table.name for table in self.tables if table.name.lower() not in self.ctes)


def walk_tree(root: exp.Expr, policy: SqlPolicy, dialect: str,
              declared_qualifiers: frozenset[str] = frozenset()) -> Walk:
    walk = Walk(root)
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
            raise Rejected(too_deep(), root.key)
        problem = _node_problem(node, root, allow_writes)
        if problem is not None:
            if problem not in walk.blocking:
                walk.blocking.append(problem)
            continue
        problem = _reference_problem(node, dialect, declared_qualifiers)
        if problem is not None and problem not in walk.blocking:
            walk.blocking.append(problem)
        if isinstance(node, exp.Table):
            walk.tables.append(node)
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
    if isinstance(node, (exp.GenerateSeries, exp.ExplodingGenerateSeries)):
        return _series_problem(node)
    if node_type in _READ_NODES or node_type in _READ_FUNCTIONS:
        return None
    if allow_writes and (node is root or node_type in _WRITE_NODES):
        return None
    if isinstance(node, exp.Anonymous):
        name = node.name
        if name.lower() in _READ_ANONYMOUS_FUNCTIONS and isinstance(node.this, str):
            return None
        return Problem("forbidden_function", f"The function {name[:60]}() is not an allowed read function.")
    if isinstance(node, exp.WithTableHint):
        return _hint_problem(node)
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


def _reference_problem(node: exp.Expr, dialect: str, declared_qualifiers: frozenset[str]) -> Problem | None:
    """The per-dialect deny-lists: catalog and file-like table names, reserved words posing as aliases."""
    if isinstance(node, exp.Table):
        return table_problem(node, dialect, declared_qualifiers)
    if isinstance(node, (exp.Alias, exp.TableAlias)):
        alias = node.args.get("alias") if isinstance(node, exp.Alias) else node.this
        if isinstance(alias, exp.Identifier):
            return alias_problem(alias, dialect)
    return None


def _series_problem(series: exp.Expr) -> Problem | None:
    """generate_series is allowed for date spines and small ranges: numeric bounds must be literals at most
    _MAX_SERIES apart (generate_series(1, 1e10) is a denial of service); other bounds must be dates (strings,
    casts, date functions) or columns, which the data bounds."""
    start, end = series.args.get("start"), series.args.get("end")
    numbers = [_number(bound) for bound in (start, end)]
    if all(number is not None for number in numbers):
        low, high = numbers
        if low is not None and high is not None and abs(high - low) <= _MAX_SERIES:
            return None
    elif all(_date_like(bound) for bound in (start, end)):
        return None
    return Problem("forbidden_function", "generate_series() is allowed only over dates or columns, or between "
                                         f"number literals at most {_MAX_SERIES:,} apart.")


_MAX_SERIES = 1_000_000
_DATES = (exp.Column, exp.CurrentDate, exp.CurrentTimestamp, exp.DateAdd, exp.DateSub, exp.Date,
          exp.Timestamp, exp.DateTrunc, exp.TimestampTrunc)


def _date_like(bound: exp.Expr | None) -> bool:
    """A string, a cast, a column or a date function, optionally plus or minus something (`current_date - 6`)."""
    if isinstance(bound, exp.Paren):
        return _date_like(bound.this)
    if isinstance(bound, (exp.Add, exp.Sub)):
        return _date_like(bound.this)
    if isinstance(bound, (exp.Cast, exp.TryCast)):
        return bound.to.is_type(*exp.DataType.TEMPORAL_TYPES)
    return (isinstance(bound, exp.Literal) and bound.is_string) or isinstance(bound, _DATES)


def _number(bound: exp.Expr | None) -> float | None:
    if isinstance(bound, exp.Neg):
        inner = _number(bound.this)
        return None if inner is None else -inner
    if isinstance(bound, exp.Literal) and not bound.is_string:
        try:
            return float(bound.this)
        except ValueError:
            return None
    return None


def _hint_problem(hint: exp.WithTableHint) -> Problem | None:
    names = [e.name.upper() if isinstance(e, exp.Var) else "?" for e in hint.expressions]
    locking = [name for name in names if name not in _READ_TABLE_HINTS]
    if locking:
        return Problem("locking_clause", f"The table hint {locking[0][:30]} takes or changes locks; only "
                                         f"{', '.join(sorted(_READ_TABLE_HINTS))} are allowed.")
    return None
