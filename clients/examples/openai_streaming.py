"""Streaming text to SQL through the openai SDK, pointed at the gateway: text arrives as the model writes it.

    export OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=sk-...
    python clients/examples/openai_streaming.py ["question" ["CREATE TABLE ..."]]

The gateway checks the SQL once it is complete: the last chunk carries the check in its extra `sql` field, and
a failed check arrives in the stream as an error, which the SDK raises (exit code non-zero).
"""

from __future__ import annotations

import os
import sys
import time

from openai import OpenAI

QUESTION = "Find all employees in the Engineering department with a salary above 80000."
SCHEMA = "CREATE TABLE employee (Employee_ID int, Name text, Department text, Salary real)"


def main() -> int:
    question = sys.argv[1] if len(sys.argv) > 1 else QUESTION
    schema = sys.argv[2] if len(sys.argv) > 2 else SCHEMA
    client = OpenAI()  # OPENAI_BASE_URL (the gateway's URL + /v1) and OPENAI_API_KEY
    model = os.environ.get("SQLGATE_MODEL") or client.models.list().data[0].id
    started = time.perf_counter()
    first_token_s: float | None = None
    parts: list[str] = []
    check: dict[str, object] = {}
    stream = client.completions.create(
        model=model,
        prompt=question,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"schema": schema},
    )
    for chunk in stream:
        for choice in chunk.choices:
            if choice.text:
                if first_token_s is None:
                    first_token_s = time.perf_counter() - started
                parts.append(choice.text)
                print(choice.text, end="", flush=True)
        check = (chunk.model_extra or {}).get("sql") or check
        if chunk.usage is not None:
            usage = chunk.usage
            print(f"\ntokens: {usage.prompt_tokens} in, {usage.completion_tokens} out", file=sys.stderr)
    print()
    if first_token_s is not None:
        print(f"first token after {first_token_s * 1000:.0f} ms, whole answer after "
              f"{(time.perf_counter() - started) * 1000:.0f} ms", file=sys.stderr)
    print(f"valid: {check.get('valid')}", file=sys.stderr)
    return 0 if "".join(parts).strip() and check.get("valid") else 1


if __name__ == "__main__":
    sys.exit(main())
