"""Request and response models of the OpenAI-compatible routes plus the gateway's own."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gateway.answer import SqlAnswer

MAX_PINNED = 200
TABLES_HELP = ("Tables to always show the model (names as the schema writes them), when the schema is too big to "
               "send whole and the gateway's choice missed one")
TableName = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class StreamOptions(BaseModel):
    include_usage: bool = False


class OpenAIRequest(BaseModel):
    # OpenAI tools send many fields (temperature, top_p, max_tokens, user, ...). They are accepted and ignored:
    # generation parameters are pinned by the deployment's config file.
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    model: str | None = Field(None, max_length=256)
    sql_schema: str | None = Field(None, alias="schema", description="CREATE TABLE statements")
    context: str | None = Field(None, description="Alias of `schema`, as in the training data")
    dialect: str | None = Field(None, max_length=32, description="SQL dialect for the check (default sqlite)")
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="Only one choice is generated")
    tables: list[TableName] | None = Field(None, max_length=MAX_PINNED, description=TABLES_HELP)

    def schema_text(self) -> str | None:
        return self.sql_schema if self.sql_schema is not None else self.context


class CompletionRequest(OpenAIRequest):
    prompt: str | list[str] = Field(..., description="The natural-language question")
    echo: bool = False


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "\n".join(part.text or "" for part in self.content if part.type == "text")


class ChatRequest(OpenAIRequest):
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=64)


class SqlCheckModel(BaseModel):
    model_config = ConfigDict(extra="allow")
    valid: bool
    statement_type: str | None
    read_only: bool
    tables: list[str]
    columns: list[str]
    unknown_tables: list[str]
    unknown_columns: list[str]
    problems: list[dict[str, str]]
    dialect: str
    source_dialect: str | None = None
    query: str
    error_code: str | None = None
    repair: dict[str, Any] | None = None
    # How far the answer was verified (docs/contract.md): compiled by an engine, names checked only, or neither.
    verified: Literal["compiled", "grounded", "unverified"] = "unverified"
    verified_reason: str | None = None
    schema_scope: dict[str, Any] | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    logprobs: None = None
    finish_reason: str | None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    sql: SqlCheckModel


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None


class ChatResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    sql: SqlCheckModel


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "sqlgate"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class SqlRequestBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    question: str = Field(..., description="The natural-language question")
    sql_schema: str = Field(..., alias="schema", description="CREATE TABLE statements")
    dialect: str | None = Field(None, max_length=32)
    tables: list[TableName] | None = Field(None, max_length=MAX_PINNED, description=TABLES_HELP)


class SqlResponseBody(BaseModel):
    sql: str
    valid: bool
    finish_reason: str
    check: SqlCheckModel
    cached: bool
    usage: Usage
    model: str
    latency_ms: float

    @classmethod
    def from_answer(cls, answer: SqlAnswer, *, model: str, latency_s: float) -> SqlResponseBody:
        """The `/v1/sql` answer (also the MCP tool `generate_sql`'s result) for a checked answer."""
        return cls(sql=answer.query, valid=answer.valid, finish_reason=answer.finish_reason or "stop",
                   check=SqlCheckModel.model_validate(answer.check), cached=answer.cached,
                   usage=Usage.model_validate(answer.usage), model=model, latency_ms=round(latency_s * 1000, 3))


class GenerateRequestBody(BaseModel):
    """The seed deployment's `/generate` body, kept for its existing callers."""

    question: str
    context: str


class GenerateResponseBody(BaseModel):
    sql: str
    finish_reason: str
