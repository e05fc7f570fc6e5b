"""Latency summaries and report files shared by the benchmarks."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from clients.stats import percentile, summarise
from gateway.observability.metrics import SQL_OUTCOMES

# A gateway answer rejected by its SQL check (what random-weight models produce) still did all the work: the
# model generated, the check ran. Serving benchmarks count these as completed requests.
# Every verdict of the SQL check is a whole answer for a serving benchmark: random weights write garbage, and the
# 32 forced tokens end in a length stop (truncated_sql), both after the full generation.
CHECK_REJECTIONS = frozenset(SQL_OUTCOMES) - {"valid"}


def latency_ms(values_s: Iterable[float]) -> dict[str, float | int | None]:
    return summarise(values_s, scale=1000.0)


def completed(sample: Sequence[Any]) -> bool:
    """A bench-client sample (clients/bench.py layout) that got a whole answer: 200, or a 422 SQL-check verdict."""
    status, error = sample[3], sample[4]
    return (status == 200 and error is None) or (status == 422 and error in CHECK_REJECTIONS)


def serving_summary(samples: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Latency, throughput and outcome counts of one closed-loop cell, from clients/bench.py samples."""
    done = [s for s in samples if completed(s)]
    wall = (max(s[0] + s[1] / 1000 for s in samples) - min(s[0] for s in samples)) if samples else 0.0
    tokens = [s[5] for s in done if s[5] is not None]
    outcomes = Counter(f"{s[3]} {s[4]}" if s[4] else str(s[3]) for s in samples)
    return {
        "requests": len(samples),
        "completed": len(done),
        "failed": len(samples) - len(done),
        "outcomes": dict(sorted(outcomes.items())),
        "wall_s": round(wall, 3),
        "req_per_s": round(len(done) / wall, 3) if wall > 0 else None,
        "latency_ms": summarise(s[1] for s in done),
        "completion_tokens": summarise(tokens) if tokens else None,
    }


def difference_ms(slow: dict[str, Any], fast: dict[str, Any], keys: Sequence[str] = ("p50", "p90", "p99")
                  ) -> dict[str, float | None]:
    """Per-percentile difference of two latency summaries (ms)."""
    return {key: (round(slow[key] - fast[key], 3) if slow.get(key) is not None and fast.get(key) is not None
                  else None) for key in keys}


def ratio(numerator: float | None, denominator: float | None, digits: int = 4) -> float | None:
    return round(numerator / denominator, digits) if numerator is not None and denominator else None


def paired_overhead_ms(gateway_s: Sequence[float], direct_s: Sequence[float]) -> dict[str, float]:
    """Percentiles of gateway minus direct latency for requests sent in interleaved pairs (same instant)."""
    pairs = [(g - d) * 1000 for g, d in zip(gateway_s, direct_s, strict=False)]
    return {f"p{q}": round(percentile(pairs, q), 3) for q in (50, 90, 99)} if pairs else {}


def host_facts() -> dict[str, Any]:
    """What machine and software a report was measured on."""
    facts: dict[str, Any] = {
        "hostname": platform.node(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
        facts["cpu_model"] = model
    except (OSError, StopIteration):
        pass
    try:
        facts["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                             timeout=5, check=False).stdout.strip() or None
    except OSError:
        facts["git_commit"] = None
    return facts


def write_report(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path


def say(message: str) -> None:
    """Progress on stderr, flushed (benchmarks run for minutes)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
