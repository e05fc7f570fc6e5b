"""What can go wrong talking to the gateway, as one exception with an exit code and a one-line message."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    SQL_REJECTED = 3
    AUTH = 4
    RATE_LIMITED = 5
    UPSTREAM = 6


class UsageError(Exception):
    """Bad command-line input; printed as one line, exit code 2."""


class GatewayFailure(Exception):
    """A gateway error response (OpenAI-shaped body) or a network failure (`status` is None)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        check: dict[str, Any] | None = None,
        retry_after: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())
        self.status = status
        self.error_type = error_type
        self.code = code
        self.param = param
        self.check = check
        self.retry_after = retry_after
        self.body = body

    @classmethod
    def from_body(cls, status: int, body: object, retry_after: str | None = None) -> GatewayFailure:
        """Build from an error body, whether the whole `{"error": {...}}` or just its inside."""
        error = body.get("error", body) if isinstance(body, dict) else None
        if not isinstance(error, dict):
            text = str(body).strip() if body else ""
            message = text[:200] if text else f"HTTP {status} with no error body"
            return cls(message, status=status, retry_after=retry_after)
        check = error.get("check")
        return cls(
            str(error.get("message") or f"HTTP {status}"),
            status=status,
            error_type=_str_or_none(error.get("type")),
            code=_str_or_none(error.get("code")),
            param=_str_or_none(error.get("param")),
            check=check if isinstance(check, dict) else None,
            retry_after=retry_after,
            body={"error": error},
        )

    @property
    def sql_rejected(self) -> bool:
        return self.status == 422 and (
            self.error_type == "sql_check_error" or self.code in ("unsafe_sql", "invalid_sql")
        )

    @property
    def exit_code(self) -> ExitCode:
        if self.status is None or self.status >= 500:
            return ExitCode.UPSTREAM
        if self.status in (401, 403):
            return ExitCode.AUTH
        if self.status == 429:
            return ExitCode.RATE_LIMITED
        if self.sql_rejected:
            return ExitCode.SQL_REJECTED
        if 400 <= self.status < 500:
            return ExitCode.USAGE
        return ExitCode.UPSTREAM

    @property
    def final(self) -> bool:
        """True when asking again cannot change the answer (the request or the model's SQL is the problem)."""
        return self.status in (400, 413, 422)

    def one_line(self) -> str:
        where = ", ".join(part for part in (self.error_type, self.code) if part)
        if self.status is None:
            return self.message
        suffix = f" (HTTP {self.status}{', ' + where if where else ''})"
        hint = ""
        if self.status == 429 and self.retry_after:
            hint = f"; retry after {self.retry_after} s"
        return f"{self.message}{hint}{suffix}"


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
