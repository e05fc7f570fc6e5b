"""What a statement is, from its first words in the upper-cased masked text (lexer.py): KIND's groups.

`classify` matches KIND once per statement. In a text whose statements are the pieces between its `;` (every
dump), it finds them all with one regular expression over the whole text, KIND made to stop at a `;` as it stops
at the end of a statement: the engine then skips, in C, from one `;` to the next, and Python only sees the
statements a query can read (in a 1,000-table dump, a third)."""

from __future__ import annotations

import itertools
import re

from gateway.schema_model.alter import DUMPED_KEY
from gateway.schema_model.lexer import Masked
from gateway.schema_model.statements import Statement, one_per_piece, split
from gateway.schema_model.tables import CREATE_TABLE
from gateway.schema_model.views import CREATE_VIEW

# A CREATE of something no query reads (an index, a sequence, a routine...).
_SKIPPED_CREATE = (
    r"\s*CREATE\s+(?:OR\s+(?:REPLACE|ALTER)\s+)?(?:DEFINER\s*=\s*\S+\s+)?(?:(?:UNIQUE|CLUSTERED|NONCLUSTERED|"
    r"FULLTEXT|SPATIAL|BITMAP|TEMP|TEMPORARY|TRUSTED|PROCEDURAL|CONSTRAINT|DEFAULT|COLUMNSTORE|PRIMARY|XML)\s+)*"
    r"(?:INDEX|SEQUENCE|SCHEMA|TYPE|EXTENSION|FUNCTION|PROCEDURE|PROC|TRIGGER|DOMAIN|ROLE|USER|DATABASE|AGGREGATE|"
    r"OPERATOR|CAST|COLLATION|CONVERSION|POLICY|PUBLICATION|SUBSCRIPTION|RULE|STATISTICS|TEXT\s+SEARCH|EVENT|"
    r"LANGUAGE|SERVER|FOREIGN\s+DATA\s+WRAPPER|USER\s+MAPPING|MACRO|SECRET|TABLESPACE|ACCESS\s+METHOD|TRANSFORM|"
    r"SYNONYM|LOGIN|ASSEMBLY|PARTITION\s+FUNCTION|PARTITION\s+SCHEME|FULLTEXT\s+CATALOG|GROUP|CERTIFICATE|"
    r"MASTER\s+KEY|SYMMETRIC\s+KEY)(?![\w$])")

# Each statement is matched once, here. `alter_skip`: the common pg_dump ALTERs (OWNER TO, a column's DEFAULT),
# skipped without being read; `alter_key`: pg_dump's ADD CONSTRAINT PRIMARY / FOREIGN KEY, read from this match;
# `alter`: any other ALTER. `skip`: defines nothing a query can read. `create_table` and `create_view` are
# CREATE_TABLE and CREATE_VIEW, with their groups; `create_skip`: a CREATE of something no query reads; `create`:
# any other CREATE. The first words tell the ALTERs, the CREATEs and the others apart, so order only matters among
# the ALTERs and among the CREATEs (as the reader tries them). The CREATEs come last: no other statement tries them.
# (`\S++\s++`: a name then blanks, taken whole; giving some back could only put a blank where a word must start.)
_ALTER_SKIP = (r"ALTER\s+(?:(?!TABLE\s)|TABLE\s+(?:ONLY\s+)?\S++\s++(?:OWNER\s+TO|ALTER\s+COLUMN\s+\S++\s++SET\s+"
               r"DEFAULT|ENABLE|DISABLE|CLUSTER|REPLICA)\s)")
_SKIP_WORDS = (
    r"(?:SET|SELECT|GRANT|REVOKE|USE|BEGIN|COMMIT|START|END|ROLLBACK|PRAGMA|LOCK|UNLOCK|INSERT|REPLACE|UPDATE|"
    r"DELETE|COPY|VACUUM|ANALYZE|EXEC|EXECUTE|DECLARE|PRINT|IF|RAISERROR|SAVEPOINT|RELEASE|CHECKPOINT|REINDEX|"
    r"REFRESH|CLUSTER|DISCARD|RESET|LISTEN|NOTIFY|SECURITY|TRUNCATE|VALUES|INSTALL|LOAD|ATTACH|DETACH|CALL|DO|SHOW|"
    r"DESCRIBE|EXPLAIN|FLUSH|OPTIMIZE|REPAIR|WITH|DBCC|DEALLOCATE|OPEN|CLOSE|FETCH|WHILE|RETURN|CHECKSUM|KILL|"
    r"BACKUP|RESTORE|IMPORT|EXPORT)(?![\w$])")
