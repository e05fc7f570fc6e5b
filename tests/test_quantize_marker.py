"""launch.quantize's bookkeeping, without torch: when a variant folder may be reused, and the int4 group size."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from launch.quantize import (
    MARKER_FILE,
    QuantizeError,
    QuantRequest,
    expected_marker,
    int4_group_size,
    reusable,
    source_fingerprint,
    variant_dir,
)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 64}')
    (folder / "tokenizer.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


def test_rewriting_an_unchanged_config_keeps_the_fingerprint(source: Path) -> None:
    before = source_fingerprint(source)
    (source / "config.json").write_text('{"hidden_size": 64}')
    os.utime(source / "config.json", ns=(1, 1))
    assert source_fingerprint(source) == before


def test_a_changed_config_or_weight_file_changes_the_fingerprint(source: Path) -> None:
    before = source_fingerprint(source)
    (source / "config.json").write_text('{"hidden_size": 128}')
    after_config = source_fingerprint(source)
    assert after_config != before
    (source / "model.safetensors").write_bytes(b"other weights")
    assert source_fingerprint(source) != after_config


def test_a_variant_is_reused_only_when_complete_and_made_from_this_source(source: Path, tmp_path: Path) -> None:
    out = variant_dir(source, "int8")
    assert out == tmp_path / "model-int8"
    request = QuantRequest(source=source, weights="int8", out_dir=out)
    expected = expected_marker(request)
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"quantization_config": {}}))
    (out / "tokenizer.json").write_text("{}")
    (out / MARKER_FILE).write_text(json.dumps(expected))
    assert not reusable(out, expected)  # no weights yet
    (out / "model.safetensors").write_bytes(b"q")
    assert reusable(out, expected)
    assert not reusable(out, expected_marker(QuantRequest(source=source, weights="int4", out_dir=out)))
    (source / "config.json").write_text('{"hidden_size": 128}')
    assert not reusable(out, expected_marker(request))


@pytest.mark.parametrize(("widths", "group"), [([896, 4864], 128), ([64, 128], 64), ([1536, 8960], 128), ([96], 32)])
def test_int4_group_size_divides_every_layer(widths: list[int], group: int) -> None:
    assert int4_group_size(widths) == group


def test_int4_refuses_widths_no_supported_group_divides() -> None:
    with pytest.raises(QuantizeError, match="no group size"):
        int4_group_size([100])
