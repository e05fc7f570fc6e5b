"""Text to SQL through the openai SDK's chat API, pointed at the gateway.

    export OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=sk-...
    python clients/examples/openai_chat.py ["question" ["CREATE TABLE ..."]]

The last user message is the question; the schema goes in the extra `schema` field. The gateway renders the
model's own training prompt, so a system message of yours is not needed (and not used).
"""

from __future__ import annotations

import os
import sys

from openai import OpenAI

QUESTION = "List each student's name and the dorm they live in."
SCHEMA = (
    "CREATE TABLE student (StuID int, Fname text, LName text) "
    "CREATE TABLE lives_in (stuid int, dormid int) "
    "CREATE TABLE dorm (dormid int, dorm_name text)"
)


def main() -> int:
    question = sys.argv[1] if len(sys.argv) > 1 else QUESTION
    schema = sys.argv[2] if len(sys.argv) > 2 else SCHEMA
    client = OpenAI()  # OPENAI_BASE_URL (the gateway's URL + /v1) and OPENAI_API_KEY
    model = os.environ.get("SQLGATE_MODEL") or client.models.list().data[0].id
    chat = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        extra_body={"schema": schema},
    )
    sql = chat.choices[0].message.content or ""
    check = (chat.model_extra or {}).get("sql") or {}
    print(sql)
    print(f"valid: {check.get('valid')}, read-only: {check.get('read_only')}, tables: {check.get('tables')}",
          file=sys.stderr)
    return 0 if sql.strip() and check.get("valid") else 1


if __name__ == "__main__":
    sys.exit(main())
