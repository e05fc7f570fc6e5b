"""The request's CREATE TABLE text: tables and columns for grounding, the statements found in free text (chat),
and the canonical form. Lenient: a schema that can't be read means less grounding, never a failed request."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping

import sqlglot.expressions as exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from gateway.sql_check.names import query_columns
from gateway.sql_check.parsing import get_dialect
from gateway.sql_check.result import MAX_SCHEMA_CHARS, SUPPORTED_DIALECTS

_CREATE_TABLE = re.compile(
    r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:GLOBAL|LOCAL)\s+)?(?:TEMP(?:ORARY)?\s+)?TABLE\b", re.IGNORECASE
)
_NAME = r"""(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[\w$]+)"""
_CREATE_TABLE_HEAD = re.compile(
    rf"{_CREATE_TABLE.pattern}\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>{_NAME}(?:\s*\.\s*{_NAME}){{0,2}})\s*(?=\()",
    re.IGNORECASE,
)
_CONSTRAINT_WORDS = frozenset({"primary", "foreign", "unique", "check", "constraint", "key", "index",
                               "fulltext", "spatial", "exclude", "period"})


def parse_schema(schema: str, dialect: str = "sqlite") -> dict[str, frozenset[str]]:
    """Table name -> column names (lower-cased) from lenient CREATE TABLE text; never raises."""
    return dict(parse_schema_cached(schema, dialect))


@functools.lru_cache(maxsize=256)
def parse_schema_cached(schema: str, dialect: str) -> Mapping[str, frozenset[str]]:
    tables: dict[str, set[str]] = {}
    if len(schema) > MAX_SCHEMA_CHARS:
        return {}
    try:
        for statement in _create_table_statements(schema):
            parsed = _parse_create_table(statement, dialect)
            if parsed is not None:
                name, columns = parsed
                tables.setdefault(name, set()).update(columns)
    except (Exception, RecursionError):
        pass  # a schema we cannot read only means less grounding, never a failed request
    return {name: frozenset(columns) for name, columns in tables.items()}


@functools.lru_cache(maxsize=256)
def schema_qualifiers(schema: str) -> frozenset[str]:
    """The schema / database qualifiers the CREATE TABLE text itself uses (`CREATE TABLE sales.orders`)."""
    if len(schema) > MAX_SCHEMA_CHARS:
        return frozenset()
    qualifiers: set[str] = set()
    for head in _CREATE_TABLE_HEAD.finditer(schema):
        parts = re.split(r"\s*\.\s*", head.group("name"))
        qualifiers.update(unquote(part).lower() for part in parts[:-1])
    return frozenset(qualifiers)


def _create_table_statements(text: str) -> list[str]:
    """Split at each CREATE TABLE, so `CREATE TABLE a (...) CREATE TABLE b (...)` without `;` works too."""
    starts = [match.start() for match in _CREATE_TABLE.finditer(text)]
    chunks = [text[start:end] for start, end in zip(starts, [*starts[1:], len(text)], strict=True)]
    return [chunk.strip().rstrip(";, \t\r\n") for chunk in chunks]


def _parse_create_table(statement: str, dialect: str) -> tuple[str, set[str]] | None:
    for read in dict.fromkeys((dialect if dialect in SUPPORTED_DIALECTS else "sqlite", "sqlite")):
        try:
            parsed = get_dialect(read).parse(statement)
        except (ParseError, TokenError, RecursionError):
            continue
        create = parsed[0] if len(parsed) == 1 else None
        if isinstance(create, exp.Create) and isinstance(create.this, exp.Schema | exp.Table):
            table = create.this.this if isinstance(create.this, exp.Schema) else create.this
            if not isinstance(table, exp.Table) or not table.name:
                continue
            if isinstance(create.this, exp.Schema):
                columns = {d.name.lower() for d in create.this.expressions if isinstance(d, exp.ColumnDef)}
            else:
                selected = query_columns(create.expression) if create.expression else None
                columns = set(selected or ())
            return table.name.lower(), columns
    return _parse_create_table_by_hand(statement)


def _parse_create_table_by_hand(statement: str) -> tuple[str, set[str]] | None:
    """Fallback for text sqlglot refuses: the name, then the first word of each top-level item."""
    head = _CREATE_TABLE_HEAD.match(statement)
    if head is None:
        return None
    body = _balanced_parens(statement, head.end())
    if body is None:
        body = statement[head.end() + 1:]
    name = unquote(re.split(r"\s*\.\s*", head.group("name"))[-1]).lower()
    columns = set()
    for item in top_level_items(body):
        words = item.split()
        if words and words[0].lower() not in _CONSTRAINT_WORDS:
            columns.add(unquote(words[0]).lower())
    return name, columns


def unquote(name: str) -> str:
    """A quoted identifier's name (a doubled double quote inside stands for one); anything else as it is."""
    if len(name) >= 2 and name[0] + name[-1] in ('""', "``", "[]"):
        return name[1:-1].replace('""', '"') if name[0] == '"' else name[1:-1]
    return name


