"""What-if: the gateway with the hot-path changes docs/benchmarks.md proposes, applied at run time so the overhead
benchmark can measure their gain in the same run without editing gateway files. Once the lead has applied them in
the gateway itself, each patch below finds nothing left to change and this equals the plain gateway.

1. `gateway/deps.py`: `get_state`/`get_record` as `async def` (FastAPI runs plain `def` dependencies in a worker
   thread: two thread hand-offs per request).
2. `gateway/sql_check.py`: `canonical_schema` memoised (`functools.lru_cache`), as `_parse_schema_cached` already is:
   it tokenises the whole schema with sqlglot on every request, cache on or off.
3. `gateway/limits.py`: `InputCaps.check_prompt` bounds the prompt's tokens by the sum of its pieces (memoised
   token counts of the template head and of the schema, the question's UTF-8 byte length, which byte-level BPE never
   exceeds) and runs the exact full tokenisation only when that bound passes the budget.

    python -m benchmarks.gateway_proposals --port 8000     (SQLGATE_* settings as for `python -m gateway`)
"""

from __future__ import annotations

import argparse
import functools
import inspect
import sys
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Request

import gateway.deps
import gateway.limits
import gateway.sql_check
import gateway.sql_service
from gateway.prompt import render_prompt
from gateway.request_record import RequestRecord

SCHEMA_INTRO = "Given the following SQL tables:\n\n"
QUESTION_INTRO = "\n\nWrite a SQL query to answer: "
# Each join of separately tokenised pieces can at most save a merge, never add a token; a small margin per
# boundary keeps the estimate an upper bound even so.
BOUNDARY_MARGIN_TOKENS = 2


def _async_dependencies() -> None:
    if inspect.iscoroutinefunction(gateway.deps.get_state):
        return

    async def get_state(request: Request) -> Any:
        return request.app.state.sqlgate

    async def get_record(request: Request) -> RequestRecord:
        record: RequestRecord = request.state.record
        return record

    gateway.deps.get_state = get_state  # type: ignore[assignment]
    gateway.deps.get_record = get_record  # type: ignore[assignment]
    gateway.deps.State = Annotated[Any, Depends(get_state)]  # type: ignore[misc]
    gateway.deps.Record = Annotated[RequestRecord, Depends(get_record)]  # type: ignore[misc]


def _memoised_canonical_schema() -> None:
    if hasattr(gateway.sql_check.canonical_schema, "cache_info"):
        return
    memoised = functools.lru_cache(maxsize=256)(gateway.sql_check.canonical_schema)
    gateway.sql_check.canonical_schema = memoised
    gateway.sql_service.canonical_schema = memoised  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=1024)
def _memoised_count(tokenizer_id: int, text: str) -> int:
    return len(_TOKENIZERS[tokenizer_id].encode(text, add_special_tokens=False).ids)


_TOKENIZERS: dict[int, Any] = {}


def _count(tokenizer: Any, text: str) -> int:
    _TOKENIZERS[id(tokenizer)] = tokenizer
    return _memoised_count(id(tokenizer), text)


def estimated_prompt_tokens(tokenizer: Any, prompt: str) -> int | None:
    """An upper bound of the prompt's token count from its pieces; None when the prompt is not shaped like the
    training prompt."""
    head, found_schema, rest = prompt.partition(SCHEMA_INTRO)
    schema, found_question, tail = rest.partition(QUESTION_INTRO)
    if not (found_schema and found_question):
        return None
    return (_count(tokenizer, head + found_schema) + _count(tokenizer, schema)
            + len((found_question + tail).encode("utf-8")) + 2 * BOUNDARY_MARGIN_TOKENS)


def _estimating_check_prompt() -> None:
    original = gateway.limits.InputCaps.check_prompt
    if getattr(original, "estimates_first", False):
        return

    def check_prompt(self: gateway.limits.InputCaps, prompt: str, *, param: str) -> int | None:
        budget = self.max_model_len - self.max_new_tokens
        estimate = estimated_prompt_tokens(self.tokenizer, prompt)
        if estimate is not None and estimate <= budget:
            return None
        return original(self, prompt, param=param)

    check_prompt.estimates_first = True  # type: ignore[attr-defined]
    gateway.limits.InputCaps.check_prompt = check_prompt  # type: ignore[method-assign]


def apply() -> None:
    """Apply the three proposals; call before `gateway.app` is imported (the routes bind the dependencies)."""
    if "gateway.app" in sys.modules and not inspect.iscoroutinefunction(gateway.deps.get_state):
        raise RuntimeError("apply() must run before gateway.app is imported")
    _async_dependencies()
    _memoised_canonical_schema()
    _estimating_check_prompt()


def create_app() -> FastAPI:
    apply()
    from gateway.app import create_app as create_gateway_app

    return create_gateway_app()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway_proposals")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run("benchmarks.gateway_proposals:create_app", factory=True, host=args.host, port=args.port,
                access_log=False, log_level="info")
    return 0


def _self_check() -> None:
    """The estimate never undercounts on the benchmark prompts (run by the smoke test)."""
    from benchmarks.prompts import BENCH_PROMPTS

    tokenizer = gateway.limits.load_tokenizer(None)
    for prompt in BENCH_PROMPTS:
        rendered = render_prompt(prompt.question, prompt.schema)
        exact = len(tokenizer.encode(rendered, add_special_tokens=False).ids)
        estimate = estimated_prompt_tokens(tokenizer, rendered)
        assert estimate is not None and estimate >= exact, (prompt.question, estimate, exact)


if __name__ == "__main__":
    sys.exit(main())
