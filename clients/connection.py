"""Where the gateway is and which key to use: flags, then SQLGATE_*, then OPENAI_* (like the openai SDK)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Defaults in one place (docs/contract.md: port 8000, model id qwen2.5-1.5b-sql).
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_MODEL = "qwen2.5-1.5b-sql"
# One CPU generation can take several seconds and a queue forms under load: generous, but finite.
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_CONNECT_TIMEOUT_S = 5.0


def gateway_root(url: str) -> str:
    """The gateway's root URL: accepts `http://host:8000`, `.../` and OPENAI_BASE_URL-style `.../v1`."""
    root = url.strip().rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return root


@dataclass(frozen=True)
class Connection:
    root_url: str
    api_key: str | None

    @property
    def v1_url(self) -> str:
        return f"{self.root_url}/v1"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def resolve_connection(base_url: str | None, api_key: str | None, env: Mapping[str, str]) -> Connection:
    """URL and key, each from its flag, else SQLGATE_URL/_API_KEY, else OPENAI_BASE_URL/OPENAI_API_KEY."""
    url = base_url or env.get("SQLGATE_URL") or env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    key = api_key or env.get("SQLGATE_API_KEY") or env.get("OPENAI_API_KEY") or None
    return Connection(root_url=gateway_root(url), api_key=key)
