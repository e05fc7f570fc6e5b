"""The quality benchmark when the model server dies mid-run: it stops starting rows, and a run without --fresh
retries exactly the rows that got no answer (a refusal is an answer and is kept)."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.quality import finished_row, run_rows


def test_rows_without_an_answer_from_the_model_server_are_run_again_and_refusals_are_not() -> None:
    answered = {"index": 1, "direct_text": "SELECT 1", "gateway_status": 200}
    refused = {"index": 2, "direct_text": "SELECT 1", "gateway_status": 422}
    gateway_down = {"index": 3, "direct_text": "SELECT 1", "gateway_status": 503}
    bad_gateway = {"index": 4, "direct_text": "SELECT 1", "gateway_status": "502"}
    direct_down = {"index": 5, "direct_text": None, "direct_error": "HTTPStatusError", "gateway_status": 200}
    assert [finished_row(row) for row in (answered, refused, gateway_down, bad_gateway, direct_down)] == [
        True, True, False, False, False]


class _DeadServer:
    """Stands in for Runner: every row fails as it does once vLLM has died."""

    def __init__(self) -> None:
        self.started = 0

    def run_row(self, row: dict[str, Any]) -> dict[str, Any]:
        self.started += 1
        return {"index": row["index"], "direct_text": None, "direct_error": "ConnectError", "gateway_status": 503}


def test_a_dead_model_server_stops_the_run_instead_of_failing_every_remaining_row() -> None:
    server = _DeadServer()
    rows = [{"index": index} for index in range(200)]
    finished = run_rows(rows, server, concurrency=2, deadline=time.monotonic() + 600)  # type: ignore[arg-type]
    assert finished == server.started
    assert 4 <= server.started < 10  # 2 * concurrency failures in a row, plus those already in flight

