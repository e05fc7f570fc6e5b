"""The grammar candidate strategy through real vLLM on CPU: the `structured_outputs` field the gateway sends is
really applied (FACTS.md: vLLM ignores an unknown field silently), and the gateway's candidate call carries it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from gateway.pipeline.candidates import candidate_fields
from gateway.settings import DEFAULT_GENERATION_CONFIG, load_generation_params
from gateway.sql_check.grammar import KEYWORDS
from launch.tiny_model import SINGER_EXAMPLE, training_prompt

pytestmark = pytest.mark.e2e

# A question the tiny model was never taught: unconstrained, it answers with whatever its random weights like.
UNTAUGHT = "Write a short poem about the sea and the wind, in French."
SCHEMA = SINGER_EXAMPLE["context"]
SCHEMA_WORDS = {"singer", "singer_id", "name", "country", "song_name"}
WORD = re.compile(r"'[^']*'|\"[^\"]*\"|[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?:\.[0-9]+)?|<=|>=|!=|<>|==|\|\||[,()*=<>.+\-/%;]"
                  r"|\s+")


def in_grammar_vocabulary(text: str) -> bool:
    """Starts with SELECT or WITH, and every word is a keyword, a schema name, an alias like T1, a literal or
    punctuation: what gateway/sql_check/grammar.py allows, restated independently of it."""
    if not re.match(r"\s*(SELECT|WITH)\b", text, flags=re.IGNORECASE):
        return False
    allowed = {word.lower() for word in KEYWORDS} | SCHEMA_WORDS
    position = 0
    while position < len(text):
        match = WORD.match(text, position)
        if match is None:
            return False
        word = match.group()
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", word) and word.lower() not in allowed \
                and not re.fullmatch(r"[Tt][0-9]{1,2}", word):
            return False
        position = match.end()
    return True


def sample(vllm_server: Any, fields: dict[str, Any]) -> list[str]:
    payload = {"model": vllm_server.model, "prompt": training_prompt(UNTAUGHT, SCHEMA), **fields,
               "max_tokens": 24}
    response = httpx.post(vllm_server.base_url + "/v1/completions", json=payload, timeout=120)
    response.raise_for_status()
    return [choice["text"] for choice in response.json()["choices"]]


def test_vllm_applies_the_grammar_the_candidate_step_sends(vllm_server: Any) -> None:
    generation = load_generation_params(DEFAULT_GENERATION_CONFIG)
    base = {**generation.as_upstream_fields(), **generation.candidates.as_upstream_fields(4)}
    free = sample(vllm_server, candidate_fields(base, "sample", SCHEMA))
    constrained = sample(vllm_server, candidate_fields(base, "grammar", SCHEMA))
    # Without the constraint the untaught model strays outside the vocabulary (else this test could not fail) ...
    assert len(free) == 4 and not all(in_grammar_vocabulary(text) for text in free), free
    # ... with it, every one of the k samples stays inside: vLLM read the field and enforced the grammar.
    assert len(constrained) == 4 and all(in_grammar_vocabulary(text) for text in constrained), constrained
