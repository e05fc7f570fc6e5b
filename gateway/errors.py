"""The one error shape, the exception tree that produces it, and every exception handler."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

logger = logging.getLogger("sqlgate.errors")


def printable(text: str) -> str:
    """`text` with anything UTF-8 cannot carry (a lone surrogate from a JSON `\\ud800` escape) replaced: an error
    that quotes the client's input must still be sendable."""
    return text.encode("utf-8", "replace").decode("utf-8")


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope; declared on routes so the OpenAPI spec tells the truth."""

    error: ErrorBody


class GatewayError(Exception):
    """Base of every error the gateway answers on purpose."""

    status_code = 500
    error_type = "server_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": printable(self.message), "type": self.error_type,
                                 "param": printable(self.param) if self.param is not None else None,
                                 "code": self.code}
        error.update(self.extra)
        return {"error": error}


class InvalidRequest(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class AuthenticationFailed(GatewayError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class NotFound(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class BodyTooLarge(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "body_too_large"


class RequestTimeout(GatewayError):
    """The client did not finish sending its request (headers and body) in time: answered by the HTTP server."""

    status_code = 408
    error_type = "invalid_request_error"
    code = "request_timeout"


class HeadersTooLarge(GatewayError):
    """The request's headers are over the server's cap: answered by the HTTP server, before auth."""

    status_code = 431
    error_type = "invalid_request_error"
    code = "headers_too_large"


class CapExceeded(GatewayError):
    """Input the model must not see: over a cap, empty, or missing its schema."""

    status_code = 422
    error_type = "invalid_request_error"
    code = "question_too_long"


class SqlRejected(GatewayError):
    status_code = 422
    error_type = "sql_check_error"
    code = "unsafe_sql"


class RateLimited(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    """vLLM answered something unusable (garbage, 5xx)."""

    status_code = 502
    error_type = "upstream_error"
    code = "upstream_bad_response"


class UpstreamUnavailable(UpstreamError):
    status_code = 503
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status_code = 504
    code = "upstream_timeout"


class ShuttingDown(GatewayError):
    """The grace period after a shutdown signal ended with the request unfinished; another replica can take it."""

    status_code = 503
    error_type = "server_error"
    code = "server_shutting_down"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"retry-after": "1"})


class ClientDisconnected(GatewayError):
    """The client closed the request before its answer was ready (nginx's 499; never sent, only logged)."""

    status_code = 499
    error_type = "invalid_request_error"
    code = "client_closed_request"


class ModelAsleep(GatewayError):
    """Outside business hours with the model stopped on schedule; Retry-After says when to come back."""

    status_code = 503
    error_type = "server_error"
    code = "model_asleep"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, headers={"retry-after": str(max(1, retry_after_s))})
        self.retry_after_s = max(1, retry_after_s)


class StoreUnavailable(GatewayError):
    """The durable store (SQLite file, PostgreSQL) could not take or give the data: nothing was kept."""

    status_code = 503
    error_type = "server_error"
    code = "store_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"retry-after": "1"})


class UpstreamRejected(GatewayError):
    """vLLM refused the request itself (4xx): the client's problem, passed on without upstream details."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "upstream_rejected"


def error_response(error: GatewayError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


STATUS_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "body_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
}


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "function-after", "union"})


def _describe_validation(exc: RequestValidationError) -> InvalidRequest:
    """The 400 for a body that failed validation: a readable message and the offending parameter, without echoing
    the input back."""
    errors = exc.errors()
    if not errors:
        return InvalidRequest("The request body is not valid.", code="invalid_request")
    first = errors[0]
    # Union members show up in locations as type names ("prompt.str"): keep only the field path.
    loc = [str(part) for part in first.get("loc", ())
           if part not in ("body", "query", "header", "path") and str(part) not in _TYPE_TAGS and "[" not in str(part)]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return InvalidRequest("The request body is not valid JSON.", code="invalid_json")
    msg = str(first.get("msg", "invalid value"))
    where = f" at '{param}'" if param else ""
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return InvalidRequest(f"Invalid request{where}: {msg}{more}.", param=param, code="invalid_request")


def _note(request: Request, code: str | None) -> None:
    """Put the error code on the request's record, for its log line, metrics and trace."""
    record = getattr(request.state, "record", None)
    if record is not None:
        record.error_code = code


def _count_rejection(request: Request, reason: str) -> None:
    """`sqlgate_rejected_requests_total{reason}` for refusals decided in the app (auth, rate limit and body size
    are counted by the middleware, which decides them)."""
    state = getattr(request.app.state, "sqlgate", None)
    if state is not None:
        state.metrics.rejected(reason)


def install_exception_handlers(app: FastAPI) -> None:
    """Every failure leaves the gateway as the one OpenAI-shaped body."""

    async def on_gateway_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GatewayError)
        _note(request, exc.code)
        if isinstance(exc, CapExceeded):
            _count_rejection(request, "cap")
        return error_response(exc)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        error = _describe_validation(exc)
        _note(request, error.code)
        _count_rejection(request, "validation")
        return error_response(error)

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        error_type, code = STATUS_TYPES.get(exc.status_code, ("invalid_request_error", None))
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        error = GatewayError(message, code=code, headers=exc.headers)
        error.status_code = exc.status_code
        error.error_type = error_type
        return error_response(error)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        _note(request, "internal_error")
        return error_response(GatewayError("The server had an error while processing your request."))

    app.add_exception_handler(GatewayError, on_gateway_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Malformed request",
        401: "Missing or wrong API key",
        413: "Body too large",
        422: "Input over a cap, or the generated SQL failed the check",
        429: "Rate limited",
        502: "Upstream answered garbage",
        503: "Upstream unavailable, or the model asleep outside business hours",
        504: "Upstream timed out",
    }.items()
}
