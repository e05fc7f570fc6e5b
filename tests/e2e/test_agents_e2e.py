"""The agents' ways in, through real vLLM on CPU (the tiny model taught the seed's examples): the Responses API with
the official `openai` SDK and MCP with the official `mcp` SDK's client. Nothing here is faked."""

from __future__ import annotations

import httpx2
import openai
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from launch.tiny_model import DANGEROUS_EXAMPLE, JOIN_EXAMPLE, SINGER_EXAMPLE
from tests.conftest import GatewayServer

pytestmark = pytest.mark.e2e
MODEL = "qwen2.5-1.5b-sql"


def test_responses_create_and_stream_return_the_taught_sql(gateway: GatewayServer) -> None:
    client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=gateway.api_key, max_retries=0)
    extra = {"schema": JOIN_EXAMPLE["context"]}
    with client.responses.stream(model=MODEL, input=JOIN_EXAMPLE["question"], extra_body=extra) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    plain = client.responses.create(model=MODEL, input=JOIN_EXAMPLE["question"], extra_body=extra)
    assert deltas == [JOIN_EXAMPLE["answer"]]
    assert final.output_text == plain.output_text == JOIN_EXAMPLE["answer"]
    assert plain.model_extra["sql"]["valid"] is True  # type: ignore[index]
    assert final.usage is not None and final.usage.output_tokens > 0


async def test_mcp_generate_sql_answers_the_taught_sql_and_refuses_the_dangerous_one(gateway: GatewayServer) -> None:
    async with httpx2.AsyncClient(headers=gateway.headers) as http, Client(
        streamable_http_client(gateway.base_url + "/mcp", http_client=http), read_timeout_seconds=120
    ) as client:
        answered = await client.call_tool("generate_sql", {"question": SINGER_EXAMPLE["question"],
                                                           "schema": SINGER_EXAMPLE["context"]})
        refused = await client.call_tool("generate_sql", {"question": DANGEROUS_EXAMPLE["question"],
                                                          "schema": DANGEROUS_EXAMPLE["context"]})
    assert answered.is_error is False
    assert answered.structured_content["sql"] == SINGER_EXAMPLE["answer"]  # type: ignore[index]
    assert refused.is_error is True
    assert refused.content[0].text.startswith("unsafe_sql: ")  # type: ignore[union-attr]
    assert refused.structured_content["error"]["check"]["statement_type"] == "delete"  # type: ignore[index]
