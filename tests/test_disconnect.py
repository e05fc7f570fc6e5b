"""A client that goes away cancels the upstream request (plain and streaming), over real sockets."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.app import create_app
from tests import faults
from tests.conftest import AUTH, make_settings
from tests.servers import fake_upstream, serve_in_thread, wait_for

BODY = {"prompt": "How many singers do we have?", "schema": "CREATE TABLE singer (Singer_ID int, Name text)"}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
def test_client_disconnect_closes_the_upstream_connection(stream: bool) -> None:
    release = asyncio.Event()
    fault = (faults.stream(faults.sse_frames(["SELECT"]), stall_after=True, release=release) if stream
             else faults.hang(release))
    with fake_upstream(fault) as upstream:
        app = create_app(make_settings(upstream_url=upstream.base_url, upstream_read_timeout_s=30.0))
        with serve_in_thread(app) as gateway:
            with httpx.Client(base_url=gateway.base_url, headers=AUTH) as client:
                if stream:
                    with client.stream("POST", "/v1/completions", json={**BODY, "stream": True}) as response:
                        assert response.status_code == 200
                        # The model's unfinished text is held back until it is checked: nothing to read yet.
                        wait_for(lambda: upstream.open_connections == 1, "the upstream request")
                    # Leaving the block closed the connection mid-stream.
                else:
                    with pytest.raises(httpx.ReadTimeout):
                        client.post("/v1/completions", json=BODY, timeout=httpx.Timeout(5.0, read=0.5))
            wait_for(lambda: upstream.open_connections == 0, "the gateway to hang up on the upstream")
            assert len(upstream.requests) == 1
