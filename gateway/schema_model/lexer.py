"""Schema text -> masked text, aware of every comment and quoting style the dumps use (statements.py splits it).

One pass of one regular expression finds what can hide a `;` or a parenthesis: comments (`--`, `/* */`, MySQL
`#`), strings (`'...'` with `''`, MySQL's `\\'`, PostgreSQL's `$tag$...$tag$`), quoted names (`"..."`, backticks,
`[...]`), psql meta-commands (`\\restrict`, `\\connect`), COPY data and `GO` batch separators. It returns a
*masked* copy of the text, the same length, in which those are blanked (comments) or filled (strings and quoted
names keep their quotes around filler): every later step reads positions in the masked text with plain regular
expressions and takes the names and comments from the original at the same positions. MySQL's executable
comments (`/*!50001 ... */`) are code, so only their markers are blanked. A `GO` line becomes a `;`, and so does
the `DELIMITER` a MySQL dump sets (its own `;` then blanked).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

FILL = "\x01"  # stands for a character inside a string or a quoted name: no word, quote, bracket or separator

# Each branch starts with one literal character, so the regular expression engine skips to candidates at C speed
# (a branch that starts with a group or a look-behind makes it try every branch at every position: 20x slower).
# Runs of ordinary characters are taken whole (`++`): the tail can only match at a quote or a backslash, so giving
# back part of a run never finds another match, and the engine need not save a state per character.
_SPECIAL = re.compile(
    r"""-(?P<line>-[^\n]*(?:\n[ \t]*--[^\n]*)*)"""
    r"""|\#(?P<hash>(?:(?<![^\n]\#)|(?<=\s\#)(?=\s|\Z))[^\n]*)"""
    r"""|/(?:(?P<exec>\*M?!\d*+(?!\\))|(?P<block>\*.*?(?:\*/|\Z)))"""
    r"""|\*(?P<close>/)"""
    r"""|'(?P<string>(?<![\w$][\w$]')(?:[^'\\]++|''|\\'(?![\s,;)]|\Z)|\\[^'])*(?:\\?'|\Z))"""
    r"""|\$(?P<dollar>(?<![\w$]\$)(?P<tag>[A-Za-z_]\w*|)\$.*?(?:\$(?P=tag)\$|\Z))"""
    r"""|"(?P<dquote>(?:[^"]++|"")*(?:"|\Z))"""
    r"""|`(?P<btick>(?:[^`]++|``)*(?:`|\Z))"""
    r"""|\[(?P<bracket>(?!\d*\])(?:[^\]\n]++|\]\])*\])"""
    r"""|\\(?P<meta>(?<![^\n]\\)[^\n]*)""",
    re.DOTALL,
)


class Comment(NamedTuple):  # a tuple: a dump has one above each of its thousands of statements
    start: int
    end: int
    text: str  # without its markers, stripped


@dataclass(frozen=True)
class Masked:
    text: str  # the original
    masked: str  # same length; see the module docstring
    upper: str  # `masked` with ASCII letters upper-cased (the same length): keywords match case-sensitively, fast
    comment_starts: list[int]  # where each comment starts, in order (a list of numbers: bisect compares them fast)
    comment_ends: list[int]  # and where each ends

    def comments(self, start: int, end: int) -> list[Comment]:
        """The comments that start between `start` and `end`, with their text."""
        starts = self.comment_starts
        first = bisect.bisect_left(starts, start)
        if first == len(starts) or starts[first] >= end:
            return []  # (most column lists, asked for each table)
        found = []
        for index in range(first, len(starts)):
            begin, finish = starts[index], self.comment_ends[index]
            if begin >= end:
                break
            body = self.text[begin:finish]
            body = body[2:-2] if body.startswith("/*") else body.lstrip("#-")
            found.append(Comment(begin, finish, body.strip()))
        return found


_ASCII_UPPER = {code: code - 32 for code in range(ord("a"), ord("z") + 1)}


def mask(text: str) -> Masked:
    comments: tuple[list[int], list[int]] = ([], [])  # their starts and their ends
    # Each rare feature is looked for with the cheapest test that finds it: a 1,000-table dump is over a megabyte
    if "`" in text and "```" in text:  # a Markdown fence around pasted DDL is no backtick-quoted name
        text = _FENCE.sub(lambda m: " " * len(m.group()), text)
    data = _copy_data(text) if "stdin;" in text else []
    pieces: list[str] = []
    at = 0
    for start, end in [*data, (len(text), len(text))]:
        pieces.append(_mask_code(text, at, start, comments))
        pieces.append(" " * (end - start))  # COPY ... FROM stdin data lines: rows, not schema
        at = end
    masked = "".join(pieces)
    upper = _upper(masked)
    # (no other character matches G or O without case: "GO" in the upper-cased text is a test as good and faster)
    if "GO" in upper and _MAYBE_GO.search(text):
        masked = _GO.sub(lambda m: ";" + " " * (len(m.group()) - 1), masked)
        upper = _upper(masked)
    # (one search in the upper-cased text, not two in the original: it finds every case, only outside comments)
    if "DELIMITER" in upper and _DELIMITER.search(masked):
        masked = _apply_delimiters(masked)
        upper = _upper(masked)
    return Masked(text, masked, upper, *comments)


