"""The MCP tools' work, shaped as MCP tool results.

`generate_sql` is `/v1/sql` through the one answer pipeline (the same caps, cache, check, candidates, accounting);
`check_sql` is the SQL check alone, for SQL an agent wrote itself; `list_dialects` names what `dialect` takes.

A tool that cannot answer returns a tool error (`isError: true`): its text starts with the error code the HTTP
routes would have answered (`invalid_sql: The generated SQL was rejected: ...`) and its structured content is the
same OpenAI-shaped error body, with `error.check` for a refused answer. Nothing that failed the check is ever in a
successful result.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from mcp_types import CallToolResult, TextContent

from gateway.errors import CapExceeded, GatewayError, InvalidRequest, ModelAsleep
from gateway.pipeline import AnswerPipeline
from gateway.request_record import RequestRecord
from gateway.routes.protocol import SqlResponseBody
from gateway.sql_check import SUPPORTED_DIALECTS, SqlPolicy, check_sql, dialect_label, in_menu_order
from gateway.state import AppState

logger = logging.getLogger("sqlgate.agents")


def _result(payload: dict[str, Any]) -> CallToolResult:
    # The spec asks for the structured content's JSON in a text block too, for clients that read only text.
    return CallToolResult(content=[TextContent(type="text", text=orjson.dumps(payload).decode())],
                          structured_content=payload)


def tool_error(state: AppState, record: RequestRecord, error: GatewayError) -> CallToolResult:
    """The refusal as a tool error, counted like the HTTP routes count theirs (the log line, metrics and trace see
    its code, and the request counts with the status the error would have had)."""
    record.error_code = error.code
    record.stream_error_status = error.status_code
    if isinstance(error, CapExceeded):
        state.metrics.rejected("cap")
    return CallToolResult(content=[TextContent(type="text", text=f"{error.code}: {error.message}")],
                          structured_content=error.body(), is_error=True)


def _internal_error(state: AppState, record: RequestRecord, tool: str) -> CallToolResult:
    logger.exception("tool %s failed", tool)
    return tool_error(state, record, GatewayError("The server had an error while processing your request."))


def _dialect(state: AppState, dialect: str | None) -> str:
    name = (dialect or state.settings.sql_dialect).strip().lower()
    if name not in SUPPORTED_DIALECTS:
        raise InvalidRequest(
            f"Unknown SQL dialect '{name[:40]}'. Supported: {', '.join(sorted(SUPPORTED_DIALECTS))}.",
            param="dialect", code="unsupported_dialect")
    return name


async def generate(state: AppState, record: RequestRecord, *, question: str, schema: str, dialect: str | None,
                   tables: list[str] | None = None) -> CallToolResult:
    """Question + CREATE TABLE statements -> one checked query, exactly as `POST /v1/sql` answers it."""
    started = time.perf_counter()
    pipeline = state.pipeline
    try:
        try:
            state.gate.check()
        except ModelAsleep:
            state.metrics.rejected("asleep")
            raise
        request = pipeline.prepare(question, schema, dialect, question_param="question", tables=tables)
        answer = await pipeline.answer(request, record)
        rejected = AnswerPipeline.refusal(answer)
        if rejected is not None:
            raise rejected
    except GatewayError as error:
        return tool_error(state, record, error)
    except Exception:
        return _internal_error(state, record, "generate_sql")
    body = SqlResponseBody.from_answer(answer, model=state.settings.model_id,
                                       latency_s=time.perf_counter() - started)
    return _result(body.model_dump(mode="json"))


def _readable(text: str, param: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"The {param} contains a lone UTF-16 surrogate (such as \\ud800), which is not text; "
                             "send valid Unicode.", param=param, code="invalid_request") from None


def check(state: AppState, record: RequestRecord, *, sql: str, schema: str, dialect: str | None) -> CallToolResult:
    """The check alone: `{"valid", "error_code", "check"}` with the check object of `/v1/sql` for `sql` as written
    (in `dialect`). A query that fails the check is a result (`valid: false`), not a tool error: the tool worked."""
    settings = state.settings
    try:
        _readable(sql, "sql")
        _readable(schema, "schema")
        name = _dialect(state, dialect)
        if not schema.strip():
            raise CapExceeded("No schema given: send the CREATE TABLE statements in 'schema'.", param="schema",
                              code="missing_schema")
        if len(schema) > settings.max_schema_chars:
            raise CapExceeded(f"The schema is {len(schema)} characters; the limit is {settings.max_schema_chars}.",
                              param="schema", code="schema_too_long")
    except GatewayError as error:
        return tool_error(state, record, error)
    try:
        result = check_sql(sql, schema=schema, dialect=name, policy=SqlPolicy(settings.sql_policy),
                           grounding=settings.sql_grounding, unverified=settings.sql_unverified,
                           expensive=settings.sql_expensive)
    except Exception:
        return _internal_error(state, record, "check_sql")
    checked = {**result.as_dict(), "query": sql, "dialect": name, "source_dialect": name}
    return _result({"valid": result.valid, "error_code": result.error_code, "check": checked})


def dialects(state: AppState) -> CallToolResult:
    """The dialects `dialect` takes (the web form's list, in its order) and this gateway's default."""
    names = in_menu_order(SUPPORTED_DIALECTS)
    return _result({"dialects": [{"name": name, "label": dialect_label(name)} for name in names],
                    "default": state.settings.sql_dialect})
