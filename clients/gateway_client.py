"""The gateway via the openai SDK: `/v1/completions` (the core route), `/v1/chat/completions`, `/v1/sql`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx2
import openai

from clients.connection import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_MODEL, DEFAULT_TIMEOUT_S, Connection
from clients.failures import GatewayFailure

Route = Literal["completions", "chat", "sql"]
ROUTES: tuple[Route, ...] = ("completions", "chat", "sql")
# The status an error would have had before the first byte, for errors that arrive inside a stream.
IN_STREAM_ERROR_STATUS = {"sql_check_error": 422, "invalid_request_error": 400, "server_error": 500}


@dataclass(frozen=True)
class Answer:
    """One generated query with the gateway's check object and the whole response body."""

    sql: str
    check: dict[str, Any]
    response: dict[str, Any]
    cache: str | None
    latency_s: float

    @property
    def valid(self) -> bool:
        return bool(self.check.get("valid"))


class SqlGatewayClient:
    """An `openai.AsyncOpenAI` pointed at the gateway, with the gateway's extra `schema` field filled in."""

    def __init__(
        self,
        connection: Connection,
        *,
        model: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = 2,
    ) -> None:
        self.connection = connection
        self._explicit_model = model
        self._model = model or DEFAULT_MODEL
        self._sdk = openai.AsyncOpenAI(
            base_url=connection.v1_url,
            # The SDK refuses to start without a key; a gateway with auth off needs none.
            api_key=connection.api_key or "no-key",
            timeout=httpx2.Timeout(timeout_s, connect=DEFAULT_CONNECT_TIMEOUT_S),
            max_retries=max_retries,
        )

    @property
    def model(self) -> str:
        return self._model

    async def __aenter__(self) -> SqlGatewayClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._sdk.close()

    async def models(self) -> list[str]:
        """The ids the gateway serves (GET /v1/models)."""
        page = await self._call(self._sdk.models.list())
        return [model.id for model in page.data]

    async def discover_model(self) -> str:
        """Use the gateway's own model id unless one was given explicitly."""
        if self._explicit_model is None:
            served = await self.models()
            if served:
                self._model = served[0]
        return self._model

    async def ask(
        self, question: str, schema: str, *, dialect: str | None = None, route: Route = "completions",
        tables: list[str] | None = None,
    ) -> Answer:
        """One question; raises `GatewayFailure` for any error answer, including SQL the check rejected. `tables`:
        pinned tables for a schema too big to send whole."""
        try:
            return await self._ask_once(question, schema, dialect, route, tables)
        except GatewayFailure as failure:
            # The default id may not be this gateway's: ask it once which model it serves, then retry.
            if failure.code != "model_not_found" or self._explicit_model is not None or route == "sql":
                raise
            before = self._model
            if await self.discover_model() == before:
                raise
            return await self._ask_once(question, schema, dialect, route, tables)

    async def _ask_once(self, question: str, schema: str, dialect: str | None, route: Route,
                        tables: list[str] | None = None) -> Answer:
        extra: dict[str, Any] = {"schema": schema}
        if dialect:
            extra["dialect"] = dialect
        if tables:
            extra["tables"] = tables
        started = time.perf_counter()
        http_response: httpx2.Response
        if route == "completions":
            raw = await self._call(
                self._sdk.completions.with_raw_response.create(
                    model=self._model, prompt=question, extra_body=extra
                )
            )
            http_response = raw.http_response
        elif route == "chat":
            raw_chat = await self._call(
                self._sdk.chat.completions.with_raw_response.create(
                    model=self._model, messages=[{"role": "user", "content": question}], extra_body=extra
                )
            )
            http_response = raw_chat.http_response
        else:
            http_response = await self._call(
                self._sdk.post("/sql", cast_to=httpx2.Response, body={"question": question, **extra})
            )
        latency = time.perf_counter() - started
        body = _json_body(http_response)
        sql, check = _sql_and_check(body, route)
        return Answer(
            sql=sql,
            check=check,
            response=body,
            cache=http_response.headers.get("x-sqlgate-cache"),
            latency_s=latency,
        )

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except openai.APIStatusError as exc:
            raise GatewayFailure.from_body(
                exc.status_code, exc.body, retry_after=exc.response.headers.get("retry-after")
            ) from exc
        except openai.APITimeoutError as exc:
            raise GatewayFailure(f"the gateway at {self.connection.root_url} did not answer in time") from exc
        except openai.APIConnectionError as exc:
            cause = exc.__cause__
            reason = f": {cause}" if cause is not None and str(cause) else ""
            raise GatewayFailure(f"cannot reach the gateway at {self.connection.root_url}{reason}") from exc
        except openai.APIError as exc:  # an error event inside a stream, after the 200 went out
            error_type = exc.body.get("type") if isinstance(exc.body, dict) else None
            status = IN_STREAM_ERROR_STATUS.get(str(error_type), 502)
            raise GatewayFailure.from_body(status, exc.body) from exc


def _json_body(response: httpx2.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise GatewayFailure(
            "the gateway answered with a body that is not JSON", status=response.status_code
        ) from exc
    if not isinstance(body, dict):
        raise GatewayFailure("the gateway answered with an unexpected JSON body", status=response.status_code)
    return body


def _sql_and_check(body: dict[str, Any], route: Route) -> tuple[str, dict[str, Any]]:
    try:
        if route == "sql":
            sql, check = body["sql"], body["check"]
        elif route == "chat":
            sql, check = body["choices"][0]["message"]["content"], body["sql"]
        else:
            sql, check = body["choices"][0]["text"], body["sql"]
    except (KeyError, IndexError, TypeError) as exc:
        raise GatewayFailure("the gateway's answer lacks the SQL or its check object", status=200) from exc
    if not isinstance(sql, str) or not isinstance(check, dict):
        raise GatewayFailure("the gateway's answer lacks the SQL or its check object", status=200)
    return sql, check
