"""read_schema: the request's schema text, read once into a SchemaModel (cached per text).

Each statement is replayed in order, as a database would: CREATE TABLE / VIEW define, ALTER TABLE / COMMENT ON /
DROP change, statements that define nothing a query reads (SET, CREATE INDEX / SEQUENCE / TYPE, GRANT, INSERT...)
are skipped, and anything else is kept as *unreadable*, with its text."""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import operator
import re
from collections.abc import Iterator

from gateway.schema_model.alter import (
    ALTER_TABLE,
    COMMENT_ON,
    DROP,
    RENAME_TABLE,
    alter_table,
    comment_on,
    dropped,
    dumped_key,
)
from gateway.schema_model.kinds import classify
from gateway.schema_model.lexer import FILL, Masked, mask
from gateway.schema_model.model import DEFAULT_SCHEMAS, Column, SchemaModel, Table, Unreadable, built_table
from gateway.schema_model.names import NAME, QUALIFIED, closing_paren, qualified_name, qualified_parts
from gateway.schema_model.tables import (
    TableDraft,
    leading_description,
    read_column_list,
    read_columns,
    read_options,
)
from gateway.schema_model.views import AS_QUERY, query_columns

MAX_SCHEMA_CHARS = 10_000_000  # the most any setting may allow (settings.py checks its cap against it)

_NAME_GUESS = re.compile(rf"\s*(?:CREATE\s[^(]*?(?:TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?)?(?P<name>{QUALIFIED})"
                         r"\s*\(")
_USING_MODULE = re.compile(rf"USING\s+{NAME}\s*\(")
_PARTITION_OF = re.compile(rf"(?:PARTITION\s+OF|LIKE)\s+(?P<parent>{QUALIFIED})")


def read_schema(text: str) -> SchemaModel:
    """The schema text as one model; never raises. Memoised per text: every step of a request reads the same."""
    return _read_cached(text)


