"""Text as SQLite treats it:

- `substr(x, start, n)`: a negative start counts from the end, a start of 0 is the position before the first;
- `||` makes text of numbers too (PostgreSQL has no integer || integer; SQL Server's `+` would add them) and is
  NULL when either side is;
- LIKE ignores ASCII case, on any collation;
- `=`, `<`, ORDER BY, GROUP BY, DISTINCT, UNION/INTERSECT/EXCEPT, min() and max() compare text by its bytes
  (SQLite's BINARY collation): MySQL's and SQL Server's usual collations ignore case (and MySQL's trailing
  spaces), PostgreSQL's order by language; so those comparisons name a binary collation (MySQL: BINARY where the
  value is only compared).
"""

from __future__ import annotations

import sqlglot.expressions as exp

from gateway.sql_check.dialect_names import dialect_label
from gateway.sql_check.meaning.grouping import ANY_ROW
from gateway.sql_check.meaning.scope import Scope, own, query_selects
from gateway.sql_check.transpiled import TranspileRefused

_HAS_ILIKE = frozenset({"postgres", "duckdb"})
_ORDERING = (exp.GT, exp.GTE, exp.LT, exp.LTE)
_EQUALITY = (exp.EQ, exp.NEQ)
# Where every text comparison needs the binary collation, and where only ordering does.
_BINARY_EVERYWHERE = frozenset({"mysql", "tsql"})
_BINARY_ORDER = frozenset({"postgres"})
_MAX_LENGTH = 2_147_483_647


def substrings(tree: exp.Expr, target: str) -> None:
    if target == "duckdb":
        return  # DuckDB's substring counts like SQLite's (checked on the engine)
    for node in list(tree.find_all(exp.Substring)):
        _substring(node, target)


def _literal_int(node: exp.Expr | None) -> int | None:
    if isinstance(node, exp.Literal) and not node.is_string and node.this.lstrip("-").isdigit():
        return int(node.this)
    if isinstance(node, exp.Neg):
        inner = _literal_int(node.this)
        return -inner if inner is not None else None
    return None


def _at_least_one(node: exp.Expr) -> bool:
    """Provably >= 1 whatever the data: a positive literal, or a length or position plus a positive literal."""
    literal = _literal_int(node)
    if literal is not None:
        return literal >= 1
    if isinstance(node, exp.Paren):
        return _at_least_one(node.this)
    if isinstance(node, exp.Add):
        counts = (exp.Length, exp.StrPosition, exp.Count)
        for one, other in ((node.this, node.expression), (node.expression, node.this)):
            if isinstance(one, counts) and (_literal_int(other) or 0) >= 1:
                return True
    return False


def _substring(node: exp.Substring, target: str) -> None:
    value, start, length = node.this, node.args.get("start"), node.args.get("length")
    first = _literal_int(start)
    count = _literal_int(length) if length is not None else None
    if length is not None and count is None:
        if first == 1:
            node.set("length", exp.Greatest(this=length.copy(), expressions=[exp.Literal.number(0)]))
        else:
            _refuse(target, "substr() with a computed length (SQLite counts a negative length backwards)")
    elif count is not None and count < 0:
        _refuse(target, "substr() with a negative length")
    if first is None:
        if start is None or not _at_least_one(start):
            _refuse(target, "substr() with a computed start (SQLite counts a negative start from the end)")
    elif first == 0 and target == "mysql":
        node.set("start", exp.Literal.number(1))
        if count is not None:
            node.set("length", exp.Literal.number(max(count - 1, 0)))
    elif first < 0:
        _negative_start(node, target, value, -first, count)
        return
    if target == "tsql" and node.args.get("length") is None:
        node.set("length", exp.Literal.number(_MAX_LENGTH))  # SQL Server's SUBSTRING needs a length


def _negative_start(node: exp.Substring, target: str, value: exp.Expr, back: int, count: int | None) -> None:
    if target == "tsql":
        _refuse(target, "substr() with a negative start")
    length = exp.Length(this=value.copy())
    if target == "postgres":  # a start before the first character counts, as in SQLite
        node.set("start", exp.Add(this=exp.Sub(this=length, expression=exp.Literal.number(back)),
                                  expression=exp.Literal.number(1)))
        return
    # MySQL: a start further back than the text is long gives ''; SQLite keeps what reaches into the text.
    long_enough = exp.GTE(this=length.copy(), expression=exp.Literal.number(back))
    if count is None:
        short: exp.Expr = value.copy()
    else:
        reach = exp.Add(this=exp.Sub(this=exp.Literal.number(count), expression=exp.Literal.number(back)),
                        expression=length.copy())
        short = exp.Substring(this=value.copy(), start=exp.Literal.number(1), length=reach)
    node.replace(exp.Case(ifs=[exp.If(this=long_enough, true=node.copy())], default=short))


def concatenations(tree: exp.Expr, target: str, scope: Scope) -> None:
    if target not in ("postgres", "tsql"):
        return  # MySQL's CONCAT and DuckDB's || take numbers and are NULL with a NULL, like SQLite's ||
    for node in list(tree.find_all(exp.DPipe)):
        for key in ("this", "expression"):
            operand = node.args[key]
            if not isinstance(operand, exp.Null | exp.DPipe) and scope.kind(operand) != "text":
                node.set(key, exp.Cast(this=operand.copy(), to=exp.DataType.build("TEXT")))


