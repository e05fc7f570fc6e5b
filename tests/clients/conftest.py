"""Fixtures for the client tests: the real gateway under uvicorn with chosen settings, and a clean environment
so that no SQLGATE_* / OPENAI_* variable of the machine leaks into a CLI run."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import API_KEY, make_settings
from tests.servers import free_port, serve_in_thread

CONNECTION_VARIABLES = ("SQLGATE_URL", "SQLGATE_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY", "SQLGATE_MODEL",
                        "SQLGATE_UPSTREAM_URL")

GatewayFactory = Callable[..., contextlib.AbstractContextManager[str]]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CONNECTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on (a connection there is refused at once)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def serve_gateway() -> GatewayFactory:
    """Serve the real gateway (`create_app(settings)`) on a free loopback port; yields its root URL."""

    @contextlib.contextmanager
    def serve(**overrides: Any) -> Iterator[str]:
        from gateway.app import create_app

        with serve_in_thread(create_app(make_settings(**overrides))) as server:
            yield server.base_url

    return serve


@pytest.fixture
def api_key() -> str:
    return API_KEY
