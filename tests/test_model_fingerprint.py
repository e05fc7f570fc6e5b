"""The model's fingerprint in the cache key: derived from what vLLM serves, never configured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.pipeline.fingerprint import ModelFingerprint, folder_fingerprint


class Lister:
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries
        self.calls = 0

    async def served_models(self, timeout_s: float) -> list[dict[str, Any]]:
        self.calls += 1
        return self.entries


def model_folder(path: Path, marker: dict[str, Any]) -> Path:
    path.mkdir()
    (path / "config.json").write_text('{"model_type": "qwen2"}')
    (path / "sqlgate-merge.json").write_text(json.dumps(marker))
    (path / "model.safetensors").write_bytes(b"\0" * 64)
    return path


def test_a_new_merge_changes_the_folder_fingerprint(tmp_path: Path) -> None:
    first = folder_fingerprint(model_folder(tmp_path / "a", {"adapter_sha256": "1"}))
    second = folder_fingerprint(model_folder(tmp_path / "b", {"adapter_sha256": "2"}))
    same = folder_fingerprint(tmp_path / "a")
    assert first is not None and second is not None and first != second and same == first


def test_quantized_weights_of_another_size_change_it(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m", {})
    before = folder_fingerprint(folder)
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    assert folder_fingerprint(folder) != before


async def test_resolved_from_the_folder_vllm_names(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "merged", {"adapter_sha256": "1"})
    fingerprint = ModelFingerprint(Lister([{"id": "sql", "root": str(folder)}]), "sql")
    assert fingerprint.current == "name:sql"  # before the upstream has been asked
    await fingerprint.refresh()
    assert fingerprint.current == f"folder:{folder_fingerprint(folder)}"


async def test_a_folder_elsewhere_is_named_by_vllms_own_description() -> None:
    a = ModelFingerprint(Lister([{"id": "sql", "root": "org/model-a"}]), "sql")
    b = ModelFingerprint(Lister([{"id": "sql", "root": "org/model-b"}]), "sql")
    await a.refresh()
    await b.refresh()
    assert a.current.startswith("upstream:") and a.current != b.current


async def test_an_upstream_that_cannot_say_keeps_the_last_answer(tmp_path: Path) -> None:
    lister = Lister([{"id": "sql", "root": "org/model-a"}])
    fingerprint = ModelFingerprint(lister, "sql")
    await fingerprint.refresh()
    known = fingerprint.current
    lister.entries = []
    await fingerprint.refresh()
    assert fingerprint.current == known and lister.calls == 2
