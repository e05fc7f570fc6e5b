"""All gateway settings in one validated object, read once at start-up."""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gateway.replicas import parse_upstream_urls
from gateway.schedule import BusinessHours, parse_business_hours, parse_timezone
from gateway.schema_model import MAX_SCHEMA_CHARS
from gateway.sql_check.result import SUPPORTED_DIALECTS

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_GENERATION_CONFIG = PACKAGE_DIR / "generation.toml"

# Keys that are obviously examples: refusing them stops a copied README line from becoming production auth.
PLACEHOLDER_KEYS = frozenset({"changeme", "change-me", "secret", "password", "sk-xxx", "your-key", "test"})
MIN_KEY_LENGTH = 16
# `name=key` is split only when the name is plain and what follows is itself a whole key: a base64 key carries `=`
# (padding, or inside) and must never be cut into a "name" and a shorter key.
KEY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class CandidateSampling(BaseModel):
    """How the candidate step samples when the greedy answer fails the check (one call, `n` = the k setting)."""

    model_config = {"extra": "forbid", "frozen": True}

    temperature: float = Field(0.7, gt=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    top_k: int = -1
    seed: int = 1234  # fixed: the same failing request draws the same candidates, so answers stay cacheable

    def as_upstream_fields(self, n: int) -> dict[str, Any]:
        return {"n": n, "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                "seed": self.seed}


class GenerationParams(BaseModel):
    """Decoding parameters pinned by the deployment, never by a request."""

    model_config = {"extra": "forbid", "frozen": True}

    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = -1
    repetition_penalty: float = Field(1.0, gt=0.0)
    max_tokens: int = Field(256, ge=1, le=4096)
    stop: tuple[str, ...] = ("<|im_end|>",)
    seed: int | None = 0
    candidates: CandidateSampling = CandidateSampling()

    def as_upstream_fields(self) -> dict[str, Any]:
        """The request fields that pin decoding on vLLM's OpenAI routes."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "repetition_penalty": self.repetition_penalty,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "seed": self.seed,
        }


def load_generation_params(path: Path) -> GenerationParams:
    """Read the generation config file; a broken file stops start-up with its path in the message."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read generation config {path}: {exc}") from exc
    return GenerationParams.model_validate(data)


@dataclass(frozen=True)
class ApiKey:
    """One accepted key, known only by its SHA-256 digest and a display name for logs."""

    name: str
    digest: bytes


def digest_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def split_key_entry(entry: str) -> tuple[str | None, str]:
    """(name, key) of one SQLGATE_API_KEYS entry: `name=key` only when the name is plain (letters, digits, `_.-`,
    at most 64) and the rest is at least MIN_KEY_LENGTH characters; otherwise the whole entry is the key."""
    name, sep, key = entry.partition("=")
    if sep and KEY_NAME.fullmatch(name) and len(key) >= MIN_KEY_LENGTH:
        return name, key
    return None, entry


class Settings(BaseSettings):
    """Every knob of the gateway. Environment variables use the prefix SQLGATE_."""

    model_config = SettingsConfigDict(
        env_prefix="SQLGATE_", extra="ignore", frozen=True, toml_file=None, validate_default=True
    )

    # Upstream (vLLM).
    upstream_url: str = "http://127.0.0.1:8001"
    upstream_model: str = "qwen2.5-1.5b-sql"
    upstream_api_key: SecretStr | None = None
    model_id: str = "qwen2.5-1.5b-sql"
    upstream_connect_timeout_s: float = Field(2.0, gt=0)
    upstream_read_timeout_s: float = Field(60.0, gt=0)
    upstream_pool_size: int = Field(256, ge=1)
    upstream_retry_attempts: int = Field(3, ge=1, le=10)
    upstream_retry_budget_s: float = Field(8.0, ge=0)
    ready_timeout_s: float = Field(10.0, gt=0)
    ready_cache_s: float = Field(5.0, ge=0)
    # The gateway probes vLLM on its own this often, so `sqlgate_upstream_ready` (and its alert) stays true to the
    # fact even when nobody calls /ready; 0 turns the background probe off.
    ready_interval_s: float = Field(15.0, ge=0)
    # With several upstream URLs: how often a replica marked down (refused or lost a connection, failed a probe)
    # is probed to see whether it generates again.
    upstream_probe_back_s: float = Field(2.0, gt=0)

    # Auth and limits.
    auth_enabled: bool = True
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    api_key_file: Path | None = None
    rate_limit_per_minute: int = Field(30, ge=0)
    redis_url: SecretStr | None = None
    max_question_chars: int = Field(500, ge=1)
    # A whole database's DDL (a pg_dump of ~2,000 tables); above the upper bound start-up refuses.
    max_schema_chars: int = Field(1_000_000, ge=1, le=MAX_SCHEMA_CHARS)  # over it: 422 schema_too_long, no cut
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    # Tokens of the rendered prompt the model may see (its training length); a bigger schema is pruned to the
    # tables the question needs (gateway/scope). Never above the served context minus the answer's tokens.
    prompt_budget_tokens: int = Field(512, ge=64)
    max_model_len: int = Field(1024, ge=64)
    tokenizer: Path | None = None

    # Generation and SQL policy.
    generation_config: Path = DEFAULT_GENERATION_CONFIG
    sql_policy: Literal["read_only", "allow_writes"] = "read_only"
    sql_dialect: str = "sqlite"
    # advisory: tables and columns outside the request's schema are reported, not refused (partial schemas).
    sql_grounding: Literal["strict", "advisory"] = "strict"
    # SQL that reads a part of the schema text the check could not read: refuse (422 unverifiable_sql) or allow
    # (answered, with a warning and check.verified = "unverified").
    sql_unverified: Literal["refuse", "allow"] = "refuse"
    # SQL that only asks for huge output or unbounded work (docs/sql-guard.md): refuse (422 expensive_sql) or allow.
    sql_expensive: Literal["refuse", "allow"] = "refuse"
    # The candidate step: k samples in one call when the greedy answer fails the check; 0 turns it off.
    sql_candidates: int = Field(8, ge=0, le=16)
    sql_candidate_budget_s: float = Field(60.0, gt=0)
    # sample: free samples; grammar: samples constrained to SQL over the request's schema (structured outputs).
    sql_candidate_strategy: Literal["sample", "grammar"] = "grammar"
    # on_failure: sample only when the greedy answer fails the check; always: sample next to every greedy call and
    # vote (agreement = confidence). The launcher picks each target's measured default (launch/target_defaults.py).
    sql_candidates_policy: Literal["on_failure", "always"] = "on_failure"
    # An answer fewer than this share of candidates agree with is refused as low_confidence (unset: never).
    sql_min_agreement: float | None = Field(None, gt=0.0, le=1.0)
    # A second OpenAI-compatible upstream asked only when agreement is below SQLGATE_SQL_MIN_AGREEMENT.
    escalation_url: str | None = None
    escalation_model: str | None = None
    escalation_api_key: SecretStr | None = None

    # The dialect step's target engines: scratch databases where a transpiled answer is compiled (temporary tables,
    # PREPARE, ROLLBACK) before it leaves; unset: PostgreSQL / MySQL answers are `target_verified: "translation"`.
    check_postgres_url: SecretStr | None = None
    check_mysql_url: SecretStr | None = None
    # Per check: pool wait, connect and statement timeouts, and the pipeline's deadline for the whole check.
    check_timeout_s: float = Field(2.0, gt=0, le=30)
    check_pool_size: int = Field(2, ge=1, le=64)

    # Cache.
    cache_enabled: bool = True
    cache_ttl_seconds: int = Field(86400, ge=1)
    cache_max_entries: int = Field(2048, ge=1)
    # A refusal from a complete vote is kept this long (0: never); one the upstream caused is never kept.
    cache_refusal_ttl_seconds: int = Field(300, ge=0)

    # The durable store (feedback, verified queries, the answers they name): sqlite:///PATH or postgresql://...;
    # unset: RUN_DIR/sqlgate.db. Unrated answers are deleted after answer_retention_days (0: kept).
    database_url: SecretStr | None = None
    run_dir: Path = Path(".run")
    memory_enabled: bool = True  # answer from verified queries (feedback is kept either way)
    answer_retention_days: int = Field(30, ge=0)

    # Business hours: outside them the generation routes answer 503 model_asleep (unset: always open).
    business_hours: str | None = None
    timezone: str = "UTC"
    # Outside hours, a request asks the scheduler (launch/scheduler.py) to start vLLM, through this file.
    wake_on_request: bool = False
    wake_file: Path = Path(".run/wake")
    # The Retry-After a woken model gets: the bound on a cold start the scheduler waits for.
    wake_cold_start_s: int = Field(180, ge=1, le=3600)

    # Observability. The Langfuse SDK's own variables count too; the SQLGATE_ ones win when both are set (the
    # first name of each alias list is looked up first).
    langfuse_public_key: str | None = Field(
        None, validation_alias=AliasChoices("sqlgate_langfuse_public_key", "langfuse_public_key"))
    langfuse_secret_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("sqlgate_langfuse_secret_key", "langfuse_secret_key"))
    langfuse_base_url: str | None = Field(
        None, validation_alias=AliasChoices("sqlgate_langfuse_base_url",
                                            "langfuse_base_url", "langfuse_host"))
    trace_redact_question: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False

    # Serving (used by `python -m gateway` and the launcher).
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1)
    shutdown_grace_s: float = Field(20.0, ge=0)

    # Who may read /docs, /redoc and /openapi.json: `key` (an API key, like /v1), `public`, or `off` (not served).
    docs_access: Literal["key", "public", "off"] = "key"

    config_file: Path | None = None

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("sql_dialect")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        # A typo here would otherwise start fine and then answer every request 400, blaming the client's `dialect`.
        dialect = value.strip().lower()
        if dialect not in SUPPORTED_DIALECTS:
            raise ValueError(f"SQLGATE_SQL_DIALECT {value[:40]!r} is not one of "
                             f"{', '.join(sorted(SUPPORTED_DIALECTS))}")
        return dialect

    @field_validator("upstream_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        # One URL or several, comma-separated (replicas); each checked and without its trailing slash.
        return ",".join(parse_upstream_urls(value))

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.auth_enabled and not self.api_key_entries():
            raise ValueError(
                "auth is on but no API keys are configured: set SQLGATE_API_KEYS or SQLGATE_API_KEY_FILE "
                "(or SQLGATE_AUTH_ENABLED=false for a local experiment)"
            )
        for key in self.api_keys:
            raw = split_key_entry(key.get_secret_value())[1]
            if raw.lower() in PLACEHOLDER_KEYS or len(raw) < MIN_KEY_LENGTH:
                raise ValueError(
                    f"an API key is a placeholder or shorter than {MIN_KEY_LENGTH} characters; "
                    "generate one with: python -c 'import secrets; print(\"sk-\" + secrets.token_urlsafe(24))'"
                )
        # Half a Langfuse configuration is a mistake to report, not a reason to run silently without traces.
        if self.langfuse_public_key and not self.langfuse_secret_key:
            raise ValueError("SQLGATE_LANGFUSE_PUBLIC_KEY is set without SQLGATE_LANGFUSE_SECRET_KEY")
        if self.langfuse_secret_key and not self.langfuse_public_key:
            raise ValueError("SQLGATE_LANGFUSE_SECRET_KEY is set without SQLGATE_LANGFUSE_PUBLIC_KEY")
        if self.escalation_url and not self.escalation_model:
            raise ValueError("SQLGATE_ESCALATION_URL is set without SQLGATE_ESCALATION_MODEL (the model it serves)")
        if self.escalation_url and self.sql_min_agreement is None:
            raise ValueError("SQLGATE_ESCALATION_URL is asked only below SQLGATE_SQL_MIN_AGREEMENT: set that too")
        if self.escalation_url and self.sql_candidates < 2:
            raise ValueError("SQLGATE_ESCALATION_URL needs the candidate step (SQLGATE_SQL_CANDIDATES >= 2): "
                             "without a vote there is no agreement to fall below")
        if not self.database().startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("SQLGATE_DATABASE_URL must be sqlite:///PATH or postgresql://USER@HOST/DATABASE")
        load_generation_params(self.generation_config)
        self.business_schedule()  # a bad zone or hours string stops start-up here, naming the setting
        return self

    def database(self) -> str:
        """The store's URL: SQLGATE_DATABASE_URL, else a SQLite file in the run folder."""
        if self.database_url is not None:
            return self.database_url.get_secret_value().strip()
        return f"sqlite:///{self.run_dir / 'sqlgate.db'}"

    def business_schedule(self) -> BusinessHours | None:
        """The parsed business hours in SQLGATE_TIMEZONE, None when unset (always open)."""
        zone = parse_timezone(self.timezone)
        if not self.business_hours or not self.business_hours.strip():
            return None
        return parse_business_hours(self.business_hours, zone)

    def api_key_entries(self) -> tuple[ApiKey, ...]:
        """Accepted keys as (name, digest): `name=key` entries keep their name, bare keys get a digest prefix."""
        entries: list[ApiKey] = []
        for secret in self.api_keys:
            name, key = split_key_entry(secret.get_secret_value())
            digest = digest_key(key)
            entries.append(ApiKey(name=name or f"key-{digest.hex()[:8]}", digest=digest))
        if self.api_key_file is not None:
            entries.extend(_read_key_file(self.api_key_file))
        return tuple(entries)

    def generation(self) -> GenerationParams:
        return load_generation_params(self.generation_config)

    @property
    def tracing_enabled(self) -> bool:
        return bool(self.langfuse_public_key and self.langfuse_secret_key)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments beat the environment, which beats the optional TOML file named by
        # SQLGATE_CONFIG_FILE.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_path = _config_file_from(init_settings, env_settings)
        if config_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_path))
        return tuple(sources)


def _config_file_from(*sources: PydanticBaseSettingsSource) -> Path | None:
    for source in sources:
        value = source().get("config_file")
        if value:
            path = Path(str(value))
            if not path.is_file():
                raise ValueError(f"SQLGATE_CONFIG_FILE {path} does not exist")
            return path
    return None


def _read_key_file(path: Path) -> list[ApiKey]:
    """Lines `name:sha256hex` (or a bare hex digest); blank lines and `#` comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read SQLGATE_API_KEY_FILE {path}: {exc.strerror}") from exc
    entries = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, hex_digest = line.rpartition(":")
        try:
            digest = bytes.fromhex(hex_digest.strip())
        except ValueError:
            digest = b""
        if len(digest) != hashlib.sha256().digest_size:
            raise ValueError(f"{path}:{number}: expected `name:<64 hex chars of SHA-256>`")
        entries.append(ApiKey(name=name.strip() if sep else f"key-{digest.hex()[:8]}", digest=digest))
    return entries
