"""Which model answers: part of every cache key, so that a new merge, a quantized variant or another model
never serves an answer the old one wrote. Derived, never configured: vLLM's /v1/models names the folder it
serves, and the folder's own files say what is in it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Protocol

import orjson

# Files whose content identifies a model folder's weights cheaply (the weights themselves are gigabytes).
MARKER_FILES = ("sqlgate-merge.json", "sqlgate-quantize.json", "config.json", "generation_config.json")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")
LOOKUP_TIMEOUT_S = 2.0


class ModelLister(Protocol):
    async def served_models(self, timeout_s: float) -> list[dict[str, Any]]: ...


def folder_fingerprint(folder: Path) -> str | None:
    """A digest of the folder's marker files and its weight files' names and sizes; None if it is not readable."""
    try:
        digest = hashlib.sha256()
        for name in MARKER_FILES:
            path = folder / name
            if path.is_file():
                digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        for path in sorted(folder.iterdir()):
            if path.suffix in WEIGHT_SUFFIXES:
                digest.update(f"{path.name}:{path.stat().st_size}\0".encode())
    except OSError:
        return None
    return digest.hexdigest()[:32]


class ModelFingerprint:
    """The served model's identity. Until the upstream has named its folder (the readiness watcher asks once vLLM
    generates, and again whenever it comes back), the served model's name stands in for it."""

    def __init__(self, upstream: ModelLister, served_model: str) -> None:
        self._upstream = upstream
        self._served_model = served_model
        self._resolved: str | None = None

    @property
    def current(self) -> str:
        return self._resolved if self._resolved is not None else f"name:{self._served_model}"

    async def refresh(self) -> None:
        """Ask the upstream which folder it serves; keeps the last answer when it can't say."""
        found = await self._resolve()
        if found is not None:
            self._resolved = found

    async def _resolve(self) -> str | None:
        entries = await self._upstream.served_models(LOOKUP_TIMEOUT_S)
        entry = next((e for e in entries if e.get("id") == self._served_model), None)
        if entry is None:
            return None
        root = str(entry.get("root") or "")
        folder = Path(root) if root else None
        if folder is not None and folder.is_dir():
            local = folder_fingerprint(folder)
            if local is not None:
                return f"folder:{local}"
        # A hub id or a folder on another machine: its name (and a revision when vLLM reports one).
        identity = {"id": entry.get("id"), "root": root, "parent": entry.get("parent")}
        return "upstream:" + hashlib.sha256(orjson.dumps(identity)).hexdigest()[:32]
