"""Percentiles agree with numpy's default method; summaries handle empty input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clients.stats import percentile, summarise

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(values=st.lists(finite, min_size=1, max_size=200), q=st.floats(min_value=0, max_value=100))
def test_percentile_matches_numpy_linear(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-6)


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == 25.0
    assert percentile([5.0], 99) == 5.0
    assert percentile([3.0, 1.0, 2.0], 100) == 3.0


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_outside_range_is_refused(q: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0], q)


def test_percentile_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


def test_summary_fields() -> None:
    values = [float(v) for v in range(1, 101)]
    summary = summarise(values, scale=1000)
    assert summary["count"] == 100
    assert summary["max"] == 100_000
    assert summary["p50"] == pytest.approx(float(np.percentile(values, 50)) * 1000)
    assert summary["p99"] == pytest.approx(float(np.percentile(values, 99)) * 1000)
    empty = summarise([])
    assert empty["count"] == 0 and empty["p50"] is None and empty["max"] is None
