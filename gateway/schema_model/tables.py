"""CREATE TABLE, read from the masked text by positions (lexer.py): each column's name, type and description,
primary and foreign keys, and what follows the parenthesis (`INHERITS`, MySQL's `COMMENT=`; SQLite's `WITHOUT
ROWID`, `ENGINE=`... are read past). Keywords are matched in the upper-cased masked text; names, types and comments
come from the original. Fast on purpose: one regular expression per column."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from operator import attrgetter, itemgetter

from gateway.schema_model.lexer import Comment, Masked, code, string_value, unquote
from gateway.schema_model.model import DEFAULT_SCHEMAS, Column, ForeignKey
from gateway.schema_model.names import (
    NAME,
    QUALIFIED,
    closing_paren,
    consecutive,
    items,
    name_list,
    parenthesised_names,
    qualified_name,
)

# (Its group names are its own: KIND, in kinds.py, holds it with CREATE_VIEW.)
CREATE_TABLE = re.compile(
    r"\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:GLOBAL|LOCAL)\s+)?"
    r"(?:(?:TEMP|TEMPORARY|UNLOGGED|VIRTUAL|FOREIGN|EXTERNAL|TRANSIENT|VOLATILE|MULTISET|SET)\s+)*TABLE\s+"
    rf"(?P<table_exists>IF\s+NOT\s+EXISTS\s+)?(?P<table_name>{QUALIFIED})\s*")

# A column's type is the words after its name up to the first of these (or the end of the definition).
_STOP_WORDS = (
    "NOT", "NULL", "PRIMARY", "REFERENCES", "DEFAULT", "CHECK", "UNIQUE", "CONSTRAINT", "COLLATE", "GENERATED",
    "AUTO_INCREMENT", "AUTOINCREMENT", "COMMENT", "IDENTITY", "ON", "AS", r"CHARACTER\s+SET", "CHARSET", "ENCODE",
    "STORAGE", "COMPRESSION", "SPARSE", "ROWGUIDCOL", "FILESTREAM", "MASKED", "INVISIBLE", "VISIBLE", "KEY", "HIDDEN",
    r"WITH(?!\s+(?:LOCAL\s+)?TIME\s+ZONE)")
# (tried after a test of the first letter, which most type words fail at once)
_STOP = rf"(?=[{''.join(sorted({word[0] for word in _STOP_WORDS}))}])(?:{'|'.join(_STOP_WORDS)})(?![\w$])"
_TYPE_WORD = r"(?:[^\s(),]++(?:\s*+\((?:[^()]|\([^()]*+\))*+\))?+|\((?:[^()]|\([^()]*+\))*+\))"
# A table constraint, not a column: `key` and `index` are column names too (PostgreSQL prints `index integer`), so
# MySQL's `KEY name (cols)` and `INDEX (cols)` count only with their parenthesis.
_CONSTRAINT = (
    rf"(?:CONSTRAINT\s+{NAME}\s*)?(?:(?P<pk>PRIMARY\s+KEY)|(?P<fk>FOREIGN\s+KEY)|CHECK\s*(?=\()|"
    r"EXCLUDE\s+(?=USING|\()|(?:(?:UNIQUE|FULLTEXT|SPATIAL)\s+)?(?:KEY|INDEX)(?:\s+(?!USING\b)"
    rf"{NAME})?(?:\s+USING\s+\w+)?\s*(?=\()|UNIQUE(?![\w$])|PERIOD\s+FOR(?![\w$])|(?P<like>LIKE\s))")
_TYPE = rf"(?:(?!{_STOP}){_TYPE_WORD}(?:\s*+(?!{_STOP}){_TYPE_WORD})*+)?+"
# Possessive throughout (`++`, `*+`): an item that does not match fails at once, never backtracking exponentially.
_REST = r"(?:[^(),]++|\((?:[^()]++|\((?:[^()]++|\([^()]*+\))*+\))*+\))*+"
# One item of a column list, through its comma: a table constraint, or a column's name, type and the rest.
# A bare name may hold a parenthesis glued to it, as sql-create-context writes `Official_ratings_(millions)`.
# ([CPFEUSKIL]: the first letters of _CONSTRAINT's words, tested before any of them.)
_BODY_ITEM = re.compile(rf"""\s*(?:(?=[CPFEUSKIL])(?P<constraint>{_CONSTRAINT}){_REST}|"""
                        rf"""(?P<name>"[^"]*"|`[^`]*`|\[[^\]]*\]|'[^']*'|[^\s"`\[',()]+(?:\([^\s()]*\)[^\s"`\[',()]*)*)"""
                        rf"""\s*(?P<type>{_TYPE})(?P<rest>{_REST}))(?:,|\Z)""")
_PRIMARY_KEY = re.compile(r"(?<![\w$])PRIMARY\s+KEY(?![\w$])")
_REFERENCES = re.compile(rf"REFERENCES\s+(?P<table>{QUALIFIED})\s*(?P<open>\()?")
_COMMENT_STRING = re.compile(r"(?<![\w$])COMMENT\s*=?\s*(?=N?')")
_STRING = re.compile(r"N?'[^']*'?")
_INHERITS = re.compile(r"(?<![\w$])INHERITS\s*\(")
_QUALIFIED = re.compile(QUALIFIED)
_MASKED_INSIDE = re.compile(r"--|/\*|#|'|\"")
_KEY_WORDS = re.compile(r"PRIMARY|REFERENCES|COMMENT")  # the words _column_keys reads
_QUOTES = "\"`['"  # what a quoted name starts with
_QUOTE = re.compile(r"[\"`\[']")
_CONSTRAINT_GROUP, _NAME_GROUP, _TYPE_GROUP, _REST_GROUP = (
    _BODY_ITEM.groupindex[name] for name in ("constraint", "name", "type", "rest"))
_QUOTED_TYPE_WORD = re.compile(r"\[([^\]\d][^\]]*)\]")  # [nvarchar], not an array's [] or [3]
_PG_DUMP_HEADER = re.compile(r"^(?:Name: .*?; Type: .*|TOC entry .*|Data for Name: .*|Dependencies: .*)$")
# pg_dump's whole header comment as written, `--`, `-- Name: ...; Type: ...` and `--`: as a Comment's text, each of
# its lines is a _PG_DUMP_HEADER or nothing ("not a line break": what str.splitlines() does not split at).
_LINE = r"[^\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]"
_PG_DUMP_COMMENT = re.compile(rf"--\n-- Name: [^;{_LINE[2:-1]}]*+; Type: {_LINE}*+\n--\Z")  # (no `;` in the name)


@dataclass(slots=True)
class TableDraft:
    """A table as read so far; later statements (ALTER TABLE, COMMENT ON) still change it."""

    schema: str
    name: str
    quote: str
    columns: list[Column]
    text: str
    primary_key: tuple[str, ...] = ()
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    description: str | None = None
    inherits: list[tuple[str, str]] = field(default_factory=list)  # (schema, name) of parents (PostgreSQL)
    like: tuple[str, str] | None = None  # copy this table's columns (`LIKE other`, `PARTITION OF parent`)
    catalog: str = ""


def read_column_list(text: Masked, open_at: int, end: int, draft: TableDraft) -> int | None:
    """The column list whose `(` is at `open_at` (before `end`) into `draft`; where its `)` is (None: never)."""
    masked = text.masked
    last = masked.rfind(")", open_at, end)
    if last > open_at and masked.find("[", open_at, last) < 0:
        # The statement's last `)` closes the list when the items reach it with no gap: an item holds parentheses
        # only in pairs (but in an unmasked `[` name), so no earlier `)` closes it. A dump's CREATE TABLE ends with
        # its list: so one search finds the `)`, and the items are read once.
        found = consecutive(_BODY_ITEM, text.upper, open_at + 1, last)
        if (found[-1].end() if found else open_at + 1) == last:
            _read_items(text, open_at, last, found, draft)
            return last
    close = closing_paren(masked, open_at, end)
    if close is not None:
        read_columns(text, open_at, close, draft)
    return close


def read_columns(text: Masked, open_at: int, close_at: int, draft: TableDraft) -> None:
    """The items of the parenthesis (`open_at`, `close_at`) into `draft`: columns and table constraints."""
    start = open_at + 1
    upper = text.upper
    # Item after item from `start`, each where the last ended: they reach `close_at` unless an item nests deeper
    # than _BODY_ITEM reads (3), and then the commas are found first.
    found = consecutive(_BODY_ITEM, upper, start, close_at)
    if (found[-1].end() if found else start) != close_at:
        found = [match for begin, end in items(text.masked, start, close_at)
                 if (match := _BODY_ITEM.match(upper, begin, end)) is not None]
    _read_items(text, open_at, close_at, found, draft)


def _read_items(text: Masked, open_at: int, close_at: int, found: list[re.Match[str]], draft: TableDraft) -> None:
    body = text.upper[open_at + 1:close_at]
    if "PRIMARY" in body or "REFERENCES" in body or "COMMENT" in body:
        columns = draft.columns
        for match in found:  # in order: a column's key and a table constraint's may both set the primary key
            if match.lastindex == _CONSTRAINT_GROUP:
                _table_constraint(text, match, match.end(), draft)
            elif (column := _column(text, match, draft)) is not None:
                columns.append(column)
    else:
        _plain_columns(text, found, draft)
    if text.comment_starts:
        comments = text.comments(open_at, close_at)
        if comments:
            spans = [(match.start(), match.end()) for match in found]
            _column_comments(text, spans, comments, draft)


def _plain_columns(text: Masked, found: list[re.Match[str]], draft: TableDraft) -> None:
    """The items of a column list in which no column has a key or a COMMENT, so nothing needs reading in order:
    the columns in bulk, a list entry each rather than a call (a 1,000-table dump has thousands)."""
    original = text.text
    defined = found
    if _CONSTRAINT_GROUP in map(_LAST_INDEX, found):
        defined = [match for match in found if match.lastindex != _CONSTRAINT_GROUP]
        for match in found:
            if match.lastindex == _CONSTRAINT_GROUP:
                _table_constraint(text, match, match.end(), draft)  # (no key here: at most a LIKE)
    types = [original[match.start(_TYPE_GROUP):match.end(_TYPE_GROUP)] for match in defined]
    if _unusual("\0".join(types)):
        types = [_type_text(text, *match.span(_TYPE_GROUP)) if _unusual(type_text) else type_text
                 for match, type_text in zip(defined, types, strict=True)]
    names = [original[match.start(_NAME_GROUP):match.end(_NAME_GROUP)] for match in defined]
    columns = list(map(_NEW_COLUMN, zip(names, types, repeat(""), repeat(None))))
    empty = False
    for mark in _QUOTE.finditer("".join(map(_FIRST, names))):  # the quoted names (pg_dump: one a table or so)
        index = mark.start()
        name, quote = unquote(names[index])
        columns[index] = Column(name, types[index], quote)
        empty = empty or not name
    draft.columns.extend([column for column in columns if column.name] if empty else columns)  # ("" is no column)


_LAST_INDEX = attrgetter("lastindex")
_FIRST = itemgetter(0)
_NEW_COLUMN = partial(tuple.__new__, Column)  # Column._make without its Python frame: a column from 4 values


def _quoted(name: str, type_text: str) -> Column | None:
    name, quote = unquote(name)
    return Column(name, type_text, quote) if name else None


def column_at(text: Masked, start: int, end: int, draft: TableDraft) -> Column | None:
    """The column definition between `start` and `end` (`name type constraints...`); its keys go to `draft`."""
    found = _BODY_ITEM.match(text.upper, start, end)
    if found is None or found.group("constraint"):
        return None
    return _column(text, found, draft)


def _column(text: Masked, found: re.Match[str], draft: TableDraft) -> Column | None:
    """One column definition. Written for speed: a 1,000-table dump has thousands of these, and most are a name,
    a plain type and no key, so each rarer case is looked for once and read only where it is."""
    original = text.text
    name_start, name_end = found.span(_NAME_GROUP)
    name = original[name_start:name_end]
    quote = ""
    if name[0] in _QUOTES:
        name, quote = unquote(name)
        if not name:
            return None
    type_start, type_end = found.span(_TYPE_GROUP)
    type_text = original[type_start:type_end]
    if _unusual(type_text):
        type_text = _type_text(text, type_start, type_end)
    end = found.end(_REST_GROUP)  # where the definition ends, before its comma
    if end - type_end > 1 and _KEY_WORDS.search(text.upper, type_end, end):
        return Column(name, type_text, quote, _column_keys(text, name, type_end, end, draft))
    return Column(name, type_text, quote)


def _unusual(type_text: str) -> bool:
    """Whether _type_text would change the type as written: a comment or a string inside it, runs of white space,
    a [bracketed] word. (Tested with `in`: the one regular expression for it finds no first character to skip to.)"""
    return ("--" in type_text or "/*" in type_text or "#" in type_text or "'" in type_text or '"' in type_text
            or "[" in type_text or "\n" in type_text or "\t" in type_text or "  " in type_text)


def _type_text(text: Masked, start: int, end: int) -> str:
    type_text = text.text[start:end]
    if _MASKED_INSIDE.search(type_text):  # a comment or a string inside the type: read it without the comment
        type_text = code(text, start, end)
    if "  " in type_text or "\n" in type_text or "\t" in type_text:
        type_text = " ".join(type_text.split())
    if "[" in type_text:
        type_text = _QUOTED_TYPE_WORD.sub(r"\1", type_text)  # SQL Server's [nvarchar](50)
    return type_text


def _column_keys(text: Masked, name: str, start: int, end: int, draft: TableDraft) -> str | None:
    """A column's own PRIMARY KEY and REFERENCES (into `draft`) and its description (MySQL's COMMENT)."""
    upper = text.upper
    primary = upper.find("PRIMARY", start, end) >= 0 and _PRIMARY_KEY.search(upper, start, end) is not None
    at = upper.find("REFERENCES", start, end)
    references = _REFERENCES.match(upper, at, end) if at >= 0 else None
    if references is not None:
        draft.foreign_keys.append(_foreign_key(text, (name,), references, end))
    description = comment_option(text, start, end) if upper.find("COMMENT", start, end) >= 0 else None
    if primary and not draft.primary_key:
        draft.primary_key = (name,)
    return description


def _table_constraint(text: Masked, found: re.Match[str], end: int, draft: TableDraft) -> None:
    at = found.end("constraint")
    end -= text.upper[end - 1:end] == ","
    if found.group("pk"):
        columns = parenthesised_names(text, at, end)
        if columns:
            draft.primary_key = columns
    elif found.group("fk"):
        key = foreign_key_at(text, at, end)
        if key is not None:
            draft.foreign_keys.append(key)
    elif found.group("like"):
        name = _QUALIFIED.match(text.masked, at, end)
        if name is not None:
            schema, table, _ = qualified_name(text, name.start(), name.end())
            draft.like = (schema, table)


def foreign_key_at(text: Masked, start: int, end: int) -> ForeignKey | None:
    """`(a) REFERENCES t (b)` after FOREIGN KEY at `start`."""
    columns = parenthesised_names(text, start, end)
    at = text.upper.find("REFERENCES", start, end)
    references = _REFERENCES.match(text.upper, at, end) if at >= 0 else None
    return None if references is None else _foreign_key(text, columns, references, end)


def _foreign_key(text: Masked, columns: tuple[str, ...], references: re.Match[str], end: int) -> ForeignKey:
    schema, table, _ = qualified_name(text, references.start("table"), references.end("table"))
    ref_columns: tuple[str, ...] = ()
    if references.group("open"):
        close = closing_paren(text.masked, references.start("open"), end)
        ref_columns = name_list(text, references.end("open"), close if close is not None else end)
    return ForeignKey(columns, table, "" if schema.lower() in DEFAULT_SCHEMAS else schema, ref_columns)


def comment_option(text: Masked, start: int, end: int) -> str | None:
    """MySQL's `COMMENT 'text'` (a column) or `COMMENT='text'` (a table), at or after `start`."""
    found = _COMMENT_STRING.search(text.upper, start, end)
    if found is None:
        return None
    literal = _STRING.match(text.masked, found.end(), end)
    return string_value(text.text[literal.start():literal.end()]) if literal else None


def read_options(text: Masked, start: int, end: int, draft: TableDraft) -> None:
    """What follows the column list: a table comment (MySQL) and the parents a PostgreSQL table inherits."""
    if start >= end or text.upper[start:end].isspace():
        return
    description = comment_option(text, start, end)
    if description:
        draft.description = description
    inherits = _INHERITS.search(text.upper, start, end)
    if inherits is not None:
        close = closing_paren(text.masked, inherits.end() - 1, end)
        for begin, finish in items(text.masked, inherits.end(), close if close is not None else end):
            found = _QUALIFIED.search(text.masked, begin, finish)
            if found is not None:
                schema, parent, _ = qualified_name(text, found.start(), found.end())
                draft.inherits.append((schema, parent))


def _column_comments(text: Masked, spans: list[tuple[int, int]], comments: list[Comment],
                     draft: TableDraft) -> None:
    """`--` or `/* */` comments inside the parenthesis describe a column: the one on their line, or the one below
    them when they stand on lines of their own."""
    columns = {column.name.lower(): index for index, column in enumerate(draft.columns)}
    for comment in comments:
        owner = _comment_owner(text.text, spans, comment) if comment.text else None
        if owner is None:
            continue
        found = _BODY_ITEM.match(text.upper, *spans[owner])
        if found is None or not found.group("name"):
            continue
        index = columns.get(unquote(text.text[found.start("name"):found.end("name")])[0].lower())
        if index is not None and draft.columns[index].description is None:
            column = draft.columns[index]
            draft.columns[index] = Column(column.name, column.type, column.quote, comment.text)


def _comment_owner(original: str, spans: list[tuple[int, int]], comment: Comment) -> int | None:
    for index, (start, end) in enumerate(spans):
        if not start <= comment.start < end:
            continue
        before = original[start:comment.start]
        if before.strip():  # after the item's own text: this item
            return index
        if index > 0 and "\n" not in before:  # right after the previous item's comma, on its line
            return index - 1
        return index
    return None


def leading_description(text: Masked, start: int, end: int) -> str | None:
    """The comment block right above a CREATE TABLE (between `start` and `end`), unless it is one of pg_dump's own
    headers."""
    starts = text.comment_starts
    first = bisect.bisect_left(starts, start)
    if first + 1 == bisect.bisect_left(starts, end, first) and _PG_DUMP_COMMENT.match(
            text.text, starts[first], text.comment_ends[first]):
        return None  # (the one comment a dump has above each table: its header, told in one match)
    comments = text.comments(start, end)
    lines = [line.strip().lstrip("-#").strip() for comment in comments for line in comment.text.splitlines()]
    kept = [line for line in lines if line and not _PG_DUMP_HEADER.match(line)]
    return " ".join(kept) or None
