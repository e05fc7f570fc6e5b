"""launch.cpu_weights: which weights the launcher serves on a CPU, and the reason it gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launch.cpu_weights import (
    Measured,
    best_measured,
    choose_cpu_weights,
    cpu_signature,
    load_measurements,
    parse_weights,
)

AVX2_EPYC = {"sse4_2", "avx", "avx2", "fma"}
SAPPHIRE_RAPIDS = AVX2_EPYC | {"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_bf16",
                               "amx_int8"}
OLD_BF16_ONLY = {"sse4_2", "avx512_bf16"}


def cpuinfo(tmp_path: Path, flags: set[str], name: str = "AMD EPYC") -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: {name}\nflags\t\t: {' '.join(sorted(flags))}\n")
    return path


@pytest.mark.parametrize(("flags", "expected", "dtype"), [
    # Measured on an AVX2 EPYC without VNNI (docs/benchmarks.md 3b): int8 W8A8 3x slower than float32 at one user.
    (AVX2_EPYC, "fp32", "float32"),
    (AVX2_EPYC | {"avx_vnni"}, "int8", "float32"),
    (SAPPHIRE_RAPIDS, "int8", "bfloat16"),
    (OLD_BF16_ONLY, "bf16", "bfloat16"),
    ({"sse4_2"}, "fp32", "float32"),
])  # fmt: skip
def test_unmeasured_choice_follows_the_cpu_features(flags: set[str], expected: str, dtype: str) -> None:
    choice = choose_cpu_weights(None, flags=flags, measured={})
    assert (choice.weights, choice.dtype) == (expected, dtype)
    assert choice.reason


def test_int4_is_never_picked_without_a_measurement() -> None:
    for flags in (AVX2_EPYC, SAPPHIRE_RAPIDS, OLD_BF16_ONLY, set()):
        assert choose_cpu_weights(None, flags=flags).weights != "int4"


@pytest.mark.parametrize("asked", ["fp32", "bf16", "int8", "int4", "INT8", "float32", "w4a16"])
def test_an_override_wins_over_features_and_measurements(asked: str) -> None:
    measured = {"int8": Measured(100.0, 9.0, 0.0)}
    choice = choose_cpu_weights(asked, flags=SAPPHIRE_RAPIDS, measured=measured)
    assert choice.weights == parse_weights(asked)
    assert "was asked for" in choice.reason


def test_int4_asked_for_on_an_avx2_cpu_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="CPU_WEIGHTS=int4 cannot run here: int4 needs AVX-512"):
        choose_cpu_weights("int4", flags=AVX2_EPYC)


def test_a_measured_int4_is_not_picked_where_its_kernel_is_missing() -> None:
    measured = {"fp32": Measured(9000.0, 0.3, 0.0), "int4": Measured(4000.0, 0.9, 0.0)}
    assert choose_cpu_weights(None, flags=AVX2_EPYC, measured=measured).weights == "fp32"
    assert choose_cpu_weights(None, flags=SAPPHIRE_RAPIDS, measured=measured).weights == "int4"


def test_bf16_asked_for_on_a_cpu_without_bf16_says_it_will_be_slow() -> None:
    choice = choose_cpu_weights("bf16", flags=AVX2_EPYC)
    assert choice.dtype == "bfloat16" and "no bf16 arithmetic" in choice.reason


def test_an_unknown_override_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="fp32, bf16, int8, int4"):
        choose_cpu_weights("int3", flags=AVX2_EPYC)


def test_auto_means_no_override() -> None:
    assert choose_cpu_weights("auto", flags={"sse4_2"}).weights == "fp32"


def test_measurement_picks_the_fastest_format_whose_quality_held() -> None:
    measured = {
        "fp32": Measured(9000.0, 0.3, 0.0),
        "int8": Measured(5000.0, 0.5, -0.005),
        "int4": Measured(4000.0, 0.9, -0.05),  # fastest, but lost 5 pp of exact match
    }
    choice = choose_cpu_weights(None, flags=SAPPHIRE_RAPIDS, measured=measured)
    assert choice.weights == "int8"
    assert "int4 0.9 req/s" in choice.reason and "(quality lost)" in choice.reason


def test_measurement_can_reject_int8_for_the_unquantized_weights() -> None:
    measured = {"fp32": Measured(9000.0, 0.3, 0.0), "int8": Measured(5000.0, 0.5, -0.02)}
    assert choose_cpu_weights(None, flags=AVX2_EPYC, measured=measured).weights == "fp32"


def test_a_quantized_format_without_a_quality_figure_is_not_picked() -> None:
    measured = {"fp32": Measured(9000.0, 0.3, None), "int8": Measured(5000.0, 0.5, None)}
    decided = best_measured(measured)
    assert decided is not None and decided[0] == "fp32"


def test_measurements_from_another_cpu_are_ignored(tmp_path: Path) -> None:
    here = cpu_signature(cpuinfo=cpuinfo(tmp_path, AVX2_EPYC))
    assert here == "AMD EPYC|avx2"
    report = tmp_path / "cpu_serving.json"
    evidence = {"by_weights": {"fp32": {"p50_ms_c1": 9000, "req_per_s_c8": 0.3, "quality_em_delta_vs_bf16": 0.0},
                               "int8": {"p50_ms_c1": 5000, "req_per_s_c8": 0.5, "quality_em_delta_vs_bf16": 0.0}}}
    report.write_text(json.dumps({"launcher_evidence": {**evidence, "cpu_signature": "Intel Xeon|avx2,avx512f"}}))
    assert load_measurements(here, report) == {}
    report.write_text(json.dumps({"launcher_evidence": {**evidence, "cpu_signature": here}}))
    assert set(load_measurements(here, report)) == {"fp32", "int8"}


def test_a_missing_or_broken_report_means_no_measurement(tmp_path: Path) -> None:
    assert load_measurements("x|avx2", tmp_path / "absent.json") == {}
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert load_measurements("x|avx2", broken) == {}
