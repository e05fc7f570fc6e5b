"""What only asks for huge output or unbounded work (`expensive_sql`), found in the tree before any engine sees it:

- a string or list built at a size the SQL picks: `lpad('x', 2000000000)`, `repeat(repeat('x', 30000), 30000)`,
  `space(n)`, `replicate`, `printf('%*d', n, 1)`, `format('{:>1000000}', ...)`, a scalar `generate_series`
  joined into a string. The size of every constant expression is estimated (lengths multiply through nesting);
  over MAX_BUILT characters is refused. A length the check can't evaluate that is still constant (no column in
  it) is refused too: DuckDB folds constants while preparing, so the check itself would pay for it;
- a recursive CTE whose recursive part has no WHERE (nor a LIMIT inside the CTE): it never ends;
- four or more tables joined with no condition relating them: a cross product of the whole tables.

A length that comes from a column is left alone: nothing is folded against empty tables, and the data bounds it.
Imports only sqlglot and the check's vocabulary."""

from __future__ import annotations

import re
from collections.abc import Iterator

import sqlglot.expressions as exp

from gateway.schema_model.views import from_items
from gateway.sql_check.result import Problem

MAX_BUILT = 100_000  # characters (or list elements) a constant expression may build
MAX_CROSS_JOINED = 3  # independent tables a query may multiply together
_UNKNOWN = -1  # a constant size the estimate can't tell
_BUILDERS_BY_NAME = frozenset({"replicate", "printf", "format", "zeroblob", "randomblob", "space", "repeat", "lpad",
                               "rpad", "string_agg"})
_FORMAT_WIDTH = re.compile(r"%[-+ 0#]*(\*|\d+)?(?:\.(\*|\d+))?|\{[^{}]*?(\d+)[^{}]*\}")


def cost_problems(root: exp.Expr) -> list[Problem]:
    """Every reason this statement is expensive whatever the data (empty when it is not)."""
    problems: list[Problem] = []
    for node in root.walk():
        if _is_builder(node) or (isinstance(node, _JOINERS) and node.find(*_BUILDER_TYPES, exp.Anonymous)):
            size = _size(node)
            if size == _UNKNOWN or size > MAX_BUILT:
                shown = node.sql()[:80]
                amount = "a size the check can't bound" if size == _UNKNOWN else f"about {size:,} characters"
                problems.append(Problem("expensive", f"{shown} builds {amount} (the limit is {MAX_BUILT:,}): it "
                                                     "only asks for huge output."))
                break
    problems.extend(_unbounded_recursion(root))
    problems.extend(_cross_products(root))
    return problems


# --- sizes of constant expressions ------------------------------------------------------------------------------


_BUILDER_TYPES: tuple[type[exp.Expr], ...] = (exp.Pad, exp.Repeat, exp.Space, exp.Format, exp.ArrayToString,
                                             exp.Replace, exp.NumberToStr, exp.ToChar)
_JOINERS: tuple[type[exp.Expr], ...] = (exp.DPipe, exp.Concat, exp.ConcatWs)  # their parts' sizes add up


def _is_builder(node: exp.Expr) -> bool:
    if isinstance(node, _BUILDER_TYPES):
        return True
    return isinstance(node, exp.Anonymous) and node.name.lower() in _BUILDERS_BY_NAME


def _size(node: exp.Expr | None) -> int:
    """Characters (or elements) `node` builds when every input is constant; 0 when a column decides it (data-
    bounded), _UNKNOWN when constant but not computable here."""
    if node is None:
        return 0
    if isinstance(node, exp.Pad):  # the length decides, whatever is padded (a column's value too)
        return _combine(_count(node.expression), 1)
    if isinstance(node, exp.Repeat):
        return _combine(_count(node.args.get("times")), _size(node.this))
    if isinstance(node, exp.Space):
        return _combine(_count(node.this), 1)
    if isinstance(node, (exp.Format, exp.NumberToStr, exp.ToChar)):
        return _format_size(node.args.get("format") or node.this,
                            [arg for arg in node.iter_expressions() if arg is not node.args.get("format")])
    if isinstance(node, exp.Anonymous) and node.name.lower() in _BUILDERS_BY_NAME:
        return _anonymous_size(node)
    if _from_data(node):
        return 0
    if isinstance(node, exp.Literal):
        return len(node.this) if node.is_string else len(str(node.this))
    if isinstance(node, (exp.Null, exp.Boolean)):
        return 4
    if isinstance(node, exp.Paren):
        return _size(node.this)
    if isinstance(node, exp.Replace):
        return _combine(_size(node.this), max(1, _size(node.args.get("replacement"))))
    if isinstance(node, (exp.GenerateSeries, exp.ExplodingGenerateSeries)):
        low, high = _number(node.args.get("start")), _number(node.args.get("end"))
        return _UNKNOWN if low is None or high is None else int(abs(high - low)) + 1
    if isinstance(node, exp.ArrayToString):
        return _combine(_size(node.this), 8 + _size(node.expression))
    sizes = [_size(child) for child in node.iter_expressions()]
    return _UNKNOWN if _UNKNOWN in sizes else sum(sizes)


def _anonymous_size(node: exp.Anonymous) -> int:
    name = node.name.lower()
    args = list(node.expressions)
    if name in ("replicate", "repeat") and len(args) == 2:
        return _combine(_count(args[1]), _size(args[0]))
    if name in ("lpad", "rpad") and len(args) >= 2:
        return _combine(_count(args[1]), 1)
    if name in ("zeroblob", "randomblob", "space") and args:
        return _combine(_count(args[0]), 1)
    if name in ("printf", "format") and args:
        return _format_size(args[0], args[1:])
    sizes = [_size(arg) for arg in args]
    return _UNKNOWN if _UNKNOWN in sizes else sum(sizes)


