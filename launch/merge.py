"""Merge the SQL LoRA adapter into its bf16 base model and save a folder vLLM can serve with greedy defaults.

Run with the vLLM environment: ``.venv-vllm/bin/python -m launch.merge --help``. Idempotent: a folder whose
marker matches the requested base, adapter and adapter weights is left alone. torch, transformers, peft and
huggingface_hub are imported only when needed, so an up-to-date folder is confirmed in about a second.
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
from typing import Any, Final

from launch.folders import exclusive_lock, replace_folder
from launch.tiny_model import SINGER_EXAMPLE, training_prompt

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_BASE_MODEL: Final = "Qwen/Qwen2.5-1.5B-Instruct"
DEFAULT_ADAPTER: Final = "samrat-kar/qwen2.5-1.5b-sql-qlora"
DEFAULT_MERGED_DIR: Final = REPO_ROOT / "models" / "qwen2.5-1.5b-sql-merged"
BASE_MODEL_ENV: Final = "SQLGATE_BASE_MODEL"
ADAPTER_ENV: Final = "SQLGATE_ADAPTER"
MERGED_DIR_ENV: Final = "SQLGATE_MERGED_DIR"

MARKER_FILE: Final = "sqlgate-merge.json"
# Bump when the merge changes in a way that changes the folder it writes.
CODE_VERSION: Final = 1
# Sampling defaults that vLLM would otherwise apply silently from generation_config.json (FACTS.md).
SAMPLING_KEYS: Final = ("temperature", "top_p", "top_k", "min_p", "typical_p", "repetition_penalty")
VERIFY_MAX_NEW_TOKENS: Final = 48

_ADAPTER_FILES: Final = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
_TOKENIZER_FILES: Final = (
    "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json",
    "added_tokens.json", "chat_template.jinja",
)  # fmt: skip
_MODEL_PATTERNS: Final = ["*.json", "*.safetensors", "*.txt", "*.jinja", "*.model"]


class MergeError(RuntimeError):
    """The merge cannot be done or its result does not generate; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class MergeRequest:
    """What to merge and where to put it."""

    base: str
    adapter: str
    out_dir: Path
    base_revision: str | None = None
    adapter_revision: str | None = None
    force: bool = False


@dataclasses.dataclass(frozen=True)
class Source:
    """A model or adapter resolved to a local folder, with what identifies its content."""

    requested: str
    folder: Path
    revision: str | None  # the hub commit, or None for a local folder


def step(number: int, total: int, message: str) -> None:
    """One progress line on stderr (downloads and shard loading add their own tqdm bars)."""
    print(f"[merge {number}/{total}] {message}", file=sys.stderr, flush=True)


def is_local(reference: str) -> bool:
    """A local folder rather than a hub id."""
    return Path(reference).expanduser().is_dir()


def _hub_errors() -> tuple[type[BaseException], ...]:
    errors = importlib.import_module("huggingface_hub.errors")
    return (errors.LocalEntryNotFoundError, errors.HfHubHTTPError, errors.HFValidationError)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def fetch(reference: str, revision: str | None, patterns: list[str], what: str) -> Source:
    """A local folder as is, or a hub snapshot (from the cache when offline); clear errors, no traceback wall."""
    if is_local(reference):
        return Source(reference, Path(reference).expanduser().resolve(), None)
    hub = importlib.import_module("huggingface_hub")
    try:
        folder = Path(hub.snapshot_download(reference, revision=revision, allow_patterns=patterns))
    except _hub_errors() as error:
        hint = (
            "HF_HUB_OFFLINE is set and it is not in the Hugging Face cache"
            if _offline()
            else "it could not be downloaded (no network to huggingface.co, a wrong id, or a gated repo)"
        )
        raise MergeError(
            f"{what} {reference!r}: {hint}.\n"
            f"  first line of the hub's answer: {str(error).strip().splitlines()[0] if str(error).strip() else ''}\n"
            f"  fix: run once with network, or pass a local folder (--{what.split()[0]} DIR)"
        ) from None
    # Snapshot folders are named after the commit they hold.
    return Source(reference, folder, folder.name)


def adapter_digest(folder: Path) -> str:
    """SHA-256 over the adapter's config and weights: a changed adapter means a new merge."""
    digest = hashlib.sha256()
    found = False
    for name in _ADAPTER_FILES:
        path = folder / name
        if path.is_file():
            found = found or name != "adapter_config.json"
            digest.update(name.encode() + b"\0")
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    if not (folder / "adapter_config.json").is_file() or not found:
        raise MergeError(
            f"{folder} is not a PEFT adapter (adapter_config.json and adapter_model.safetensors/.bin expected)"
        )
    return digest.hexdigest()


