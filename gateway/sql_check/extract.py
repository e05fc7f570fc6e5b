"""Model output -> bare SQL: fences, labels and prose around the statement are dropped."""

from __future__ import annotations

import re

_FENCE = re.compile(
    r"```[ \t]*(?:(?!(?:SELECT|WITH)\b)[A-Za-z0-9_+-]*[ \t]*\n)?(?P<body>.*?)(?:```|\Z)",
    re.DOTALL | re.IGNORECASE,
)
_LABEL = re.compile(r"^\s*(?:sql(?:\s+query)?|answer|query|output|response)\s*:\s*", re.IGNORECASE)
_SQL_START = re.compile(
    r"^\s*(?:\(|(?:SELECT|WITH|INSERT|UPDATE|DELETE|REPLACE|MERGE|CREATE|DROP|ALTER|TRUNCATE|PRAGMA|ATTACH|"
    r"DETACH|COPY|GRANT|REVOKE|SET|EXPLAIN|VALUES|CALL|EXEC|EXECUTE|BEGIN|COMMIT|ROLLBACK|USE|SHOW|DESCRIBE|"
    r"LOAD|VACUUM|ANALYZE|REINDEX|TABLE)\b)",
    re.IGNORECASE,
)
_SQL_CONTINUATION = re.compile(
    r"^\s*(?:FROM|WHERE|GROUP|ORDER|HAVING|LIMIT|OFFSET|JOIN|INNER|LEFT|RIGHT|FULL|CROSS|NATURAL|ON|USING|AND|"
    r"OR|NOT|UNION|INTERSECT|EXCEPT|AS|WHEN|THEN|ELSE|END|CASE|INTO|RETURNING|WINDOW|QUALIFY|FETCH|FOR)\b",
    re.IGNORECASE,
)
_PROSE_START = re.compile(
    r"^\s*(?:this|these|the|here|here's|note|explanation|it|i|we|you|assuming|please|that)\b[\s:,]+[A-Za-z]",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"^\s*[A-Z][a-z']+[,:]?\s+[a-z]")
_LINE_COMMENT = re.compile(r"--[^\n]*$")
_LAST_WORD = re.compile(r"[A-Za-z_]+$")
_CONTINUATION_WORDS = frozenset({
    "SELECT", "DISTINCT", "FROM", "WHERE", "AND", "OR", "NOT", "ON", "JOIN", "BY", "AS", "IN", "HAVING", "CASE",
    "WHEN", "THEN", "ELSE", "UNION", "ALL", "EXCEPT", "INTERSECT", "LIKE", "BETWEEN", "IS", "SET", "VALUES", "INTO",
    "WITH", "LIMIT", "OFFSET", "USING", "OVER", "PARTITION", "INNER", "LEFT", "RIGHT", "FULL", "OUTER", "CROSS",
    "NATURAL", "GROUP", "ORDER", "ESCAPE", "EXISTS", "ANY", "SOME",
})
_INLINE_QUERY = re.compile(r":\s*(?=(?:SELECT|WITH)\b)", re.IGNORECASE)


def extract_sql(text: str) -> str:
    """Model output -> bare SQL: drop ``` fences, a leading `SQL:`/`Answer:` label, trailing prose and `;`."""
    fenced = _FENCE.search(text)
    if fenced is not None:
        text = fenced.group("body")
    text = _LABEL.sub("", text, count=1).strip()
    if len(text) >= 2 and text[0] == text[-1] == "`" and _SQL_START.match(text[1:-1]):
        text = text[1:-1]
    lines = text.splitlines()
    start = next((index for index, line in enumerate(lines) if _SQL_START.match(line)), None)
    if start is None:
        inline = _INLINE_QUERY.search(text)  # "Here is the query: SELECT ..."
        return _strip_trailing(text[inline.end():] if inline else text)
    end = len(lines)
    for index in range(start + 1, len(lines)):
        line = lines[index]
        ends_here = _PROSE_START.match(line) or (not line.strip() and _next_is_prose(lines, index))
        # A prose-looking line only ends the statement where the SQL before it is complete: after
        # `SELECT id,` a line `note, title` is the select list going on, not "Note, ..." the sentence.
        if ends_here and not _expects_more("\n".join(lines[start:index])):
            end = index
            break
    return _strip_trailing("\n".join(lines[start:end]))


def looks_like_sql(text: str) -> bool:
    """Whether the text starts like a SQL statement (the model answered with a query, not only prose)."""
    return bool(_SQL_START.match(text))


def _next_is_prose(lines: list[str], index: int) -> bool:
    following = next((line for line in lines[index + 1:] if line.strip()), None)
    return following is None or _is_prose(following)


def _expects_more(sql: str) -> bool:
    """True when the text so far cannot end a statement: it ends with a comma, an open parenthesis, an
    operator or a keyword that needs an operand."""
    tail = _LINE_COMMENT.sub("", sql).rstrip()
    if not tail:
        return True
    if tail[-1] in ",(=<>+-/|%":
        return True
    last_word = _LAST_WORD.search(tail)
    return last_word is not None and last_word.group(0).upper() in _CONTINUATION_WORDS


def _is_prose(line: str) -> bool:
    """After a blank line, a sentence ("This query ...", "Explanation: ...") ends the statement."""
    return bool(_SENTENCE.match(line)) and not _SQL_START.match(line) and not _SQL_CONTINUATION.match(line)


def _strip_trailing(text: str) -> str:
    text = text.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def ends_inside_sql(text: str, query: str) -> bool:
    """Does the model's text end inside the extracted SQL (no closing fence or prose after it)? Only then can a
    stop at the token limit have cut the query short; a cut in the explanation after it costs nothing."""
    tail = _strip_trailing(text)
    return not query.strip() or tail.endswith(_strip_trailing(query))
