"""The SSE verdict the reliability runs rely on: it must flag every framing fault it claims to check."""

from __future__ import annotations

import pytest

from tests.reliability.observe import read_stream

DELTA = 'data: {"choices": [{"index": 0, "text": "SELECT"}]}\n\n'
FINAL = 'data: {"choices": [{"index": 0, "text": ""}], "sql": {"valid": true}}\n\n'
USAGE = 'data: {"choices": [], "usage": {"total_tokens": 3}}\n\n'
ERROR = 'data: {"error": {"message": "m", "type": "upstream_error", "param": null, "code": "upstream_timeout"}}\n\n'
DONE = "data: [DONE]\n\n"


def test_a_final_chunk_then_usage_then_done_is_well_formed() -> None:
    verdict = read_stream(DELTA + FINAL + USAGE + DONE)
    assert verdict.problems == () and verdict.terminal == "final" and verdict.frames == 4


def test_an_in_band_error_then_done_is_well_formed_and_carries_its_code() -> None:
    verdict = read_stream(DELTA + ERROR + DONE)
    assert verdict.well_formed and verdict.terminal == "error" and verdict.error_code == "upstream_timeout"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (DELTA + FINAL, "0 [DONE] frames"),
        (DELTA + FINAL + DONE + DONE, "2 [DONE] frames"),
        (DELTA + DONE + FINAL, "frames after [DONE]"),
        (DELTA + DONE, "0 terminal frames"),
        (DELTA + FINAL + ERROR + DONE, "2 terminal frames"),
        (FINAL + DELTA + DONE, "frames other than usage after the terminal frame"),
        ("data: {not json\n\n" + FINAL + DONE, "frame is not JSON"),
        ("event: x\n" + FINAL + DONE, "not a single data line"),
    ],
)
def test_each_framing_fault_is_flagged(body: str, problem: str) -> None:
    verdict = read_stream(body)
    assert not verdict.well_formed
    assert any(found.startswith(problem) for found in verdict.problems), verdict.problems
