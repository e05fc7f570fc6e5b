"""The schema statements in free text (a chat message): each CREATE TABLE or CREATE VIEW exactly as written,
newlines and comments kept, so a `--` comment never swallows the rest of a table."""

from __future__ import annotations

import re

from gateway.schema_model.lexer import mask
from gateway.schema_model.names import closing_paren

_HEAD = re.compile(
    r"(?<![\w$])CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:GLOBAL|LOCAL)\s+)?(?:(?:TEMP|TEMPORARY|UNLOGGED|VIRTUAL)\s+)*"
    r"(?P<kind>TABLE|VIEW)(?![\w$])", re.IGNORECASE)
_VIEW_END = re.compile(r";|\n[ \t]*\n")


def schema_statements(text: str) -> tuple[str, ...]:
    """Each `CREATE TABLE name (...)` (through its closing parenthesis) and each `CREATE VIEW ... ;` in `text`."""
    masked = mask(text).masked
    found: list[str] = []
    resume_at = 0
    for head in _HEAD.finditer(masked):
        if head.start() < resume_at:
            continue  # inside a statement already taken
        if head.group("kind").upper() == "TABLE":
            open_at = masked.find("(", head.end())
            end = closing_paren(masked, open_at, len(masked)) if open_at >= 0 else None
            if end is None:
                break  # never closed: every later head would scan the same unclosed tail
            end += 1
        else:
            stop = _VIEW_END.search(masked, head.end())
            end = stop.start() if stop else len(masked)
        found.append(text[head.start():end].strip())
        resume_at = end
    return tuple(dict.fromkeys(found))


def joined(statements: tuple[str, ...]) -> str:
    """Statements as one schema text: `; ` between one-line ones (the training data's shape), else `;` and a
    newline, so a line comment ends where it did."""
    return (";\n" if any("\n" in statement for statement in statements) else "; ").join(statements)
