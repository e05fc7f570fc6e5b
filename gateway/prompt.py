"""The model's exact training prompt. Any drift from this text costs accuracy: tests pin it byte for byte.

The schema part is the schema model's `prompt_text`: the text itself when it holds only table and view
definitions (the training data's shape), else those definitions as written, without a dump's SET, GRANT, OWNER,
index and sequence statements, which define nothing the question can ask about."""

from __future__ import annotations

from gateway.schema_model import read_schema

# Bump when the rendered text changes, so cached answers made with the old prompt are never served.
TEMPLATE_VERSION = "sql-create-context-chatml-v1"

SYSTEM_PROMPT = (
    "You are an expert SQL assistant. Given a natural language question and the relevant database schema, "
    "write a single correct SQL query that answers the question. Return only the SQL query with no explanation."
)


def user_message(question: str, schema: str) -> str:
    tables = read_schema(schema).prompt_text
    return f"Given the following SQL tables:\n\n{tables.strip()}\n\nWrite a SQL query to answer: {question.strip()}"


def render_prompt(question: str, schema: str) -> str:
    """The Qwen2.5 ChatML rendering of the two training messages, generation prompt added."""
    return (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\n{user_message(question, schema)}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
