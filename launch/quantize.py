"""Quantize a served model folder into the compressed-tensors format vLLM loads: int8 W8A8 or int4 W4A16.

Run with the vLLM environment: ``.venv-vllm/bin/python -m launch.quantize --model DIR --weights int8``.
Round-to-nearest (RTN), no calibration data: the scales come from the weights themselves (per output channel for
int8, per group of input columns for int4), activations of W8A8 are quantized per token at run time. The
`compressed-tensors` package vLLM already depends on does the packing, so no other library is needed.
Idempotent: a folder whose marker matches the source's fingerprint and the scheme is left alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import importlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal

from launch.folders import exclusive_lock, replace_folder

QuantWeights = Literal["int8", "int4"]
MARKER_FILE: Final = "sqlgate-quant.json"
# Bump when the quantization changes in a way that changes the folder it writes.
CODE_VERSION: Final = 2
# compressed-tensors preset names, and how each is stored (vLLM picks its CPU kernel from these).
SCHEMES: Final[dict[str, str]] = {"int8": "W8A8", "int4": "W4A16"}
FORMATS: Final[dict[str, str]] = {"int8": "int-quantized", "int4": "pack-quantized"}
# vLLM's CPU W4A16 kernel wants an even group size and matrix sides that are multiples of 32 (FACTS.md).
INT4_GROUP_SIZES: Final = (128, 64, 32)
# The head shares its matrix with the embeddings in Qwen2.5 (tied); quantizing it would also change the lookup.
IGNORED: Final = ["lm_head"]
_COPIED_FILES: Final = (
    "generation_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
    "special_tokens_map.json", "added_tokens.json", "chat_template.jinja",
)  # fmt: skip


class QuantizeError(RuntimeError):
    """The folder cannot be quantized; the message says why."""


@dataclasses.dataclass(frozen=True)
class QuantRequest:
    """What to quantize, how, and where to put it."""

    source: Path
    weights: QuantWeights
    out_dir: Path
    force: bool = False


def variant_dir(source: Path, weights: str) -> Path:
    """Where the launcher keeps a variant: next to the source folder, suffixed with the weights' name."""
    return source.resolve().with_name(f"{source.resolve().name}-{weights}")


def step(number: int, total: int, message: str) -> None:
    """One progress line on stderr."""
    print(f"[quantize {number}/{total}] {message}", file=sys.stderr, flush=True)


