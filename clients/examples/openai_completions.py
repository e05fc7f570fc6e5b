"""Text to SQL through the openai SDK's completions API, pointed at the gateway.

    export OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=sk-...
    python clients/examples/openai_completions.py ["question" ["CREATE TABLE ..."]]

The question is the prompt; the schema travels in the gateway's extra `schema` field. The answer's `text` is
the SQL and its extra `sql` field is the gateway's check. Exits 1 when the SQL is not valid, and with the
SDK's exception (non-zero) on any error.
"""

from __future__ import annotations

import json
import os
import sys

from openai import OpenAI

QUESTION = "How many singers do we have?"
SCHEMA = "CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text)"


def main() -> int:
    question = sys.argv[1] if len(sys.argv) > 1 else QUESTION
    schema = sys.argv[2] if len(sys.argv) > 2 else SCHEMA
    client = OpenAI()  # OPENAI_BASE_URL (the gateway's URL + /v1) and OPENAI_API_KEY
    model = os.environ.get("SQLGATE_MODEL") or client.models.list().data[0].id
    completion = client.completions.create(model=model, prompt=question, extra_body={"schema": schema})
    sql = completion.choices[0].text
    check = (completion.model_extra or {}).get("sql") or {}
    print(sql)
    print(json.dumps(check, indent=2), file=sys.stderr)
    if completion.usage is not None:
        print(f"tokens: {completion.usage.prompt_tokens} in, {completion.usage.completion_tokens} out",
              file=sys.stderr)
    return 0 if sql.strip() and check.get("valid") else 1


if __name__ == "__main__":
    sys.exit(main())