def base_fingerprint(source: Source) -> str:
    """The hub commit, or for a local folder a digest of its file names, sizes and modification times."""
    if source.revision is not None:
        return source.revision
    digest = hashlib.sha256()
    for path in sorted(source.folder.iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return "local:" + digest.hexdigest()[:16]


def expected_marker(request: MergeRequest, adapter: Source, adapter_sha256: str) -> dict[str, Any]:
    """The marker fields that must match for a folder to be reused (the base is checked separately)."""
    return {
        "code_version": CODE_VERSION,
        "base_model": request.base,
        "adapter": request.adapter,
        "adapter_revision": adapter.revision,
        "adapter_sha256": adapter_sha256,
        "dtype": "bfloat16",
    }


def folder_complete(out_dir: Path) -> bool:
    """config, greedy generation config, tokenizer and every weight shard are present."""
    required = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", MARKER_FILE)
    if not all((out_dir / name).is_file() for name in required):
        return False
    index = out_dir / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return all((out_dir / shard).is_file() for shard in shards)
    return (out_dir / "model.safetensors").is_file()


def read_marker(out_dir: Path) -> dict[str, Any] | None:
    """The marker of a previous merge, or None when absent or unreadable."""
    try:
        marker = json.loads((out_dir / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def reusable(out_dir: Path, expected: dict[str, Any], request: MergeRequest) -> bool:
    """True when `out_dir` already holds this merge: complete, and the marker matches what is asked for."""
    marker = read_marker(out_dir)
    if marker is None or not folder_complete(out_dir):
        return False
    if any(marker.get(key) != value for key, value in expected.items()):
        return False
    if request.base_revision is not None and marker.get("base_revision") != request.base_revision:
        return False
    # A local base folder that changed since the merge invalidates it; a hub base is pinned by its commit.
    if is_local(request.base):
        local = Source(request.base, Path(request.base).expanduser().resolve(), None)
        return bool(marker.get("base_revision") == base_fingerprint(local))
    return True


def greedy_generation_config(base_folder: Path, tokenizer: Any) -> dict[str, Any]:
    """The base's generation_config.json without sampling defaults, do_sample false (FACTS.md)."""
    path = base_folder / "generation_config.json"
    config: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    for key in SAMPLING_KEYS:
        config.pop(key, None)
    config["do_sample"] = False
    if "eos_token_id" not in config and tokenizer.eos_token_id is not None:
        config["eos_token_id"] = tokenizer.eos_token_id
    if "pad_token_id" not in config and tokenizer.pad_token_id is not None:
        config["pad_token_id"] = tokenizer.pad_token_id
    return config


def _eos_ids(config: dict[str, Any], tokenizer: Any) -> list[int]:
    value = config.get("eos_token_id", tokenizer.eos_token_id)
    ids = value if isinstance(value, list) else [value]
    return [int(token) for token in ids if token is not None]


def verify_generates(folder: Path) -> str:
    """Reload the saved folder and decode the singer question greedily; raise when nothing comes out."""
    torch = importlib.import_module("torch")
    transformers = importlib.import_module("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), dtype=torch.bfloat16, local_files_only=True
    )
    model.eval()
    config = json.loads((folder / "generation_config.json").read_text())
    eos_ids = _eos_ids(config, tokenizer)
    prompt = training_prompt(SINGER_EXAMPLE["question"], SINGER_EXAMPLE["context"])
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(
            **inputs,
            max_new_tokens=VERIFY_MAX_NEW_TOKENS,
            do_sample=False,
            eos_token_id=eos_ids,
            pad_token_id=config.get("pad_token_id", eos_ids[0] if eos_ids else None),
        )
    new_tokens = [int(token) for token in output[0, inputs["input_ids"].shape[1] :]]
    for position, token in enumerate(new_tokens):
        if token in eos_ids:
            new_tokens = new_tokens[:position]
            break
    text = str(tokenizer.decode(new_tokens, skip_special_tokens=True))
    if not text.strip():
        raise MergeError(
            f"the merged model generated nothing for the training prompt ({len(new_tokens)} tokens before "
            "end of sequence): check the adapter, the base model and the tokenizer's eos/pad tokens"
        )
    return text


def _save_tokenizer(adapter: Source, base: Source, out_dir: Path) -> Any:
    """The tokenizer the adapter was saved with (what training used), else the base's."""
    transformers = importlib.import_module("transformers")
    origin = adapter.folder if (adapter.folder / "tokenizer_config.json").is_file() else base.folder
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(origin), local_files_only=True)
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def merge_into(base: Source, adapter: Source, work_dir: Path) -> Any:
    """Load the base in bf16, apply and merge the adapter, save weights and tokenizer into `work_dir`."""
    torch = importlib.import_module("torch")
    transformers = importlib.import_module("transformers")
    peft = importlib.import_module("peft")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(base.folder), dtype=torch.bfloat16, local_files_only=True
    )
    merged = peft.PeftModel.from_pretrained(model, str(adapter.folder)).merge_and_unload()
    merged.save_pretrained(str(work_dir))
    return _save_tokenizer(adapter, base, work_dir)


def merge(request: MergeRequest) -> dict[str, Any]:
    """Merge (or confirm an up-to-date merge) and return the marker written to the folder."""
    total = 5
    out_dir = request.out_dir.resolve()
    with exclusive_lock(out_dir):
        step(1, total, f"adapter {request.adapter}")
        adapter = fetch(request.adapter, request.adapter_revision, list(_ADAPTER_FILES) + list(_TOKENIZER_FILES),
                        "adapter")
        sha256 = adapter_digest(adapter.folder)
        expected = expected_marker(request, adapter, sha256)
        if not request.force and reusable(out_dir, expected, request):
            step(total, total, f"up to date, nothing to do: {out_dir}")
            marker = read_marker(out_dir)
            assert marker is not None
            return marker

        step(2, total, f"base model {request.base} (downloads ~3 GB the first time)")
        base = fetch(request.base, request.base_revision, _MODEL_PATTERNS, "base model")
        if not (base.folder / "config.json").is_file():
            raise MergeError(f"base model folder {base.folder} has no config.json")

        work_dir = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
        shutil.rmtree(work_dir, ignore_errors=True)
        work_dir.mkdir(parents=True)
        try:
            step(3, total, "loading the base in bf16, applying the adapter, merge_and_unload, saving")
            started = time.monotonic()
            tokenizer = merge_into(base, adapter, work_dir)
            # save_pretrained wrote the base's sampling defaults; vLLM must see greedy ones.
            config = greedy_generation_config(base.folder, tokenizer)
            (work_dir / "generation_config.json").write_text(json.dumps(config, indent=2) + "\n")
            merge_seconds = time.monotonic() - started

            step(4, total, "verifying: greedy generation with the training prompt")
            sample = verify_generates(work_dir)
            print(f"  generated: {sample.strip()[:200]!r}", file=sys.stderr)
            if "select" not in sample.lower():
                print("  warning: that does not look like a SELECT; check the adapter", file=sys.stderr)

            marker = {
                **expected,
                "base_revision": base_fingerprint(base),
                "merged_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "merge_seconds": round(merge_seconds, 1),
                "verification_output": sample[:500],
            }
            (work_dir / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
            replace_folder(work_dir, out_dir)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        step(5, total, f"merged model saved: {out_dir}")
        return marker


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch.merge",
        description=(
            "Merge a LoRA adapter into its base model (bf16, peft merge_and_unload), save it with its tokenizer "
            "and a greedy generation_config.json, and check that it generates. Skips the work when OUT already "
            "holds the same merge. Hub ids are downloaded (or read from the cache with HF_HUB_OFFLINE=1); "
            "local folders work offline."
        ),
    )
    add = parser.add_argument
    add("--base", default=os.environ.get(BASE_MODEL_ENV, DEFAULT_BASE_MODEL),
        help=f"base model id or folder (${BASE_MODEL_ENV}, default %(default)s)")
    add("--base-revision", help="hub revision of the base model (default: main)")
    add("--adapter", default=os.environ.get(ADAPTER_ENV, DEFAULT_ADAPTER),
        help=f"LoRA adapter id or folder (${ADAPTER_ENV}, default %(default)s)")
    add("--adapter-revision", help="hub revision of the adapter (default: main)")
    add("--out", type=Path, default=Path(os.environ.get(MERGED_DIR_ENV, DEFAULT_MERGED_DIR)),
        help=f"folder to write the merged model into (${MERGED_DIR_ENV}, default %(default)s)")
    add("--force", action="store_true", help="merge again even when OUT is up to date")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; prints the marker as JSON on success."""
    args = _parser().parse_args(argv)
    request = MergeRequest(
        base=args.base,
        adapter=args.adapter,
        out_dir=args.out,
        base_revision=args.base_revision,
        adapter_revision=args.adapter_revision,
        force=args.force,
    )
    try:
        marker = merge(request)
    except MergeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as error:
        print(
            f"error: {error.name} is not installed in {sys.executable}: run the merge with .venv-vllm/bin/python "
            "(make install creates it)",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(marker))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