def source_fingerprint(source: Path) -> str:
    """What identifies the source: the content of its small files (config, tokenizer, the merge's marker, which
    pins adapter and base) and the name, size and modification time of each weight file (hashing gigabytes would
    cost more than the quantization). Rewriting an unchanged config, as the benchmark's folder writer does, keeps
    the fingerprint."""
    digest = hashlib.sha256()
    for path in sorted(source.iterdir()):
        if not path.is_file() or path.name == MARKER_FILE:
            continue
        if path.suffix == ".safetensors":
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        elif path.suffix in (".json", ".txt", ".jinja"):
            digest.update(f"{path.name}:".encode() + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def expected_marker(request: QuantRequest) -> dict[str, Any]:
    """The marker fields that must match for a folder to be reused."""
    return {
        "code_version": CODE_VERSION,
        "source": str(request.source.resolve()),
        "source_fingerprint": source_fingerprint(request.source),
        "weights": request.weights,
        "scheme": SCHEMES[request.weights],
        "format": FORMATS[request.weights],
        "method": "rtn",
        "ignore": IGNORED,
    }


def read_marker(out_dir: Path) -> dict[str, Any] | None:
    """The marker of a previous run, or None when absent or unreadable."""
    try:
        marker = json.loads((out_dir / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def folder_complete(out_dir: Path) -> bool:
    """config (with its quantization section), tokenizer, marker and every weight shard are present."""
    required = ("config.json", "tokenizer.json", MARKER_FILE)
    if not all((out_dir / name).is_file() for name in required):
        return False
    try:
        if "quantization_config" not in json.loads((out_dir / "config.json").read_text()):
            return False
    except (OSError, ValueError):
        return False
    index = out_dir / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return all((out_dir / shard).is_file() for shard in shards)
    return (out_dir / "model.safetensors").is_file()


def reusable(out_dir: Path, expected: dict[str, Any]) -> bool:
    """True when `out_dir` already holds this variant of this source."""
    marker = read_marker(out_dir)
    if marker is None or not folder_complete(out_dir):
        return False
    return all(marker.get(key) == value for key, value in expected.items())


def int4_group_size(in_features: Sequence[int]) -> int:
    """The largest supported group size that divides every quantized layer's input width."""
    for size in INT4_GROUP_SIZES:
        if all(width % size == 0 for width in in_features):
            return size
    raise QuantizeError(f"no group size in {INT4_GROUP_SIZES} divides the layer widths {sorted(set(in_features))}")


def _quantized_linears(model: Any) -> list[tuple[str, Any]]:
    torch = importlib.import_module("torch")
    return [
        (name, module) for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] not in IGNORED
    ]  # fmt: skip


def _scheme(weights: QuantWeights, model: Any) -> tuple[Any, dict[str, Any]]:
    """The compressed-tensors config for `weights`, and what was chosen (for the marker)."""
    quantization = importlib.import_module("compressed_tensors.quantization")
    scheme = quantization.preset_name_to_scheme(SCHEMES[weights], ["Linear"])
    chosen: dict[str, Any] = {}
    if weights == "int4":
        group = int4_group_size([module.in_features for _, module in _quantized_linears(model)])
        scheme.weights.group_size = group
        chosen["group_size"] = group
    config = quantization.QuantizationConfig(config_groups={"group_0": scheme}, ignore=IGNORED)
    return config, chosen


def _set_rtn_scales(module: Any) -> None:
    """Scales (and zero points) from the weight's own range: per row, or per row and group of columns."""
    torch = importlib.import_module("torch")
    helpers = importlib.import_module("compressed_tensors.quantization.utils")
    args = module.quantization_scheme.weights
    weight = module.weight.detach().float()
    if args.group_size:
        grouped = weight.reshape(weight.shape[0], -1, args.group_size)
        low, high = grouped.amin(dim=-1), grouped.amax(dim=-1)
    else:
        low, high = weight.amin(dim=1, keepdim=True), weight.amax(dim=1, keepdim=True)
    scale, zero_point = helpers.calculate_qparams(low, high, args)
    # The scale is stored in the model's dtype (bf16): round it first, so the integers are the nearest ones for
    # the scale vLLM will read back.
    scale = scale.to(module.stored_dtype).float()
    with torch.no_grad():
        module.weight_scale.data.copy_(scale.to(module.weight_scale.dtype).reshape(module.weight_scale.shape))
        if hasattr(module, "weight_zero_point"):
            module.weight_zero_point.data.copy_(
                zero_point.to(module.weight_zero_point.dtype).reshape(module.weight_zero_point.shape)
            )


def quantize_into(source: Path, weights: QuantWeights, work_dir: Path) -> dict[str, Any]:
    """Load `source`, quantize every Linear but the head (RTN), save it compressed into `work_dir`."""
    torch = importlib.import_module("torch")
    transformers = importlib.import_module("transformers")
    quantization = importlib.import_module("compressed_tensors.quantization")
    compressors = importlib.import_module("compressed_tensors.compressors")
    config = json.loads((source / "config.json").read_text())
    dtype = getattr(torch, str(config.get("torch_dtype") or config.get("dtype") or "bfloat16"))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(source), dtype=dtype, local_files_only=True)
    model.eval()
    quant_config, chosen = _scheme(weights, model)
    layers = _quantized_linears(model)
    # compressed-tensors divides by the scale in the weight's dtype; in bf16, w / scale ~ 100 is only known to
    # within 0.5, so a tenth of the int8 values came out one step off. The layers to quantize compute in float32.
    for _, module in layers:
        module.stored_dtype = dtype
        module.float()
    quantization.apply_quantization_config(model, quant_config)
    for _, module in layers:
        _set_rtn_scales(module)
    compressor = compressors.ModelCompressor.from_pretrained_model(model, quantization_format=FORMATS[weights])
    compressor.compress_model(model)
    with torch.no_grad():
        for _, module in layers:  # scales are bf16-exact by construction; bias back to the model's dtype
            for parameter in module.parameters(recurse=False):
                if parameter.is_floating_point():
                    parameter.data = parameter.data.to(dtype)
            del module.stored_dtype
    model.save_pretrained(str(work_dir))
    compressor.update_config(str(work_dir))
    for name in _COPIED_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, work_dir / name)
    return {**chosen, "layers": len(layers), "source_dtype": str(dtype).removeprefix("torch.")}


