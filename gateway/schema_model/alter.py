"""The statements that change tables after CREATE TABLE: ALTER TABLE (keys; columns added, dropped, renamed,
retyped), COMMENT ON (descriptions), DROP TABLE / VIEW, MySQL's RENAME TABLE. An ALTER TABLE action this reader
does not know makes the table unreadable rather than silently wrong. Keywords are matched in the upper-cased text."""

from __future__ import annotations

import re
from collections.abc import Callable

from gateway.schema_model.lexer import Masked, string_value
from gateway.schema_model.model import DEFAULT_SCHEMAS, Column, ForeignKey
from gateway.schema_model.names import NAME, QUALIFIED, items, name_at, name_list, parenthesised_names, qualified_name
from gateway.schema_model.tables import TableDraft, column_at, foreign_key_at

ALTER_TABLE = re.compile(rf"\s*ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(?P<name>{QUALIFIED})\s*\*?\s*")
COMMENT_ON = re.compile(
    rf"\s*COMMENT\s+ON\s+(?P<kind>TABLE|VIEW|MATERIALIZED\s+VIEW|FOREIGN\s+TABLE|COLUMN)\s+(?P<name>{QUALIFIED})"
    r"\s+IS\s+")
DROP = re.compile(r"\s*DROP\s+(?:TABLE|VIEW|MATERIALIZED\s+VIEW)\s+(?:IF\s+EXISTS\s+)?")
RENAME_TABLE = re.compile(rf"\s*RENAME\s+TABLE\s+(?P<old>{QUALIFIED})\s+TO\s+(?P<new>{QUALIFIED})")

_ACTION = re.compile(r"\s*(?:WITH\s+(?:NO)?CHECK\s+)?(?P<verb>[A-Z_]+)")
_ADD_CONSTRAINT = re.compile(
    rf"\s*(?:CONSTRAINT\s+{NAME}\s+)?(?:(?P<pk>PRIMARY\s+KEY)|(?P<fk>FOREIGN\s+KEY)|UNIQUE|CHECK|EXCLUDE|KEY|"
    r"INDEX|FULLTEXT|SPATIAL|DEFAULT|PERIOD|CONSTRAINT|PARTITION)(?![\w$])")
_COLUMN_WORD = re.compile(r"\s*(?:COLUMN\s+)?(?:IF\s+(?:NOT\s+)?EXISTS\s+)?")
_NAME_AT = re.compile(rf"\s*{NAME}")
_RENAME = re.compile(rf"\s*(?:(?P<table>(?:TO|AS)\s)|(?P<other>CONSTRAINT|INDEX|KEY)(?![\w$])|(?:COLUMN\s+)?"
                     rf"(?P<old>{NAME})\s+TO\s+(?P<new>{NAME}))")
_ALTER_COLUMN = re.compile(rf"\s*(?:COLUMN\s+)?(?P<name>{NAME})\s+(?:(?P<keep>SET|DROP|ADD|RESET|OPTIONS|RESTART)"
                           r"(?![\w$])|(?:SET\s+DATA\s+)?(?P<type>TYPE\s+)?)")
_DROP_OTHER = re.compile(r"\s*(?:CONSTRAINT|INDEX|KEY|PRIMARY|FOREIGN|CHECK|PARTITION|PERIOD|SYSTEM)(?![\w$])")
_STRING_AT = re.compile(r"\s*(?:[EN]?'[^']*'|NULL(?![\w$]))")
_NAME_PART = re.compile(NAME)
_QUALIFIED = re.compile(QUALIFIED)
# ALTER TABLE actions that change no table or column name the check reads.
_HARMLESS = frozenset({
    "OWNER", "ENABLE", "DISABLE", "FORCE", "NO", "CLUSTER", "SET", "RESET", "REPLICA", "ATTACH", "DETACH",
    "INHERIT", "OF", "NOT", "VALIDATE", "CHECK", "NOCHECK", "ENGINE", "AUTO_INCREMENT", "DEFAULT", "CHARACTER",
    "CHARSET", "CONVERT", "ORDER", "ALGORITHM", "LOCK", "COMMENT", "PARTITION", "SWITCH", "REBUILD", "REMOVE",
    "TRUNCATE", "COALESCE", "REORGANIZE", "EXCHANGE", "ANALYZE", "OPTIMIZE", "REPAIR", "DISCARD", "IMPORT",
    "UPGRADE", "SPLIT", "MERGE", "ROW_FORMAT", "KEY_BLOCK_SIZE", "PACK_KEYS", "TABLESPACE", "COLLATE",
    "STATS_PERSISTENT", "STATS_AUTO_RECALC", "STATS_SAMPLE_PAGES", "CHECKSUM", "DELAY_KEY_WRITE", "MIN_ROWS",
    "MAX_ROWS", "AVG_ROW_LENGTH", "COMPRESSION", "ENCRYPTION", "INSERT_METHOD", "UNION",
})

