"""Tokenizing and parsing with the check's limits: per-thread sqlglot tokenizers and parsers, nesting caps, and
parse errors worded for a person."""

from __future__ import annotations

import functools
import threading

import sqlglot
import sqlglot.expressions as exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, ParseError, TokenError
from sqlglot.parser import Parser
from sqlglot.tokenizer_core import Token, TokenType
from sqlglot.tokens import Tokenizer

from gateway.sql_check.result import MAX_PAREN_DEPTH, Problem, Rejected, too_deep


@functools.lru_cache(maxsize=32)
def get_dialect(name: str) -> Dialect:
    return Dialect.get_or_raise(name)


def translate(sql: str, read: str, write: str) -> str:
    """`sql` written in `write` by sqlglot; a construct the target can't express raises instead of becoming a
    silently different query (unsupported_level=RAISE)."""
    return sqlglot.transpile(sql, read=read, write=write, unsupported_level=ErrorLevel.RAISE)[0]


class PerThread(threading.local):
    """One sqlglot tokenizer and parser per dialect and thread. Both reset themselves at the start of every call,
    and building them afresh cost ~40 us of the check's ~250 us; they hold state while working, hence per thread."""

    def __init__(self) -> None:
        self.by_dialect: dict[str, tuple[Tokenizer, Parser]] = {}

    def for_dialect(self, name: str) -> tuple[Tokenizer, Parser]:
        pair = self.by_dialect.get(name)
        if pair is None:
            dialect = get_dialect(name)
            pair = self.by_dialect[name] = (dialect.tokenizer(), dialect.parser())
        return pair


PER_THREAD = PerThread()


def tokenize(tokenizer: Tokenizer, sql: str) -> list[Token]:
    try:
        return tokenizer.tokenize(sql)
    except TokenError:
        raise Rejected(Problem("parse_error", "The SQL has an unterminated string, quoted name or comment, "
                                               "or a character that is not SQL.")) from None


def check_tokens(tokens: list[Token]) -> None:
    """Reject nesting deeper than the parser can take before it recurses into it."""
    depth = 0
    for token in tokens:
        if token.token_type in _OPENERS:
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                raise Rejected(too_deep())
        elif token.token_type in _CLOSERS:
            depth -= 1


_OPENERS = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE})
_CLOSERS = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE})


def parse(parser: Parser, tokens: list[Token], sql: str) -> list[exp.Expr]:
    try:
        parsed = parser.parse(tokens, sql)
    except ParseError as error:
        raise Rejected(Problem("parse_error", _parse_error_message(error))) from None
    # `;;` yields None and a trailing comment after `;` yields a bare Semicolon: neither is a statement.
    return [statement for statement in parsed
            if statement is not None and not isinstance(statement, exp.Semicolon)]


def _parse_error_message(error: ParseError) -> str:
    # sqlglot's own description can carry token reprs; the position and the offending text are what help.
    details = error.errors[0] if error.errors else {}
    near = " ".join(str(details.get("highlight") or "").split())[:40]
    line, column = details.get("line"), details.get("col")
    where = f" (line {line}, column {column})" if line and column else ""
    return f"The SQL could not be parsed near '{near}'{where}." if near else f"The SQL could not be parsed{where}."

