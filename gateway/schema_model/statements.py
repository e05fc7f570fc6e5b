"""Masked text (lexer.py) -> statements. Statements end at `;` (a `GO` line and MySQL's `DELIMITER` are one in the
masked text), and before a `CREATE` at the top level (people paste `CREATE TABLE a (...) CREATE TABLE b (...)`);
a routine's `BEGIN ... END` body stays whole."""

from __future__ import annotations

import bisect
import itertools
import re

from gateway.schema_model.lexer import Masked

Statement = tuple[int, int, int]  # (piece start, statement start, end): the piece starts after the last `;`

_ROUTINE = re.compile(
    r"CREATE\s+(?:OR\s+(?:REPLACE|ALTER)\s+)?(?:DEFINER\s*=\s*\S+\s+)?(?:TEMP(?:ORARY)?\s+)?"
    r"(?:TRIGGER|PROCEDURE|PROC|FUNCTION|EVENT)(?![\w$])")
_BLOCK_WORDS = re.compile(r"(?<![\w$])(BEGIN|CASE|END(?:\s+(?:IF|LOOP|WHILE|REPEAT|CASE)(?![\w$]))?)(?![\w$])")


def one_per_piece(upper: str) -> bool:
    """Whether each piece of the text between two `;` is one statement (every dump): no two CREATEs share a piece
    and no routine body holds a `;`. Such a text's statements may be found in it whole (kinds.py)."""
    return not _creates_share_a_piece(upper, _create_positions(upper)) and not _has_routine(upper)


def split(masked: Masked) -> list[Statement]:
    """Each statement of the text, in order, empty ones dropped: a statement starts past the blanks and comments
    at the start of its piece (pg_dump's headers)."""
    upper = masked.upper
    pieces: list[tuple[int, int]] = []
    at = 0
    for piece in upper.split(";"):
        pieces.append((at, at + len(piece)))
        at += len(piece) + 1
    creates = _create_positions(upper)
    if _creates_share_a_piece(upper, creates):
        pieces = _split_at_creates(upper, pieces, creates)
    if _has_routine(upper):
        pieces = _whole_routines(upper, pieces)
    statements = []
    for start, end in pieces:
        found = _NONBLANK.search(upper, start, end)
        if found is not None:
            statements.append((start, found.start(), end))
    return statements


_NONBLANK = re.compile(r"\S")
# A literal first, so the regular expression engine skips to candidates fast; then the look-behind: no word before
_CREATE_WORD = re.compile(r"CREATE(?<![\w$]CREATE)(?![\w$])")


def _create_positions(upper: str) -> list[int]:
    return [found.start() for found in _CREATE_WORD.finditer(upper)]


def _creates_share_a_piece(upper: str, creates: list[int]) -> bool:
    return any(upper.find(";", at, following) < 0 for at, following in itertools.pairwise(creates))


def _has_routine(upper: str) -> bool:
    return "BEGIN" in upper and _ROUTINE.search(upper) is not None


def _split_at_creates(upper: str, pieces: list[tuple[int, int]], creates: list[int]) -> list[tuple[int, int]]:
    """A piece holding a second CREATE at parenthesis depth 0 is two statements."""
    starts = [start for start, _ in pieces]
    inside: dict[int, list[int]] = {}
    for position in creates:
        inside.setdefault(bisect.bisect_right(starts, position) - 1, []).append(position)
    if all(len(positions) < 2 for positions in inside.values()):
        return pieces
    result: list[tuple[int, int]] = []
    for index, (start, end) in enumerate(pieces):
        positions = inside.get(index, [])
        if len(positions) < 2:
            result.append((start, end))
            continue
        at = start
        for position in positions:
            head = upper[at:position]
            if head.strip() and head.count("(") == head.count(")"):
                result.append((at, position))
                at = position
        result.append((at, end))
    return result


def _whole_routines(upper: str, pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Glue back the pieces a routine's `BEGIN ... END` body was cut into at its inner `;`."""
    merged: list[tuple[int, int]] = []
    open_blocks = 0
    for begin, end in pieces:
        if open_blocks > 0:
            merged[-1] = (merged[-1][0], end)
        elif _ROUTINE.match(upper, begin + len(upper[begin:end]) - len(upper[begin:end].lstrip())):
            merged.append((begin, end))
        else:
            merged.append((begin, end))
            continue
        open_blocks = _open_blocks(upper[merged[-1][0]:merged[-1][1]])
    return merged


def _open_blocks(text: str) -> int:
    depth = 0
    for word in _BLOCK_WORDS.findall(text):
        if word in ("BEGIN", "CASE"):
            depth += 1
        elif word == "END":
            depth -= 1
    return depth
