"""Every panel of the Grafana dashboard, the vLLM ones included, evaluated by a real Prometheus that scraped a real
`python -m gateway` run and the real vLLM on CPU of the end-to-end tests (its own `/metrics`, after it generated)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.monitoring import panel_queries, scraped_stack
from tests.test_dashboard import problems

pytestmark = pytest.mark.e2e


def test_every_panel_query_evaluates_against_prometheus_scraping_the_gateway_and_real_vllm(
    vllm_upstream: Any,
) -> None:
    queries = panel_queries()
    vllm_queries = [query for query in queries if any(name.startswith("vllm:") for name in query.metrics)]
    assert len(vllm_queries) >= 6
    with scraped_stack(vllm_upstream.base_url) as (server, _, jobs):
        assert jobs == ["sqlgate", "vllm"]
        assert problems(server, queries) == []
        # vLLM counted the tokens of the completion sent to it directly.
        assert (server.scalar_or_empty("sum(vllm:generation_tokens_total)") or 0) > 0
