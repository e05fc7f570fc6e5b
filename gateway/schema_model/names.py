"""Name tokens in the masked text (lexer.py): bare, "double-quoted", `backticked`, [bracketed] or 'quoted' (SQLite
takes a string as a table name), possibly dotted into schema.table; and the items of a parenthesis. Positions are
found in the masked text, the names themselves read from the original at the same positions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import repeat

from gateway.schema_model.lexer import Masked, unquote

NAME = r"""(?:"[^"]*"|`[^`]*`|\[[^\]]*\]|'[^']*'|[^\s.(),;"`\[']+)"""
QUALIFIED = rf"{NAME}(?:\s*\.\s*{NAME}){{0,2}}"
_PART = re.compile(NAME)
_PARENS = re.compile(r"[(),]")


def qualified_name(text: Masked, start: int, end: int) -> tuple[str, str, str]:
    """The dotted name between `start` and `end` -> (schema, name, quote); `db.schema.table` keeps its schema."""
    original = text.text[start:end]
    if text.masked[start:end] == original:  # nothing quoted (most names): the last two parts, as split(".") gives
        head, _, name = original.rpartition(".")
        return head.rpartition(".")[2].strip(), name.strip(), ""
    parts = qualified_parts(text, start, end)
    name, quote = parts[-1] if parts else ("", "")
    return (parts[-2][0] if len(parts) >= 2 else ""), name, quote


def qualified_parts(text: Masked, start: int, end: int) -> list[tuple[str, str]]:
    """The parts of a dotted name, each (name, quote)."""
    original = text.text[start:end]
    if text.masked[start:end] == original:  # nothing quoted: the common case, and a fast one
        return list(zip(map(str.strip, original.split(".")), repeat("")))
    return [unquote(text.text[m.start():m.end()]) for m in _PART.finditer(text.masked, start, end)]


def name_at(text: Masked, start: int, end: int) -> str:
    """The first name between `start` and `end`, unquoted ("" if none)."""
    found = _PART.search(text.masked, start, end)
    return unquote(text.text[found.start():found.end()])[0] if found else ""


# Possessive (`++`, `*+`): a text that never closes fails at once instead of backtracking exponentially.
_BALANCED = re.compile(r"\((?:[^()]++|\((?:[^()]++|\((?:[^()]++|\([^()]*+\))*+\))*+\))*+\)")


def closing_paren(masked: str, open_at: int, end: int) -> int | None:
    """The index of the `)` that closes the `(` at `open_at`, or None before `end`."""
    found = _BALANCED.match(masked, open_at, end)
    if found is not None:
        return found.end() - 1
    depth = 0
    for found in _PARENS.finditer(masked, open_at, end):
        char = found.group()
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return found.start()
    return None


def consecutive(pattern: re.Pattern[str], text: str, start: int, end: int) -> list[re.Match[str]]:
    """The matches of `pattern` one after another from `start`, each where the last ended, until one fails: in C,
    with the scanner re.Scanner uses (in CPython since 2.x, undocumented, so not in the type stubs)."""
    scanner = pattern.scanner(text, start, end)  # type: ignore[attr-defined]
    found: list[re.Match[str]] = list(iter(scanner.match, None))
    return found


def items(masked: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each comma-separated item between `start` and `end`, commas in parentheses skipped."""
    depth = 0
    at = start
    for found in _PARENS.finditer(masked, start, end):
        char = found.group()
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0:
            yield at, found.start()
            at = found.end()
    yield at, end


def name_list(text: Masked, start: int, end: int) -> tuple[str, ...]:
    """`(a, "b c", [d])` -> ("a", "b c", "d") from between the parentheses; `a ASC`, `b(10)` reduced to names."""
    names = (name_at(text, begin, finish) for begin, finish in items(text.masked, start, end))
    return tuple(name for name in names if name)


def parenthesised_names(text: Masked, start: int, end: int) -> tuple[str, ...]:
    """The names in the first parenthesis after `start`."""
    open_at = text.masked.find("(", start, end)
    if open_at < 0:
        return ()
    close = closing_paren(text.masked, open_at, end)
    return name_list(text, open_at + 1, close if close is not None else end)
