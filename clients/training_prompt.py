"""The model's exact training prompt, for sending questions straight to vLLM (`sqlgate bench --target vllm`).

A copy of the gateway's template (clients share no code with the gateway); a test pins the two byte for byte.
Source: samrat-kar/llm-fine-tune `src/dataset_utils.py`, rendered with Qwen2.5's ChatML template.
"""

from __future__ import annotations

SYSTEM_PROMPT = (
    "You are an expert SQL assistant. "
    "Given a natural language question and the relevant database schema, "
    "write a single correct SQL query that answers the question. "
    "Return only the SQL query with no explanation."
)


def user_message(question: str, schema: str) -> str:
    return (
        f"Given the following SQL tables:\n\n"
        f"{schema.strip()}\n\n"
        f"Write a SQL query to answer: {question.strip()}"
    )


def render_prompt(question: str, schema: str) -> str:
    """The Qwen2.5 ChatML rendering of the system and user messages, generation prompt added."""
    return (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\n{user_message(question, schema)}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