def _balanced_parens(text: str, open_at: int) -> str | None:
    """The text inside the parenthesis opening at `open_at`, skipping quoted parts; None if never closed."""
    end = _closing_paren(text, open_at)
    return None if end is None else text[open_at + 1:end]


_QUOTE_CLOSERS = {"'": "'", '"': '"', "`": "`", "[": "]"}


def _unquoted(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """(index, character, parenthesis depth after it) for every character of `text` from `start` that is outside
    quotes and brackets: the one scanner both readers below share."""
    depth = 0
    quote: str | None = None
    for index in range(start, len(text)):
        char = text[index]
        if quote is not None:
            if char == quote:
                quote = None
            continue
        if char in _QUOTE_CLOSERS:
            quote = _QUOTE_CLOSERS[char]
            continue
        depth += (char == "(") - (char == ")")
        yield index, char, depth


def _closing_paren(text: str, open_at: int) -> int | None:
    return next((index for index, char, depth in _unquoted(text, open_at) if char == ")" and depth == 0), None)


def top_level_items(body: str) -> list[str]:
    """The comma-separated items of a parenthesis body, skipping commas nested in parentheses or quoted."""
    items: list[str] = []
    start = 0
    for index, char, depth in _unquoted(body):
        if char == "," and depth == 0:
            items.append(body[start:index])
            start = index + 1
    items.append(body[start:])
    return [item.strip() for item in items if item.strip()]


def find_create_tables(text: str) -> str:
    """The CREATE TABLE statements in free text, each on one line, joined by "; " like the training data."""
    one_line = (" ".join(statement.split()) for statement in create_table_statements(text))
    return "; ".join(dict.fromkeys(one_line))


def create_table_statements(text: str) -> tuple[str, ...]:
    """Each `CREATE TABLE name ( ... )` in free text, exactly as written (so a caller can cut it out)."""
    found: list[str] = []
    resume_at = 0
    try:
        for head in _CREATE_TABLE_HEAD.finditer(text):
            if head.start() < resume_at:
                continue  # a CREATE TABLE inside one already taken (a quoted default, say)
            end = _closing_paren(text, head.end())
            if end is None:
                break  # never closed: every later head would scan the same unclosed tail
            found.append(text[head.start():end + 1])
            resume_at = end + 1
    except Exception:  # free text from a chat; a regex surprise must not fail the request
        return ()
    return tuple(found)


@functools.lru_cache(maxsize=256)
def canonical_schema(schema: str) -> str:
    """Cache-key form: the same for changes of whitespace, keyword case and table order; never raises.

    Memoised: a team sends a handful of schemas over and over, and tokenising one costs milliseconds."""
    try:
        tokens = get_dialect("sqlite").tokenize(schema)
    except Exception:
        return " ".join(schema.split())
    statements: list[list[str]] = [[]]
    for index, token in enumerate(tokens):
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
            continue
        if token.token_type == TokenType.CREATE and statements[-1] and _starts_table(tokens, index):
            statements.append([])
        statements[-1].append(_canonical_token(token))
    for words in statements:
        while words and words[-1] == ",":
            words.pop()
    return "; ".join(sorted(" ".join(words) for words in statements if words))


def _starts_table(tokens: list[Token], index: int) -> bool:
    following = {token.token_type for token in tokens[index + 1:index + 4]}
    return TokenType.TABLE in following


def _canonical_token(token: Token) -> str:
    text = token.text
    if token.token_type == TokenType.STRING:
        return "'" + text.replace("'", "''") + "'"
    if token.token_type == TokenType.IDENTIFIER:
        return '"' + text.replace('"', '""') + '"'
    if token.token_type in (TokenType.VAR, TokenType.NUMBER):
        return text
    return text.upper()  # keywords and type names: their case carries no meaning

