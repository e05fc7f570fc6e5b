"""No secret leaves the gateway: after a run with the most verbose logging and Langfuse tracing to a loopback OTLP
receiver, the API keys, the upstream key and the Langfuse secret must appear in none of the gateway's output, the
exported traces, any response (bodies and headers) or the /metrics text."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from tests import faults
from tests.conftest import API_KEY, SECOND_KEY
from tests.otlp_receiver import otlp_receiver
from tests.reliability.gateway_process import gateway_process
from tests.reliability.scripted import HEALTHY, Script, garbage_frame, scripted_upstream
from tests.servers import Fault

UPSTREAM_KEY = "sk-upstream-vllm-reliability-5f0c2a9e71"
LANGFUSE_PUBLIC = "pk-lf-reliability-public"
LANGFUSE_SECRET = "sk-lf-reliability-secret-93b1d7"
WRONG_KEY = "sk-sqlgate-wrong-key-presented-42"
SCHEMA = "CREATE TABLE singer (Singer_ID int, Name text)"
QUESTION = "Which singers are called Marble Falcon?"  # a marker the traces must carry (positive control)


def secrets() -> dict[str, str]:
    """Every secret the run hands the gateway (or presents to it), by what it is."""
    basic = base64.b64encode(f"{LANGFUSE_PUBLIC}:{LANGFUSE_SECRET}".encode()).decode()
    return {"api key (tester)": API_KEY, "api key (second)": SECOND_KEY, "upstream api key": UPSTREAM_KEY,
            "langfuse secret key": LANGFUSE_SECRET, "langfuse basic auth": basic,
            "wrong key a client presented": WRONG_KEY}


def leaky_500() -> Fault:
    """An upstream error page that echoes the key it was sent (a careless proxy): the gateway must not pass it on."""
    return faults.answer(500, orjson.dumps({"error": {"message": f"bad auth Bearer {UPSTREAM_KEY}"}}))


def _probes() -> list[tuple[str, str, dict[str, str], Any]]:
    """(name, path, headers, body or raw bytes), sent in this order; the upstream scripts follow the same order."""
    bearer = {"authorization": f"Bearer {API_KEY}"}
    header = {"x-api-key": SECOND_KEY}
    body = {"prompt": QUESTION, "schema": SCHEMA}
    return [
        ("answered", "/v1/completions", bearer, body),
        ("answered stream", "/v1/completions", header, {**body, "prompt": QUESTION + " (stream)", "stream": True}),
        ("upstream error echoing its key", "/v1/completions", bearer, {**body, "prompt": "q3"}),
        ("same, streamed", "/v1/completions", bearer, {**body, "prompt": "q4", "stream": True}),
        ("garbage mid-stream", "/v1/completions", header, {**body, "prompt": "q5", "stream": True}),
        ("sql route", "/v1/sql", bearer, {"question": "q6", "schema": SCHEMA}),
        ("wrong bearer key", "/v1/completions", {"authorization": f"Bearer {WRONG_KEY}"}, body),
        ("wrong x-api-key", "/v1/chat/completions", {"x-api-key": WRONG_KEY}, body),
        ("key in a non-bearer scheme", "/v1/models", {"authorization": f"Token {API_KEY}"}, None),
        ("no key", "/v1/sql", {}, body),
        ("malformed json", "/v1/completions", bearer, b'{"prompt": "' + API_KEY.encode()),
        ("over the cap", "/v1/completions", bearer, {"prompt": "x" * 600, "schema": SCHEMA}),
        ("unknown model", "/v1/chat/completions", bearer,
         {"model": "gpt-4", "messages": [{"role": "user", "content": "q"}], "schema": SCHEMA}),
    ]


UPSTREAM_SCRIPTS: list[Script] = [HEALTHY, HEALTHY, leaky_500(), leaky_500(), garbage_frame(), HEALTHY]


@dataclass
class SecretsResult:
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    haystacks: dict[str, int] = field(default_factory=dict)  # name -> characters searched
    occurrences: dict[str, dict[str, int]] = field(default_factory=dict)  # secret -> haystack -> count
    spans: int = 0
    controls: dict[str, bool] = field(default_factory=dict)

    @property
    def leaks(self) -> int:
        return sum(count for per_haystack in self.occurrences.values() for count in per_haystack.values())

    @property
    def passed(self) -> bool:
        return self.leaks == 0 and all(self.controls.values()) and self.spans > 0

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "leaks": self.leaks, "requests": self.requests, "statuses": self.statuses,
                "spans_exported": self.spans, "haystack_chars": self.haystacks, "positive_controls": self.controls,
                "occurrences": self.occurrences}


async def _send_all(base_url: str) -> tuple[list[httpx.Response], dict[str, int]]:
    responses = []
    statuses = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        for number, (name, path, headers, body) in enumerate(_probes()):
            request_headers = {**headers, "x-request-id": f"secrets-probe-{number}"}
            if path == "/v1/models":
                response = await client.get(path, headers=request_headers)
            elif isinstance(body, bytes):
                response = await client.post(path, content=body,
                                             headers={**request_headers, "content-type": "application/json"})
            else:
                response = await client.post(path, json=body, headers=request_headers)
            responses.append(response)
            statuses[name] = response.status_code
    return responses, statuses


def run_secrets() -> SecretsResult:
    result = SecretsResult()
    with otlp_receiver(public_key=LANGFUSE_PUBLIC, secret_key=LANGFUSE_SECRET) as receiver, \
            scripted_upstream("up", *UPSTREAM_SCRIPTS) as upstream:
        with gateway_process(
            "gateway", api_keys=f"tester={API_KEY},second={SECOND_KEY}", upstream_url=upstream.base_url,
            upstream_api_key=UPSTREAM_KEY, langfuse_public_key=LANGFUSE_PUBLIC, langfuse_secret_key=LANGFUSE_SECRET,
            langfuse_base_url=receiver.base_url, log_level="debug", access_log="true", rate_limit_per_minute="0",
            upstream_read_timeout_s="10",
        ) as gateway:
            responses, result.statuses = asyncio.run(_send_all(gateway.base_url))
            metrics_text = httpx.get(f"{gateway.base_url}/metrics", timeout=10.0).text
            gateway.terminate()  # shutting down flushes the trace exporter
            gateway.wait_exit(30.0)
            logs = gateway.output()
        result.requests = len(responses)
        receiver.wait_until(lambda r: len(r.spans) > 0, timeout_s=10.0)
        traces = "\n".join(body.decode("utf-8", "replace") for body in receiver.bodies)
        traces += "\n" + json.dumps([span.attributes for span in receiver.spans], default=str)
        result.spans = len(receiver.spans)
    answers = "\n".join(
        f"{response.status_code} {dict(response.headers)}\n{response.content.decode('utf-8', 'replace')}"
        for response in responses)
    haystacks = {"gateway stdout+stderr": logs, "exported traces": traces, "responses": answers,
                 "metrics": metrics_text}
    result.haystacks = {name: len(text) for name, text in haystacks.items()}
    result.occurrences = {secret: {name: text.count(value) for name, text in haystacks.items() if value in text}
                          for secret, value in secrets().items()}
    result.controls = {
        # Each haystack really holds what it should, so that finding nothing in it means something.
        "traces carry the traced question": QUESTION in traces,
        "logs carry the request ids": "secrets-probe-0" in logs and "secrets-probe-10" in logs,
        "responses include the upstream errors": result.statuses.get("upstream error echoing its key") == 502,
        "metrics count the requests": "sqlgate_requests_total" in metrics_text,
    }
    return result