Find = Callable[[str, str], TableDraft | None]


# pg_dump's own two forms, ALTER TABLE [ONLY] t ADD CONSTRAINT n PRIMARY KEY (a) / FOREIGN KEY (a) REFERENCES r (b),
# read in the one match every statement gets (KIND, in kinds.py): ALTER_TABLE as it alone matches (an atomic
# group), then the rest of the statement.
DUMPED_KEY = (
    "(?>" + ALTER_TABLE.pattern.replace("(?P<name>", "(?P<key_table>") + ")"
    rf"\s*ADD\s+CONSTRAINT\s+{NAME}\s+(?:PRIMARY\s+KEY\s*\((?P<key_pk>[^()]*)\)|FOREIGN\s+KEY\s*\((?P<key_fk>[^()]*)\)\s*"
    rf"REFERENCES\s+(?P<key_ref_table>{QUALIFIED})\s*\((?P<key_ref>[^()]*)\))[^(),]*\Z")


def dumped_key(text: Masked, found: re.Match[str], find: Find) -> None:
    """The key a DUMPED_KEY statement adds, into its table's draft (if that table was read)."""
    schema, name, _ = qualified_name(text, *found.span("key_table"))
    draft = find(schema, name)
    if draft is None:
        return
    if found.group("key_pk") is not None:
        draft.primary_key = _names(text, *found.span("key_pk"))
    else:
        schema, table, _ = qualified_name(text, *found.span("key_ref_table"))
        draft.foreign_keys.append(ForeignKey(_names(text, *found.span("key_fk")), table,
                                             "" if schema.lower() in DEFAULT_SCHEMAS else schema,
                                             _names(text, *found.span("key_ref"))))


def alter_table(text: Masked, start: int, end: int, draft: TableDraft) -> str | None:
    """Apply one ALTER TABLE's actions (from `start`) to `draft`; a reason when an action can't be read."""
    for begin, finish in items(text.masked, start, end):
        action = _ACTION.match(text.upper, begin, finish)
        if action is None:
            continue
        verb = action.group("verb")
        at = action.end()
        if verb == "ADD":
            _add(text, at, finish, draft)
        elif verb == "DROP":
            _drop(text, at, finish, draft)
        elif verb == "RENAME":
            problem = _rename(text, at, finish, draft)
            if problem:
                return problem
        elif verb in ("ALTER", "MODIFY", "CHANGE"):
            _retype(text, verb, at, finish, draft)
        elif verb not in _HARMLESS:
            return f"ALTER TABLE ... {verb} is not an action this reader knows"
    return None


def _names(text: Masked, start: int, end: int) -> tuple[str, ...]:
    original = text.text[start:end]
    if text.masked[start:end] == original:  # nothing quoted
        if "," not in original:  # one name: pg_dump's primary keys, mostly
            name = original.strip()
            return (name,) if name else ()
        return tuple(part.strip() for part in original.split(",") if part.strip())
    return name_list(text, start, end)


def _add(text: Masked, at: int, end: int, draft: TableDraft) -> None:
    constraint = _ADD_CONSTRAINT.match(text.upper, at, end)
    if constraint is not None:
        if constraint.group("pk"):
            draft.primary_key = parenthesised_names(text, constraint.end(), end) or draft.primary_key
        elif constraint.group("fk"):
            key = foreign_key_at(text, constraint.end(), end)
            if key is not None:
                draft.foreign_keys.append(key)
        return
    skip = _COLUMN_WORD.match(text.upper, at, end)
    column = column_at(text, skip.end() if skip else at, end, draft)
    if column is not None and column.name.lower() not in {c.name.lower() for c in draft.columns}:
        draft.columns.append(column)