_OTHER_KINDS = (
    rf"(?P<alter_key>{DUMPED_KEY})|(?P<alter>ALTER\s)|(?P<comment>COMMENT\s+ON\s)|(?P<drop>DROP\s)|(?P<rename>RENAME\s)"
    rf"|(?P<create_table>{CREATE_TABLE.pattern})|(?P<create_view>{CREATE_VIEW.pattern})"
    rf"|(?P<create_skip>{_SKIPPED_CREATE})|(?P<create>CREATE\s)")
KIND = re.compile(rf"\s*(?:(?P<alter_skip>{_ALTER_SKIP})|(?P<skip>{_SKIP_WORDS})|{_OTHER_KINDS})")
SKIP_GROUPS = frozenset({"create_skip", "alter_skip", "skip"})


def _in_text(pattern: str) -> str:
    """`pattern`, which is matched within one statement, made to stop at the statement's `;` when it is matched
    in the whole text: `;` left out of each negated class and of \\S, and \\Z (the end of a statement) also
    before a `;`. Refuses what a `;` could match otherwise (a `.`, a `;`, \\W, \\D, a class that holds them)."""
    out = []
    at = 0
    while at < len(pattern):
        char = pattern[at]
        if char == "\\":
            escape = pattern[at:at + 2]
            if escape in (r"\W", r"\D"):
                raise ValueError(f"{escape} would match a `;`")
            out.append({r"\S": r"[^\s;]", r"\Z": r"(?=;|\Z)"}.get(escape, escape))
            at += 2
        elif char == "[":
            end = at + 2 if pattern.startswith("[^", at) else at + 1
            end += pattern[end] == "]"  # a `]` first is a character of the class
            while pattern[end] != "]":
                end += 2 if pattern[end] == "\\" else 1
            members = pattern[at:end + 1]
            if members.startswith("[^"):
                members = "[^;" + members[2:]
            elif ";" in members or any(escape in members for escape in (r"\S", r"\W", r"\D")):
                raise ValueError(f"{members} could match a `;`")
            out.append(members)
            at = end + 1
        elif char in ".;$":
            raise ValueError(f"{char!r} in a pattern matched in the whole text")
        else:
            out.append(char)
            at += 1
    return "".join(out)


# what KIND's `alter_skip`, `skip` and `create_skip` match (the CREATEs last: no other statement tries them)
_SKIPPED = _in_text(rf"{_ALTER_SKIP}|{_SKIP_WORDS}|{_SKIPPED_CREATE}")
_KINDS = _in_text(_OTHER_KINDS)  # (KIND's other groups: after _SKIPPED failed, the same as KIND's)
# At the text's start, and after each `;`: the blanks of the piece (`blank`: newlines, spaces, newlines, each run
# taken in one tight loop, where \s tests each character in turn; then any other blank), then a statement: KIND's
# groups, or `other` for one of no kind KIND knows (where KIND.match gives None). A statement of SKIP_GROUPS is no
# match at all: the engine goes on to the next `;` (most statements of a dump: Python never sees them).
_FIRST_IN_TEXT = re.compile(rf"(?P<blank>\n*+ *+\n*+\s*+)(?=[^\s;])(?!{_SKIPPED})(?:{_KINDS}|(?P<other>))")
_IN_TEXT = re.compile(rf";(?P<blank>\n*+ *+\n*+\s*+)(?=[^\s;])(?!{_SKIPPED})(?:{_KINDS}|(?P<other>))")
_FIRST_SKIPPED = re.compile(rf"\s*+(?:{_SKIPPED})")
_SKIPPED_IN_TEXT = re.compile(rf";\s*+(?:{_SKIPPED})")

Kept = tuple[Statement, re.Match[str] | None]  # a statement and KIND's match (None, or `other`: of no known kind)


def classify(masked: Masked) -> tuple[list[Kept], bool]:
    """Each statement (statements.split) with KIND's match, in order, but those of SKIP_GROUPS; and whether there
    were any of those."""
    upper = masked.upper
    kept: list[Kept] = []
    skipped = False
    if not one_per_piece(upper):
        for statement in split(masked):
            found = KIND.match(upper, statement[1], statement[2])
            if found is not None and found.lastgroup in SKIP_GROUPS:
                skipped = True
            else:
                kept.append((statement, found))
        return kept, skipped
    first = _FIRST_IN_TEXT.match(upper)
    for found in itertools.chain([first] if first is not None else [], _IN_TEXT.finditer(upper)):
        start = found.end(_BLANK)
        end = upper.find(";", start)
        kept.append(((found.start(_BLANK), start, end if end >= 0 else len(upper)), found))
    return kept, bool(_FIRST_SKIPPED.match(upper) or _SKIPPED_IN_TEXT.search(upper))


_BLANK = _IN_TEXT.groupindex["blank"]  # (a group's number: found faster than its name, thousands of times)
if _FIRST_IN_TEXT.groupindex["blank"] != _BLANK:
    raise TypeError("_IN_TEXT and _FIRST_IN_TEXT must number `blank` alike")