def _upper(masked: str) -> str:
    """ASCII letters upper-cased, nothing else (`ß` would become `SS`): str.upper() where that is all it does, as
    it is in an ASCII text (str.isascii() is a flag, not a scan), for it is twice as fast as str.translate()."""
    return masked.upper() if masked.isascii() else masked.translate(_ASCII_UPPER)


def _mask_code(text: str, start: int, end: int, comments: tuple[list[int], list[int]]) -> str:
    in_executable = False
    spans: list[tuple[int, int]] = []  # the comments' (start, end) in this piece, told apart after the pass

    def replace(match: re.Match[str]) -> str:  # once per comment, string and quoted name: kept short
        nonlocal in_executable
        kind = match.lastgroup
        if kind == "line" or kind == "block" or kind == "hash":
            span = match.span()
            spans.append(span)
            return " " * (span[1] - span[0])
        found = match.group()
        if kind == "string" or kind == "dquote" or kind == "btick" or kind == "bracket":
            closed = len(found) >= 2 and found[-1] == _CLOSER[found[0]]
            return found[0] + FILL * (len(found) - 1 - closed) + (found[-1] if closed else "")
        if kind == "exec":
            in_executable = True
        elif kind == "close":
            if not in_executable:
                return found
            in_executable = False
        # comments, executable comments' markers, a routine's $$ body, psql's meta-commands: blanked (line breaks
        # inside them too: nothing reads lines inside a comment, and a comment never holds the line break that
        # ends it)
        return " " * len(found)

    masked = _SPECIAL.sub(replace, text[start:end])
    if spans:
        starts, ends = comments
        if start:
            spans = [(begin + start, finish + start) for begin, finish in spans]
        starts.extend(map(_BEGIN, spans))
        ends.extend(map(_END, spans))
    return masked


_BEGIN = itemgetter(0)
_END = itemgetter(1)


_FENCE = re.compile(r"^[ \t]*```[A-Za-z0-9_+-]*[ \t]*$|```", re.MULTILINE)
_CLOSER = {"'": "'", '"': '"', "`": "`", "[": "]"}
_COPY_DATA = re.compile(r"\bFROM\s+stdin;[^\n]*\n(.*?)^\\\.[ \t]*$", re.IGNORECASE | re.MULTILINE | re.DOTALL)
_MAYBE_GO = re.compile(r"\n[ \t]*GO\b", re.IGNORECASE)
_GO = re.compile(r"^[ \t]*GO(?:[ \t]+\d+)?[ \t]*$", re.IGNORECASE | re.MULTILINE)


def _copy_data(text: str) -> list[tuple[int, int]]:
    return [(found.start(1), found.end(1)) for found in _COPY_DATA.finditer(text)]


_DELIMITER = re.compile(r"^[ \t]*DELIMITER[ \t]+(\S+)[ \t]*$", re.IGNORECASE | re.MULTILINE)


def _apply_delimiters(masked: str) -> str:
    """MySQL's client `DELIMITER ;;`: until the next DELIMITER line, `;` is part of a statement and `;;` ends one."""
    parts: list[str] = []
    at = 0
    delimiter = ";"
    for line in _DELIMITER.finditer(masked):
        parts.append(_rewrite(masked[at:line.start()], delimiter))
        parts.append(" " * (line.end() - line.start()))
        delimiter = line.group(1)
        at = line.end()
    parts.append(_rewrite(masked[at:], delimiter))
    return "".join(parts)


def _rewrite(chunk: str, delimiter: str) -> str:
    if delimiter == ";":
        return chunk
    chunk = chunk.replace(";", " ")
    return chunk.replace(delimiter, ";" + " " * (len(delimiter) - 1))


def code(text: Masked, start: int, end: int) -> str:
    """The original text between `start` and `end` with its comments blanked (strings and quoted names kept)."""
    piece = text.masked[start:end]
    original = text.text[start:end]
    if piece == original:
        return piece
    return _FILLED.sub(lambda m: original[m.start():m.end()], piece)


_FILLED = re.compile(f"{FILL}+")


def unquote(name: str) -> tuple[str, str]:
    """A name token as written -> (the name, the quote it used)."""
    if len(name) >= 2:
        first, last = name[0], name[-1]
        if first == '"' and last == '"':
            return name[1:-1].replace('""', '"'), '"'
        if first == "`" and last == "`":
            return name[1:-1].replace("``", "`"), "`"
        if first == "[" and last == "]":
            return name[1:-1].replace("]]", "]"), "["
        if first == "'" and last == "'":
            return name[1:-1].replace("''", "'"), "'"
    return name, ""


def string_value(literal: str) -> str:
    """The text of a string literal as written (`'it''s'` -> `it's`; MySQL's `\\'` and `\\\\` too)."""
    body = literal[1:] if literal[:1] in "EeNn" and literal[1:2] == "'" else literal
    body = body[1:-1] if len(body) >= 2 and body[-1] == "'" else body[1:]
    return body.replace("''", "'").replace("\\'", "'").replace("\\\\", "\\")
