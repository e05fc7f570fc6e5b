"""Where the question and the schema are in a conversation-shaped request (chat messages, Responses input)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import CapExceeded
from gateway.sql_check import create_table_statements, find_create_tables

# Roles whose text may carry the CREATE TABLE statements when the request has no `schema` field.
SCHEMA_ROLES = frozenset({"system", "developer", "user"})


def question_and_schema(messages: Sequence[tuple[str, str]], schema: str | None, *, param: str
                        ) -> tuple[str, str]:
    """The last user message is the question; the schema is `schema` or the CREATE TABLEs found in the messages.

    `messages` are `(role, text)` pairs in order; `param` names the field a missing question is reported on."""
    users = [text for role, text in messages if role == "user"]
    if not users:
        raise CapExceeded("The messages hold no user message with a question.", param=param, code="empty_question")
    question = users[-1]
    if schema is None:
        schema = find_create_tables("\n".join(text for role, text in messages if role in SCHEMA_ROLES))
        # The schema pasted into the question itself must not reach the prompt twice.
        question = remove_create_tables(question)
    return question, schema


def remove_create_tables(text: str) -> str:
    for statement in create_table_statements(text):
        text = text.replace(statement, " ")
    return " ".join(text.split())
