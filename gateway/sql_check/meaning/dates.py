"""Dates: `date('now')`, `datetime('now')`, `date(x)`, and strftime() with only the format codes each target
writes the same way (sqlglot maps the rest to something else, or leaves them as text)."""

from __future__ import annotations

import re

import sqlglot.expressions as exp

from gateway.sql_check.dialect_names import dialect_label
from gateway.sql_check.meaning.scope import Scope
from gateway.sql_check.transpiled import TranspileRefused

# strftime codes sqlglot writes with the same meaning in each target (%w: 0 = Sunday, which PostgreSQL's D is not;
# %f, %s, %J have no equivalent worth trusting).
_SAME_CODES = {
    "postgres": frozenset("YmdHMSj%"),
    "duckdb": frozenset("YmdHMSjw%"),
    "mysql": frozenset("YmdHMSjw%"),
    "tsql": frozenset("YmdHMS%"),
}
_CODE = re.compile(r"%(.)")
_DATE_TEXT = "^[0-9]{4}-[0-9]{2}-[0-9]{2}"


def dates(tree: exp.Expr, target: str, scope: Scope) -> None:
    for node in list(tree.find_all(exp.Date, exp.Anonymous)):
        arguments = [node.this] if isinstance(node, exp.Date) else node.expressions
        if isinstance(node, exp.Anonymous) and node.name.lower() != "datetime":
            continue
        if len(arguments) != 1 or (isinstance(node, exp.Date) and (node.args.get("zone") or node.expressions)):
            continue
        argument = arguments[0]
        is_now = isinstance(argument, exp.Literal) and argument.is_string and argument.name.lower() == "now"
        if isinstance(node, exp.Date):
            # sqlglot writes CURRENT_DATE as GETDATE() for SQL Server, which carries the time of day too.
            today: exp.Expr = (exp.cast(exp.CurrentTimestamp(), exp.DataType.Type.DATE) if target == "tsql"
                               else exp.CurrentDate())
            if is_now and _compared_with_text(node, scope):
                today = exp.cast(today, exp.DataType.Type.TEXT)  # SQLite's date('now') is 'YYYY-MM-DD' text
            node.replace(today if is_now else exp.cast(argument, exp.DataType.Type.DATE))
        elif is_now:
            node.replace(exp.CurrentTimestamp())


def _compared_with_text(node: exp.Expr, scope: Scope) -> bool:
    parent = node.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    if isinstance(parent, exp.Binary | exp.Between | exp.In):
        return any(scope.kind(operand) == "text" for operand in parent.iter_expressions() if operand is not node)
    return False


def formats(tree: exp.Expr, target: str, scope: Scope) -> None:
    """strftime(format, x): refuse codes the target would write differently; text that is no date (SQLite: NULL)
    stays NULL in DuckDB (TRY_CAST) rather than raising."""
    allowed = _SAME_CODES.get(target)
    if allowed is None:
        return
    for node in list(tree.find_all(exp.TimeToStr)):
        form = node.args.get("format")
        if not (isinstance(form, exp.Literal) and form.is_string):
            raise TranspileRefused(f"strftime() with a computed format can't be written in {dialect_label(target)}.")
        unknown = sorted({code for code in _CODE.findall(form.this) if code not in allowed})
        if unknown:
            codes = ", ".join(f"%{code}" for code in unknown)
            raise TranspileRefused(f"strftime() format {codes} has no equivalent with the same meaning in "
                                   f"{dialect_label(target)}.")
        value = node.this.this if isinstance(node.this, exp.Cast | exp.TsOrDsToTimestamp) else node.this
        if scope.kind(value) not in ("text", None):
            continue
        if target == "duckdb":  # text that is no date: NULL in SQLite, NULL here
            node.set("this", exp.TryCast(this=value.copy(), to=exp.DataType.build("TIMESTAMP")))
        elif target == "postgres":  # ... where a cast would raise: only text that starts like a date is read
            looks_like_date = exp.RegexpLike(this=value.copy(), expression=exp.Literal.string(_DATE_TEXT))
            node.replace(exp.Case(ifs=[exp.If(this=looks_like_date, true=node.copy())]))
