"""Percentiles and latency summaries, without numpy (the same numbers as numpy's default `linear` method)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

SUMMARY_PERCENTILES = (50, 90, 95, 99)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * fraction


def summarise(
    values: Iterable[float], *, scale: float = 1.0, digits: int = 3
) -> dict[str, float | int | None]:
    """count, mean, min, p50/p90/p95/p99 and max of `values * scale` (None for each when there are none)."""
    scaled = [value * scale for value in values]
    summary: dict[str, float | int | None] = {"count": len(scaled)}
    keys = ["mean", "min", *(f"p{q}" for q in SUMMARY_PERCENTILES), "max"]
    if not scaled:
        summary.update(dict.fromkeys(keys))
        return summary
    summary["mean"] = round(sum(scaled) / len(scaled), digits)
    summary["min"] = round(min(scaled), digits)
    for q in SUMMARY_PERCENTILES:
        summary[f"p{q}"] = round(percentile(scaled, q), digits)
    summary["max"] = round(max(scaled), digits)
    return summary
