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
import sqlite3
from collections import Counter

from gateway.schema_model import read_schema
from gateway.sql_check.schema_db import quote_identifier

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
    return name if _BARE.fullmatch(name) and not needs_quotes(name) else quote_identifier(name)


@functools.lru_cache(maxsize=4096)
def needs_quotes(word: str) -> bool:
    """Whether SQLite refuses `word` as a bare name (`order`, `group`, `index`...): asked of SQLite itself."""
    if not _BARE.fullmatch(word):
        return True
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute(f"EXPLAIN SELECT {word} FROM (SELECT 1 AS {quote_identifier(word)}) AS {word}")
    except sqlite3.Error:
        return True
    finally:
        connection.close()
    return False


def _spellings(name: str, quote: str) -> list[str]:
    """A name as the schema wrote it, in lower case and in upper case (SQLite's names ignore case, and the
    model and gold SQL write any of them); quoted where SQLite needs quotes, also in the schema's own quotes."""
    forms = []
    for form in dict.fromkeys((name, name.lower(), name.upper())):
        forms.append(spelled(form))
        if quote in ("`", "[") and spelled(form) != form:
            forms.append(f"`{form}`" if quote == "`" else f"[{form}]")
    return forms


def _literal(text: str) -> str:
    """A GBNF string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _alternatives(words: list[str]) -> str:
    return " | ".join(_literal(word) for word in words)


@functools.lru_cache(maxsize=128)
def schema_grammar(schema: str) -> str | None:
    """The grammar for one schema's text, or None when no table could be read from it (nothing to constrain to)."""
    model = read_schema(schema)
    if not model.tables:
        return None
    shared = {name for name, count in Counter(table.name.lower() for table in model.tables).items() if count > 1}
    names: dict[str, None] = {}
    for table in model.tables:
        for column in table.columns:
            names.update(dict.fromkeys(_spellings(column.name, column.quote)))
        if table.name.lower() not in shared:
            names.update(dict.fromkeys(_spellings(table.name, table.quote)))
        if table.schema:  # qualified: the only way to name one of two same-named tables, also offered for others
            for schema_name in _spellings(table.schema, ""):
                for table_name in _spellings(table.name, table.quote):
                    names[f"{schema_name}.{table_name}"] = None
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
