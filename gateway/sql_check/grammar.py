"""A token-level grammar of SQL over one request's schema, for vLLM's structured outputs (`structured_outputs:
{"grammar": ...}`, GBNF as xgrammar reads it).

It does not describe SQL's syntax: it fixes the vocabulary. The text must start with SELECT (or WITH) and may use
only SQL keywords and functions, the schema's own table and column names (quoted where they are not bare
identifiers), aliases, numbers, string literals and punctuation. That removes code fences, prose and invented
names from a sample; whether the query then compiles is still the check's job.
"""

from __future__ import annotations

import functools
import re

from gateway.sql_check.schema_db import quote_identifier, schema_tables

# Words the model's SQL is made of (SQLite, as the model writes it). Both spellings: SQL keywords are
# case-insensitive and the model writes either.
KEYWORDS = (
    "SELECT", "FROM", "WHERE", "JOIN", "INNER", "LEFT", "RIGHT", "OUTER", "CROSS", "NATURAL", "ON", "USING", "AS",
    "AND", "OR", "NOT", "IN", "LIKE", "GLOB", "BETWEEN", "IS", "NULL", "GROUP", "BY", "ORDER", "HAVING", "LIMIT",
    "OFFSET", "ASC", "DESC", "DISTINCT", "ALL", "UNION", "INTERSECT", "EXCEPT", "CASE", "WHEN", "THEN", "ELSE", "END",
    "EXISTS", "WITH", "CAST", "INTEGER", "REAL", "TEXT", "TRUE", "FALSE",
    "COUNT", "SUM", "AVG", "MIN", "MAX", "ABS", "ROUND", "LENGTH", "LOWER", "UPPER", "SUBSTR", "COALESCE", "IFNULL",
    "STRFTIME", "DATE", "JULIANDAY", "TOTAL", "GROUP_CONCAT", "INSTR", "REPLACE", "TRIM",
)
PUNCTUATION = ("<=", ">=", "!=", "<>", "==", "||", ",", "(", ")", "*", "=", "<", ">", ".", "+", "-", "/", "%", ";")
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def spelled(name: str) -> str:
    """How SQL names `name`: bare when it can be, else double-quoted."""
    return name if _BARE.fullmatch(name) else quote_identifier(name)


def _literal(text: str) -> str:
    """A GBNF string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _alternatives(words: list[str]) -> str:
    return " | ".join(_literal(word) for word in words)


@functools.lru_cache(maxsize=128)
def schema_grammar(schema: str) -> str | None:
    """The grammar for one schema's text, or None when no table could be read from it (nothing to constrain to)."""
    tables = schema_tables(schema).tables
    if not tables:
        return None
    # As written and in lower case: SQLite's names are case-insensitive, and the model writes either.
    names = dict.fromkeys(spelled(form) for table in tables
                          for name in (table.name, *(column.name for column in table.columns))
                          for form in (name, name.lower()))
    keywords = dict.fromkeys(form for word in KEYWORDS for form in (word, word.lower()))
    return "\n".join((
        # After a word (keyword, name, alias, number, string) another word needs whitespace first, or two names
        # would glue into one the schema lacks ("orders" + "sum"); punctuation may touch anything.
        "root ::= ws start after_word ws",
        'start ::= "SELECT" | "select" | "WITH" | "with"',
        'after_word ::= "" | space word after_word | gap punct after_punct',
        'after_punct ::= "" | gap word after_word | gap punct after_punct',
        "word ::= keyword | name | alias | number | string",
        f"keyword ::= {_alternatives(list(keywords))}",
        f"name ::= {_alternatives(list(names))}",
        # T1, T2 ... as the model writes its table aliases. Nothing freer: any word allowed here would let prose
        # and invented names back in.
        'alias ::= [Tt] [0-9]{1,2}',
        'number ::= [0-9]{1,12} ("." [0-9]{1,8})?',
        "string ::= \"'\" [^'\\n]{0,80} \"'\"",
        f"punct ::= {_alternatives(list(PUNCTUATION))}",
        'space ::= [ \\n\\t]{1,4}',
        'gap ::= [ \\n\\t]{0,4}',
        'ws ::= [ \\n]{0,2}',
    ))
