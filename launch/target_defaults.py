"""The gateway settings each target's own measurements chose, which the launcher passes to the gateway it starts
(a value already in the environment wins). docs/eval.md and docs/benchmarks.md have the figures.

- cpu: sample only when the greedy answer fails the check, constrained by the schema's grammar: on two cores a
  sampling call costs seconds, and the grammar's samples pass more often (`make quality`, reports/quality.json).
- gpu: sample next to every greedy call (free samples) and vote: one `n = 8` call costs ~2x a greedy one on an
  H100, affordable on every request; the grammar strategy is off there because vLLM fills every constrained
  sequence's token mask serially between decoding steps (3-11 ms each for this grammar and Qwen's 151k-token
  vocabulary), which stalls the whole batch (reports/gpu_pipeline.json, phase `grammar`). The budget bounds the
  sampling call so the seed's p99 target holds at 32 requests in flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from launch.hardware import Target

TARGET_GATEWAY_DEFAULTS: Final[Mapping[Target, Mapping[str, str]]] = {
    "cpu": {
        "SQLGATE_SQL_CANDIDATES_POLICY": "on_failure",
        "SQLGATE_SQL_CANDIDATE_STRATEGY": "grammar",
        "SQLGATE_SQL_CANDIDATE_BUDGET_S": "60",
    },
    "gpu": {
        "SQLGATE_SQL_CANDIDATES_POLICY": "always",
        "SQLGATE_SQL_CANDIDATE_STRATEGY": "sample",
        "SQLGATE_SQL_CANDIDATE_BUDGET_S": "1.5",
    },
}


def gateway_defaults(target: Target) -> dict[str, str]:
    """The measured gateway settings for `target`."""
    return dict(TARGET_GATEWAY_DEFAULTS[target])


def with_target_defaults(target: Target, environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` plus the target's defaults for every setting it does not set itself."""
    return {**gateway_defaults(target), **environ}