def case_insensitive_like(tree: exp.Expr, target: str) -> None:
    for like in list(tree.find_all(exp.Like)):
        pattern = like.expression
        if isinstance(pattern, exp.Literal) and "\\" in pattern.this and target in ("postgres", "mysql"):
            _refuse(target, "a LIKE pattern with a backslash (an escape character there, a plain one in SQLite)")
        if target in _HAS_ILIKE:
            like.replace(exp.ILike(**like.args))
        else:  # any collation: a case-sensitive one included
            like.set("this", exp.Lower(this=like.this))
            like.set("expression", exp.Lower(this=like.expression))


def binary_text(tree: exp.Expr, target: str, scope: Scope) -> None:
    if target not in _BINARY_EVERYWHERE | _BINARY_ORDER:
        return
    everywhere = target in _BINARY_EVERYWHERE
    comparisons = (*_ORDERING, exp.Between, *((*_EQUALITY, exp.In) if everywhere else ()))
    for node in list(tree.find_all(*comparisons)):
        _collate_operand(node, target, scope)
    for extreme in list(tree.find_all(exp.Max, exp.Min)):
        if scope.kind(extreme.this) == "text" and not extreme.meta.get(ANY_ROW):
            extreme.set("this", _binary(extreme.this, target, output=True))
    if everywhere:
        for count in list(tree.find_all(exp.Count)):
            if isinstance(count.this, exp.Distinct) and len(count.this.expressions) == 1:
                item = count.this.expressions[0]
                if scope.kind(item) == "text":
                    item.replace(_binary(item, target))
        for select in list(tree.find_all(exp.Select)):
            _binary_groups(select, target, scope)
    for ordered in list(tree.find_all(exp.Ordered)):
        holder = ordered.parent.parent if isinstance(ordered.parent, exp.Order) else None
        if isinstance(holder, exp.SetOperation) or (
                isinstance(holder, exp.Select) and isinstance(holder.args.get("distinct"), exp.Distinct)):
            # The keys name output columns there (PostgreSQL and MySQL refuse any other expression): the
            # columns themselves carry the collation.
            for select in query_selects(holder):
                _binary_items(select, target, scope)
        elif scope.kind(ordered.this) == "text":
            ordered.set("this", _binary(ordered.this, target))


def _case_free(node: exp.Expr) -> bool:
    """A string literal no collation can read differently: no letters, no trailing space ('2020', '12:30')."""
    return (isinstance(node, exp.Literal) and node.is_string and not any(ch.isalpha() for ch in node.this)
            and not node.this.endswith(" "))


def _collate_operand(node: exp.Expr, target: str, scope: Scope) -> None:
    left = node.this
    right = node.args.get("expression") or node.args.get("low")
    others = list(node.expressions) if isinstance(node, exp.In) else [right]
    if isinstance(node, (*_EQUALITY, exp.In)) and others and all(
            other is not None and _case_free(other) for other in others):
        return
    text = scope.kind(left) == "text" or (right is not None and scope.kind(right) == "text"
                                          and scope.kind(left) is None)
    if text and not isinstance(left, exp.Collate):
        node.set("this", _binary(left, target))


def _binary_groups(select: exp.Select, target: str, scope: Scope) -> None:
    group = select.args.get("group")
    if isinstance(group, exp.Group):
        extra = [_binary(key, target) for key in group.expressions if scope.kind(key) == "text"]
        group.set("expressions", [*group.expressions, *extra])
    in_set = isinstance(select.parent, exp.SetOperation) or (
        isinstance(select.parent, exp.Subquery) and isinstance(select.parent.parent, exp.SetOperation))
    if isinstance(select.args.get("distinct"), exp.Distinct) or in_set:
        _binary_items(select, target, scope)


def _binary_items(select: exp.Select, target: str, scope: Scope) -> None:
    for item in list(select.expressions):
        value = item.this if isinstance(item, exp.Alias) else item
        if isinstance(value, exp.Collate) or scope.kind(value) != "text":
            continue
        if any(True for _ in own(value, select, exp.AggFunc)):
            continue
        name = item.alias_or_name
        wrapped = _binary(value, target, output=True)
        item.replace(exp.alias_(wrapped, exp.to_identifier(name)) if name else wrapped)


def _binary(node: exp.Expr, target: str, *, output: bool = False) -> exp.Expr:
    """`node` compared by its bytes. MySQL: as BINARY where the value is only compared (trailing spaces count, as in
    SQLite; MariaDB's utf8mb4_bin ignores them), as utf8mb4_bin text where the value is also returned."""
    if target == "mysql" and not output:
        return exp.Cast(this=node.copy(), to=exp.DataType.build("BINARY", dialect="mysql"))
    if target == "postgres":
        return exp.Collate(this=node.copy(), expression=exp.Identifier(this="C", quoted=True))
    if target == "tsql":
        return exp.Collate(this=node.copy(), expression=exp.Var(this="Latin1_General_BIN2"))
    text = exp.Cast(this=node.copy(), to=exp.DataType(this=exp.DataType.Type.CHARACTER_SET,
                                                        kind=exp.Var(this="utf8mb4")))
    return exp.Collate(this=text, expression=exp.Var(this="utf8mb4_bin"))


def _refuse(target: str, construct: str) -> None:
    raise TranspileRefused(f"The query uses {construct}, which can't be written faithfully in "
                           f"{dialect_label(target)}.")
