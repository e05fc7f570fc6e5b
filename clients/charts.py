"""PNG charts for eval and bench reports (matplotlib's Agg canvas directly: no pyplot, no global backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

EVAL_BARS = (
    ("exact_match", "exact match (publication)"),
    ("normalised_match", "normalised match (sqlglot)"),
    ("valid_sql", "valid SQL (gateway check)"),
    ("read_only_sql", "read-only"),
    ("schema_grounded_sql", "schema-grounded"),
    ("compiles_sqlite", "compiles in SQLite"),
    ("reference_compiles_sqlite", "reference compiles in SQLite"),
)


def _save(figure: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")


def eval_chart(report: dict[str, Any], path: Path) -> None:
    """Horizontal bars of every share, with the published exact match and the 70 % target marked."""
    labels = [label for _, label in EVAL_BARS]
    values = [float(report.get(key) or 0.0) * 100 for key, _ in EVAL_BARS]
    figure = Figure(figsize=(8, 4.6), layout="constrained")
    axes = figure.add_subplot()
    bars = axes.barh(labels[::-1], values[::-1], color="#4c72b0")
    axes.bar_label(bars, labels=[f"{v:.1f} %" for v in values[::-1]], padding=3)
    axes.axvline(
        float(report.get("published_exact_match", 0.754)) * 100,
        color="#c44e52",
        linestyle="--",
        label="published exact match",
    )
    axes.axvline(
        float(report.get("target_exact_match", 0.70)) * 100,
        color="#55a868",
        linestyle=":",
        label="target exact match",
    )
    axes.set_xlim(0, 110)
    axes.set_xlabel("% of scored rows")
    axes.set_title(
        f"sqlgate eval: {report.get('rows_scored')} rows, {report.get('split')} split, "
        f"route {report.get('route')}"
    )
    figure.legend(loc="outside lower center", ncols=2, fontsize="small")
    _save(figure, path)


def bench_chart(targets: dict[str, dict[str, Any]], path: Path) -> None:
    """Per target: latency of each request over the run, and the latency (and TTFT) distribution."""
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    over_time, distribution = figure.subplots(1, 2)
    for name, target in targets.items():
        samples: Sequence[Sequence[Any]] = target.get("samples", [])
        ok = [s for s in samples if s[3] == 200]
        failed = [s for s in samples if s[3] != 200]
        over_time.scatter([s[0] for s in ok], [s[1] for s in ok], s=6, label=f"{name} ok")
        if failed:
            over_time.scatter(
                [s[0] for s in failed], [s[1] for s in failed], s=10, marker="x", label=f"{name} errors"
            )
        _cdf(distribution, [s[1] for s in ok], f"{name} latency")
        ttfts = [s[2] for s in ok if s[2] is not None]
        if ttfts:
            _cdf(distribution, ttfts, f"{name} TTFT", linestyle="--")
    over_time.set_xlabel("request start (s since the run began)")
    over_time.set_ylabel("latency (ms)")
    over_time.set_title("latency over the run")
    distribution.set_xlabel("ms")
    distribution.set_ylabel("share of requests at or below")
    distribution.set_title("latency distribution")
    for axes in (over_time, distribution):
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
        axes.grid(alpha=0.3)
    _save(figure, path)


def _cdf(axes: Any, values: list[float], label: str, linestyle: str = "-") -> None:
    if not values:
        return
    ordered = sorted(values)
    shares = [(index + 1) / len(ordered) for index in range(len(ordered))]
    axes.step(ordered, shares, where="post", label=label, linestyle=linestyle)
