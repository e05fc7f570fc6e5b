"""Grounding: which tables and columns does the SQL use that the request's schema lacks? Tables are looked up in
the schema model (qualified where the text qualifies them; a bare name shared by two schemas is ambiguous), column
references resolved through aliases, derived tables, CTEs and enclosing queries. A table whose statement could not
be read is *unverifiable*, not unknown."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import sqlglot.expressions as exp

from gateway.schema_model import DEFAULT_SCHEMAS, SchemaModel, Table, Unreadable
from gateway.sql_check.guard import Walk
from gateway.sql_check.names import Columns, lower_set, query_columns, unique
from gateway.sql_check.result import Problem

# ------------------------------------------------------------------------------------------------------------
# grounding: which tables and columns does the SQL use that the schema lacks?

_SCOPES = (exp.Select, exp.SetOperation, exp.Update, exp.Delete, exp.Insert)


@dataclass(frozen=True)
class Grounding:
    columns: tuple[str, ...] = ()
    unknown_tables: tuple[str, ...] = ()
    unknown_columns: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    touched: frozenset[tuple[str, str]] = frozenset()  # (schema, table) keys of what it reads in the schema
    unverifiable: tuple[Unreadable, ...] = ()  # parts of the schema text it reads that could not be read
    covered: bool = False  # every table it reads is one the schema model holds: the names were all checked


def ground(walk: Walk, model: SchemaModel | None, dialect: str) -> Grounding:
    known = model is not None and (bool(model.tables) or bool(model.unreadable))
    sources = _TableSources(walk, model) if model is not None else None
    resolver = _Resolver(walk, sources, dialect)
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
        table = sources.table(target) if sources is not None and target is not None else None
        if table is not None and identifier.name.lower() not in table.column_names():
            unknown_columns.append(identifier.name)
            problems.append(Problem("unknown_column", f"Column '{identifier.name}' is not in table "
                                                      f"'{table.qualified}'."))
    if sources is None or not known:
        return Grounding(columns=unique(columns), unknown_columns=unique(unknown_columns),
                         problems=tuple(_unique_problems(problems)))
    problems[:0] = sources.problems
    return Grounding(columns=unique(columns), unknown_tables=sources.unknown, unknown_columns=unique(unknown_columns),
                     problems=tuple(_unique_problems(problems)), touched=frozenset(sources.touched),
                     unverifiable=tuple(dict.fromkeys(sources.unverifiable)),
                     covered=not sources.problems and not sources.unverifiable)


class _TableSources:
    """Each table the query names, looked up once in the schema model."""

    def __init__(self, walk: Walk, model: SchemaModel) -> None:
        self.touched: set[tuple[str, str]] = set()
        self.unverifiable: list[Unreadable] = []
        self.problems: list[Problem] = []
        unknown: list[str] = []
        self._found: dict[int, Table | None] = {}
        qualifiers = model.qualifiers()
        for node in walk.tables:
            if not isinstance(node.this, exp.Identifier) or (not node.db and node.name.lower() in walk.ctes):
                continue
            shown = ".".join(part for part in (node.catalog, node.db, node.name) if part)
            if node.catalog and node.catalog.lower() not in qualifiers:
                self._found[id(node)] = None
                unknown.append(shown)
                self.problems.append(Problem("unknown_table", f"Table '{shown}' is not in the schema: "
                                                              f"'{node.catalog}' is not a database it declares."))
                continue
            lookup = model.lookup(node.name, node.db)
            self._found[id(node)] = lookup.table
            if lookup.table is not None:
                self.touched.add(lookup.table.key)
            elif lookup.ambiguous:
                where = ", ".join(table.qualified for table in lookup.ambiguous)
                self.problems.append(Problem("ambiguous_table", f"Table '{shown}' is in more than one schema "
                                                                f"({where}): name it with its schema."))
            elif lookup.unreadable is not None:
                self.unverifiable.append(lookup.unreadable)
                self.touched.add(("" if node.db.lower() in DEFAULT_SCHEMAS else node.db.lower(), node.name.lower()))
            else:
                unknown.append(shown)
                outside = node.db and node.db.lower() not in qualifiers | DEFAULT_SCHEMAS
                why = f": '{node.db}' is not a schema it declares" if outside else ""
                self.problems.append(Problem("unknown_table", f"Table '{shown}' is not in the schema{why}."))
        self.unknown = unique(unknown)

    def table(self, node: exp.Table) -> Table | None:
        return self._found.get(id(node))


@dataclass(frozen=True)
class _Resolution:
    known: bool  # a real column (not an output alias or a string in disguise)
    problem: Problem | None = None


class _Resolver:
    """Resolve column references through aliases, derived tables, CTEs and enclosing queries."""

    def __init__(self, walk: Walk, tables: _TableSources | None, dialect: str) -> None:
        self._walk = walk
        self._tables = tables
        self._dialect = dialect
        self._sources: dict[int, dict[str, tuple[Columns, str]]] = {}

    def resolve(self, column: exp.Column) -> _Resolution | None:
        name = column.name.lower()
        qualifier = column.table.lower()
        scope = _enclosing_scope(column)
        while scope is not None:
            if isinstance(scope, exp.SetOperation):
                if not qualifier and name in lower_set(scope.named_selects):
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

    def _in_source(self, column: exp.Column, columns: Columns, label: str) -> _Resolution:
        if columns is None or isinstance(column.this, exp.Star) or column.name.lower() in columns:
            return _Resolution(known=True)
        return _Resolution(known=False, problem=Problem(
            "unknown_column", f"Column '{column.name}' is not in {label}."))

    def _sources_of(self, scope: exp.Expr) -> dict[str, tuple[Columns, str]]:
        """Alias -> (columns, how to name it to a person) for the FROM / JOIN items of one query."""
        cached = self._sources.get(id(scope))
        if cached is not None:
            return cached
        sources: dict[str, tuple[Columns, str]] = {}
        for source in _source_expressions(scope):
            alias, columns, label = self._source(source)
            if alias:
                sources[alias.lower()] = (columns, label)
        self._sources[id(scope)] = sources
        return sources

    def _source(self, source: exp.Expr) -> tuple[str, Columns, str]:
        if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
            name = source.name.lower()
            alias_columns = _alias_columns(source)
            cte = self._walk.ctes.get(name) if not source.db else None
            if alias_columns is not None:
                columns: Columns = alias_columns
            elif cte is not None:
                columns = _alias_columns(cte)
                if columns is None:
                    columns = query_columns(cte.this)
            elif self._tables is not None and (table := self._tables.table(source)) is not None:
                columns = table.column_names()
            else:
                columns = None  # unknown (no schema, or a table it could not read): anything resolves
            kind = "the result of WITH" if cte is not None else "table"
            alias = f" (alias {source.alias})" if source.alias else ""
            return source.alias_or_name, columns, f"{kind} '{source.name}'{alias}"
        if isinstance(source, exp.Subquery):
            columns = _alias_columns(source)
            columns = columns if columns is not None else query_columns(source.this)
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




def _output_aliases(scope: exp.Expr) -> frozenset[str]:
    if not isinstance(scope, exp.Select):
        return frozenset()
    return frozenset(e.alias.lower() for e in scope.expressions if isinstance(e, exp.Alias) and e.alias)






def _unique_problems(problems: Iterable[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))