@functools.lru_cache(maxsize=32)
def _read_cached(text: str) -> SchemaModel:
    if len(text) > MAX_SCHEMA_CHARS:
        return SchemaModel((), (Unreadable(text[:200], f"the schema is longer than {MAX_SCHEMA_CHARS:,} "
                                                       "characters"),))
    try:
        with _collector_paused():
            return _Reader(mask(text)).read()
    except RecursionError:
        return SchemaModel((), (Unreadable(text[:200], "the schema is nested too deeply to read"),))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a text is read (as timeit pauses it): a big dump makes tens
    of thousands of objects and no reference cycle, and the collector, started by their number, would only walk
    them, again and again (about 3 % of a 1,000-table read, more in a bigger process). Left alone where it is
    already paused; only the pause made here ends here."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _Reader:
    def __init__(self, text: Masked) -> None:
        self._text = text
        self._drafts: dict[tuple[str, str], TableDraft] = {}
        self._kinds: dict[tuple[str, str], tuple[str, bool]] = {}  # (table or view, whether its types are known)
        self._unreadable: list[Unreadable] = []
        self._kept: dict[object, tuple[int, str]] = {}  # what the prompt shows: each live definition's statement
        self._skipped = 0
        self._piece_start = 0

    def read(self) -> SchemaModel:
        statements, skipped = classify(self._text)
        self._skipped += skipped
        for (piece_start, start, end), kind in statements:
            self._statement(piece_start, start, end, kind)
        tables = tuple(self._table(key, draft) for key, draft in self._drafts.items())
        return SchemaModel(tables, tuple(self._unreadable), self._prompt_text())

    # ---- one statement -----------------------------------------------------------------------------------

    def _statement(self, piece_start: int, start: int, end: int, kind: re.Match[str] | None) -> None:
        """The statement between `start` and `end`, as KIND matched it (None, or `other`: no kind it knows)."""
        upper = self._text.upper
        self._piece_start = piece_start  # the comments above a CREATE TABLE may describe it
        group = kind.lastgroup if kind is not None else None
        if kind is None or group == "other":
            self._cannot_read(start, end, "not a statement that defines a table")
        elif group == "create_table":
            self._create_table(start, end, kind)
        elif group == "create_view":
            self._create_view(start, end, kind)
        elif group == "create":
            self._cannot_read(start, end, "not a CREATE statement this reader knows")
        elif group == "alter_key":
            dumped_key(self._text, kind, self._draft)
            self._skipped += 1
        elif group == "alter":
            if (found := ALTER_TABLE.match(upper, start, end)) is not None:
                self._alter(start, end, found)
            else:
                self._skipped += 1
        elif group == "comment":
            if (found := COMMENT_ON.match(upper, start, end)) is not None:
                comment_on(self._text, found, end, self._draft)
            self._skipped += 1
        elif group == "drop":
            if (found := DROP.match(upper, start, end)) is not None:
                for schema, name in dropped(self._text, found.end(), end):
                    self._drafts.pop(_key(schema, name), None)
                    self._kept.pop(_key(schema, name), None)
            self._skipped += 1
        elif group == "rename" and (found := RENAME_TABLE.match(upper, start, end)) is not None:
            self._rename(found)
        else:
            self._cannot_read(start, end, "not a statement that defines a table")

    def _create_table(self, start: int, end: int, found: re.Match[str]) -> None:
        text = self._text
        parts = qualified_parts(text, *found.span("table_name"))
        name, quote = parts[-1]
        schema = parts[-2][0] if len(parts) >= 2 else ""
        schema = _schema(schema)
        key = _key(schema, name)
        if key in self._drafts and (found.group("table_exists") or "REPLACE" not in found.group()):
            return  # a table defined twice: the first definition stands, as in a database
        draft = TableDraft(schema, name, quote, [], self._statement_text(start, end))
        draft.catalog = parts[-3][0] if len(parts) >= 3 else ""
        at = found.end()
        if text.masked.startswith("(", at):
            close = read_column_list(text, at, end, draft)
            if close is None:
                self._cannot_read(start, end, "its column list is never closed", name, schema)
                return
            if close + 1 < end:  # (a dump's statement ends at its list)
                read_options(text, close + 1, end, draft)
        elif (query := AS_QUERY.match(text.upper, at, end)) is not None:
            self._from_query(start, end, draft, query.end(), ())
            return
        elif (using := _USING_MODULE.match(text.upper, at, end)) is not None:  # SQLite's virtual tables
            close = closing_paren(text.masked, using.end() - 1, end)
            read_columns(text, using.end() - 1, close if close is not None else end, draft)
            draft.columns[:] = [c for c in draft.columns if "=" not in c.name and "=" not in c.type]
        elif (parent := _PARTITION_OF.match(text.upper, at, end)) is not None:
            parent_schema, parent_name, _ = qualified_name(text, parent.start("parent"), parent.end("parent"))
            draft.like = (parent_schema, parent_name)
        else:
            self._cannot_read(start, end, "no column list follows the table's name", name, schema)
            return
        if not draft.description and text.comment_starts:
            draft.description = leading_description(text, self._piece_start, found.start("table_name"))
        self._add(key, draft, start, end)

    def _create_view(self, start: int, end: int, found: re.Match[str]) -> None:
        text = self._text
        schema, name, quote = qualified_name(text, *found.span("view_name"))
        draft = TableDraft(_schema(schema), name, quote, [], self._statement_text(start, end))
        at = found.end()
        explicit: tuple[str, ...] = ()
        if found.group("view_columns"):
            close = closing_paren(text.masked, found.start("view_columns"), end)
            if close is None:
                self._cannot_read(start, end, "its column list is never closed", name, schema)
                return
            read_columns(text, found.start("view_columns"), close, draft)
            explicit = tuple(column.name for column in draft.columns)
            draft.columns.clear()
            at = close + 1
        query = AS_QUERY.search(text.upper, at, end)
        if query is None:
            self._cannot_read(start, end, "no AS SELECT follows the view's name", name, schema)
            return
        self._from_query(start, end, draft, query.end(), explicit, view=True)

    def _from_query(self, start: int, end: int, draft: TableDraft, at: int, explicit: tuple[str, ...],
                    view: bool = False) -> None:
        read = query_columns(_code(self._text, at, end), self._resolve, explicit)
        if read.columns is None:
            self._cannot_read(start, end, f"its columns can't be told: {read.reason}", draft.name, draft.schema)
            return
        draft.columns.extend(read.columns)
        self._add(_key(draft.schema, draft.name), draft, start, end, "view" if view else "table", read.types_known)

    def _alter(self, start: int, end: int, found: re.Match[str]) -> None:
        schema, name, _ = qualified_name(self._text, found.start("name"), found.end("name"))
        draft = self._draft(schema, name)
        if draft is None:
            self._skipped += 1  # a sequence, or a table that was not read: its own statement says why
            return
        problem = alter_table(self._text, found.end(), end, draft)
        if problem is not None:
            self._drafts.pop(_key(draft.schema, draft.name), None)
            self._cannot_read(start, end, problem, draft.name, draft.schema)
        else:
            self._skipped += 1

    def _rename(self, found: re.Match[str]) -> None:
        old = qualified_name(self._text, found.start("old"), found.end("old"))
        new = qualified_name(self._text, found.start("new"), found.end("new"))
        draft = self._drafts.pop(_key(old[0], old[1]), None)
        if draft is not None:
            draft.schema, draft.name, draft.quote = _schema(new[0]), new[1], new[2]
            self._drafts[_key(new[0], new[1])] = draft
        self._skipped += 1

    # ---- helpers -----------------------------------------------------------------------------------------

    def _add(self, key: tuple[str, str], draft: TableDraft, start: int, end: int, kind: str = "table",
             types_known: bool = True) -> None:
        self._drafts.pop(key, None)  # re-inserted: a replaced table takes its new place in the order
        self._drafts[key] = draft
        self._kinds[key] = (kind, types_known)
        self._kept[key] = (start, draft.text)

    def _draft(self, schema: str, name: str) -> TableDraft | None:
        return self._drafts.get(_key(schema, name))

    def _resolve(self, schema: str, name: str) -> Table | None:
        key = _key(schema, name)
        draft = self._drafts.get(key)
        if draft is None and not schema:
            draft = next((d for k, d in self._drafts.items() if k[1] == key[1]), None)
        return None if draft is None else self._table(_key(draft.schema, draft.name), draft)

    def _cannot_read(self, start: int, end: int, reason: str, name: str | None = None, schema: str = "") -> None:
        if name is None:
            guess = _NAME_GUESS.match(self._text.upper, start, end)
            if guess is not None:
                schema, name, _ = qualified_name(self._text, guess.start("name"), guess.end("name"))
        self._unreadable.append(Unreadable(self._statement_text(start, end), reason, name or None, _schema(schema)))
        self._kept[len(self._unreadable)] = (start, self._unreadable[-1].text)

    def _statement_text(self, start: int, end: int) -> str:
        """The statement as written, without a comment after its last word (joined with `;` it would swallow it)."""
        masked = self._text.masked
        if end > start and not masked[end - 1].isspace():  # (a dump's: its `;` right after its last word)
            return self._text.text[start:end]
        return self._text.text[start:start + len(masked[start:end].rstrip())]

    def _table(self, key: tuple[str, str], draft: TableDraft) -> Table:
        columns = draft.columns
        for parent_schema, parent_name in ([draft.like] if draft.like else []) + draft.inherits:
            parent = self._resolve(parent_schema, parent_name)
            if parent is not None:
                own = {column.name.lower() for column in columns}
                columns = [c for c in parent.columns if c.name.lower() not in own] + columns
        kind, types_known = self._kinds.get(key, ("table", True))
        return built_table(draft.name, _unique(columns), draft.schema, draft.quote,
                           "view" if kind == "view" else "table", draft.primary_key, tuple(draft.foreign_keys),
                           draft.description, draft.text, types_known, draft.catalog)

    def _prompt_text(self) -> str:
        if not self._skipped:
            return self._text.text.strip()
        kept = [text for _, text in sorted(self._kept.values())]
        return (";\n" if any(map(operator.contains, kept, itertools.repeat("\n"))) else "; ").join(kept)


def _key(schema: str, name: str) -> tuple[str, str]:
    schema = schema.lower()
    return ("" if schema in DEFAULT_SCHEMAS else schema), name.lower()


def _schema(schema: str) -> str:
    return "" if schema.lower() in DEFAULT_SCHEMAS else schema


def _unique(columns: list[Column]) -> tuple[Column, ...]:
    if len(set(map(str.lower, map(_NAME, columns)))) == len(columns):  # (map: in C, for thousands of columns)
        return tuple(columns)
    seen: dict[str, Column] = {}
    for column in columns:
        seen.setdefault(column.name.lower(), column)
    return tuple(seen.values())


_NAME = operator.itemgetter(0)  # a Column's name


def _code(text: Masked, start: int, end: int) -> str:
    """The original text between `start` and `end` with its comments blanked (strings and names kept)."""
    piece = text.masked[start:end]
    return re.sub(f"{FILL}+", lambda m: text.text[start + m.start():start + m.end()], piece)