def _format_size(template: exp.Expr | None, args: list[exp.Expr]) -> int:
    """printf's `%5d`, `%*d` (the width is an argument) and fmt's `{:>50}` widths, plus the arguments."""
    if not isinstance(template, exp.Literal) or not template.is_string:
        literals = [arg for arg in args if isinstance(arg, exp.Literal) and arg.is_string]
        if not literals:
            return 0 if template is None or _from_data(template) else _size(template)
        template, args = literals[0], [arg for arg in args if arg is not literals[0]]
    total = len(template.this)
    star_args = iter(args)
    for found in _FORMAT_WIDTH.finditer(template.this):
        for width in found.groups():
            if width == "*":
                total = _combine_add(total, _count(next(star_args, None)))
            elif width:
                total = _combine_add(total, int(width[:12]))
    sizes = [0 if _from_data(arg) else _size(arg) for arg in args]
    return _UNKNOWN if _UNKNOWN in sizes else _combine_add(total, sum(sizes))


def _from_data(node: exp.Expr) -> bool:
    """Whether a column or a table decides the value (nothing the check folds against empty tables)."""
    return node.find(exp.Column, exp.Table) is not None


def _count(node: exp.Expr | None) -> int:
    """A repetition count or length argument: its value when constant, 0 when a column decides it."""
    if node is None or _from_data(node):
        return 0
    value = _number(node)
    return _UNKNOWN if value is None else max(0, int(min(value, 10.0 ** 15)))


def _number(node: exp.Expr | None) -> float | None:
    """The value of a constant numeric expression made of literals and arithmetic, or None."""
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return float(node.this)
        except ValueError:
            return None
    if isinstance(node, exp.Literal):
        try:
            return float(node.this.strip())
        except ValueError:
            return None
    if isinstance(node, (exp.Paren, exp.Cast, exp.TryCast, exp.Abs, exp.Round, exp.Floor, exp.Ceil)):
        value = _number(node.this)
        return None if value is None else abs(value) if isinstance(node, exp.Abs) else value
    if isinstance(node, exp.Neg):
        value = _number(node.this)
        return None if value is None else -value
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Pow, exp.Mod)):
        left, right = _number(node.this), _number(node.expression)
        if left is None or right is None:
            return None
        try:
            return _arithmetic(node, left, right)
        except (OverflowError, ZeroDivisionError, ValueError):
            return None
    return None


def _arithmetic(node: exp.Expr, left: float, right: float) -> float:
    if isinstance(node, exp.Add):
        return left + right
    if isinstance(node, exp.Sub):
        return left - right
    if isinstance(node, exp.Mul):
        return left * right
    if isinstance(node, exp.Div):
        return left / right
    if isinstance(node, exp.Mod):
        return left % right
    return float(min(abs(left), 1e6) ** min(right, 64.0))


def _combine(count: int, size: int) -> int:
    if _UNKNOWN in (count, size):
        return _UNKNOWN
    return count * max(size, 1)


def _combine_add(total: int, more: int) -> int:
    return _UNKNOWN if _UNKNOWN in (total, more) else total + more


# --- recursion and cross products -------------------------------------------------------------------------------


def _unbounded_recursion(root: exp.Expr) -> Iterator[Problem]:
    for with_ in root.find_all(exp.With):
        if not with_.args.get("recursive"):
            continue
        for cte in with_.expressions:
            name = cte.alias_or_name.lower()
            query = cte.this
            if not isinstance(query, exp.SetOperation) or query.args.get("limit"):
                continue
            recursive = query.expression
            reads_itself = any(table.name.lower() == name for table in recursive.find_all(exp.Table))
            if reads_itself and not _bounded(recursive):
                yield Problem("expensive", f"The recursive part of WITH RECURSIVE {cte.alias_or_name} has no WHERE: "
                                           "it never stops.")


def _bounded(query: exp.Expr) -> bool:
    select = query.this if isinstance(query, exp.Subquery) else query
    if not isinstance(select, exp.Select):
        return True  # a nested set operation: not judged here
    return bool(select.args.get("where") or select.args.get("limit")
                or any(join.args.get("on") for join in select.args.get("joins") or ()))


def _cross_products(root: exp.Expr) -> Iterator[Problem]:
    for select in root.find_all(exp.Select):
        sources = _sources(select)
        if len(sources) <= MAX_CROSS_JOINED:
            continue
        groups = _connected(select, sources)
        if groups > MAX_CROSS_JOINED:
            yield Problem("expensive", f"{groups} tables are joined with no condition relating them: the result is "
                                       "the product of their sizes. Join them ON their keys.")
            return


def _sources(select: exp.Select) -> list[str]:
    return [node.alias_or_name.lower() for node in from_items(select)]


def _connected(select: exp.Select, sources: list[str]) -> int:
    """How many groups of FROM items no condition relates (union-find over ON, USING and WHERE)."""
    parent = {source: source for source in sources}

    def find(item: str) -> str:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    conditions: list[exp.Expr] = []
    for join in select.args.get("joins") or ():
        if join.args.get("using") or join.args.get("method"):  # USING, NATURAL: related by their own columns
            name = join.this.alias_or_name.lower()
            for other in sources:
                parent[find(other)] = find(name)
        if join.args.get("on") is not None:
            conditions.append(join.args["on"])
    where = select.args.get("where")
    if where is not None:
        conditions.append(where.this)
    for condition in conditions:
        referenced = {column.table.lower() for column in condition.find_all(exp.Column)}
        if "" in referenced or any(name not in parent for name in referenced):
            return 1  # an unqualified or outer column: can't tell what it relates, so don't judge
        members = [find(name) for name in referenced]
        for member in members[1:]:
            parent[member] = members[0]
    return len({find(source) for source in sources})