def folder_bytes(folder: Path) -> int:
    """Bytes of weights in a model folder."""
    return sum(path.stat().st_size for path in folder.glob("*.safetensors"))


def quantize(request: QuantRequest) -> dict[str, Any]:
    """Quantize (or confirm an up-to-date variant) and return the marker written to the folder."""
    total = 4
    source = request.source.resolve()
    if not (source / "config.json").is_file() or not any(source.glob("*.safetensors")):
        raise QuantizeError(f"{source} is not a model folder (config.json and *.safetensors expected)")
    if read_marker(source) is not None:
        raise QuantizeError(f"{source} is already a quantized variant; quantize the unquantized folder")
    out_dir = request.out_dir.resolve()
    with exclusive_lock(out_dir):
        step(1, total, f"{request.weights} ({SCHEMES[request.weights]}) of {source}")
        expected = expected_marker(request)
        if not request.force and reusable(out_dir, expected):
            step(total, total, f"up to date, nothing to do: {out_dir}")
            marker = read_marker(out_dir)
            assert marker is not None
            return marker
        work_dir = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
        shutil.rmtree(work_dir, ignore_errors=True)
        work_dir.mkdir(parents=True)
        try:
            step(2, total, "loading, computing round-to-nearest scales, packing (compressed-tensors)")
            started = time.monotonic()
            details = quantize_into(source, request.weights, work_dir)
            seconds = time.monotonic() - started
            step(3, total, f"saved in {seconds:.0f} s: {folder_bytes(work_dir) / 1e6:.0f} MB of weights "
                           f"(source {folder_bytes(source) / 1e6:.0f} MB)")
            marker = {
                **expected,
                **details,
                "quantized_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "seconds": round(seconds, 1),
                "weight_bytes": folder_bytes(work_dir),
                "source_weight_bytes": folder_bytes(source),
            }
            (work_dir / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
            replace_folder(work_dir, out_dir)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        step(4, total, f"quantized model saved: {out_dir}")
        return marker


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch.quantize",
        description=(
            "Quantize a model folder for vLLM on CPU (compressed-tensors, round-to-nearest): int8 = W8A8 (int8 "
            "weights per channel, int8 activations per token), int4 = W4A16 (4-bit weights per group). Skips the "
            "work when OUT already holds the same variant of the same source."
        ),
    )
    parser.add_argument("--model", type=Path, required=True, help="the unquantized model folder")
    parser.add_argument("--weights", choices=sorted(SCHEMES), required=True)
    parser.add_argument("--out", type=Path, help="output folder (default: MODEL-WEIGHTS next to MODEL)")
    parser.add_argument("--force", action="store_true", help="quantize again even when OUT is up to date")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; prints the marker as JSON on success."""
    args = _parser().parse_args(argv)
    out = args.out or variant_dir(args.model, args.weights)
    try:
        marker = quantize(QuantRequest(source=args.model, weights=args.weights, out_dir=out, force=args.force))
    except QuantizeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as error:
        print(f"error: {error.name} is not installed in {sys.executable}: run with .venv-vllm/bin/python "
              "(make install creates it)", file=sys.stderr)
        return 1
    print(json.dumps(marker))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