def _drop(text: Masked, at: int, end: int, draft: TableDraft) -> None:
    if _DROP_OTHER.match(text.upper, at, end):
        return
    skip = _COLUMN_WORD.match(text.upper, at, end)
    name = name_at(text, skip.end() if skip else at, end).lower()
    draft.columns[:] = [column for column in draft.columns if column.name.lower() != name]


def _rename(text: Masked, at: int, end: int, draft: TableDraft) -> str | None:
    found = _RENAME.match(text.upper, at, end)
    if found is None:
        return "ALTER TABLE ... RENAME could not be read"
    if found.group("table"):
        return "it renames the table (RENAME TO)"
    if found.group("old"):
        old = name_at(text, found.start("old"), found.end("old")).lower()
        new = name_at(text, found.start("new"), found.end("new"))
        quote = text.text[found.start("new")] if text.text[found.start("new")] in "\"`[" else ""
        draft.columns[:] = [Column(new, c.type, quote, c.description) if c.name.lower() == old
                            else c for c in draft.columns]
    return None


def _retype(text: Masked, verb: str, at: int, end: int, draft: TableDraft) -> None:
    replacement: Column | None
    if verb == "ALTER":
        found = _ALTER_COLUMN.match(text.upper, at, end)
        if found is None or found.group("keep"):
            return
        name = name_at(text, found.start("name"), found.end("name"))
        if found.group("type"):  # PostgreSQL: ALTER COLUMN c TYPE t [USING ...]
            type_text = " ".join(text.text[found.end():end].split())
            replacement = Column(name, re.split(r"\s+USING\s", type_text, flags=re.IGNORECASE)[0])
        else:  # SQL Server: ALTER COLUMN c t [NULL | NOT NULL]
            replacement = column_at(text, found.start("name"), end, draft)
    else:
        skip = _COLUMN_WORD.match(text.upper, at, end)
        start = skip.end() if skip else at
        name = ""
        if verb == "CHANGE":  # CHANGE old new type: the old name first
            old = _NAME_AT.match(text.masked, start, end)
            if old is None:
                return
            name = name_at(text, old.start(), old.end())
            start = old.end()
        replacement = column_at(text, start, end, draft)
        name = name or (replacement.name if replacement else "")
    if replacement is not None:
        draft.columns[:] = [replacement if column.name.lower() == name.lower() else column
                            for column in draft.columns]


def comment_on(text: Masked, found: re.Match[str], end: int, find: Find) -> None:
    """COMMENT ON TABLE t / COLUMN t.c IS '...': the description of that table or column."""
    literal = _STRING_AT.match(text.upper, found.end(), end)
    if literal is None or literal.group().strip() == "NULL":
        return
    value = string_value(text.text[literal.start():literal.end()].strip())
    names = [name_at(text, m.start(), m.end())
             for m in _NAME_PART.finditer(text.masked, found.start("name"), found.end("name"))]
    if found.group("kind") == "COLUMN":
        draft = find(names[-3], names[-2]) if len(names) >= 3 else find("", names[-2]) if len(names) == 2 \
            else None
        if draft is not None:
            draft.columns[:] = [Column(c.name, c.type, c.quote, value)
                                if c.name.lower() == names[-1].lower() else c for c in draft.columns]
        return
    draft = find(names[-2] if len(names) >= 2 else "", names[-1]) if names else None
    if draft is not None:
        draft.description = value


def dropped(text: Masked, start: int, end: int) -> list[tuple[str, str]]:
    """(schema, name) of each table a DROP TABLE / VIEW names."""
    names = []
    for begin, finish in items(text.masked, start, end):
        found = _QUALIFIED.search(text.masked, begin, finish)
        if found is not None:
            schema, name, _ = qualified_name(text, found.start(), found.end())
            names.append((schema, name))
    return names
