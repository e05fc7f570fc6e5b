"""Whether this package reads with its compiled build: its hot modules compiled by mypyc (launch/compile_reader.py,
run by `make install`) into .build/reader. Used only where the build's manifest names exactly these sources and
this interpreter, so an edited file, another Python or no build at all reads with the modules as they are (the
source of truth, and what a failed build leaves: reading a 1,000-table dump is then slower, not different).
SQLGATE_READER_PURE=1 turns the build off; SQLGATE_READER_BUILD points at another one (the build's own test)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import MutableSequence
from pathlib import Path

# The modules a 1,000-table dump spends its time in, compiled together (they call each other natively).
MODULES = ("lexer", "statements", "names", "kinds", "tables", "alter", "reader")
PACKAGE = Path(__file__).resolve().parent
DEFAULT_BUILD = PACKAGE.parents[1] / ".build" / "reader"
MANIFEST = "manifest.json"


def build_dir() -> Path:
    return Path(os.environ.get("SQLGATE_READER_BUILD") or DEFAULT_BUILD)


def sources(package: Path = PACKAGE) -> dict[str, str]:
    """Every module of the package by its SHA-256: the compiled modules' code and the types they were compiled
    against (model.py's Column, Table), so any edit anywhere in the package stops the build from being used."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(package.glob("*.py"))}


def manifest_for(package: Path = PACKAGE) -> dict[str, object]:
    return {"python": sys.implementation.cache_tag, "modules": list(MODULES), "sources": sources(package)}


def usable(build: Path, package: Path = PACKAGE) -> bool:
    """Whether `build` was compiled from exactly the sources in `package`, for this interpreter."""
    try:
        manifest = json.loads((build / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(manifest == manifest_for(package))


def use(package_path: MutableSequence[str]) -> bool:
    """Put the build first on the package's search path when it may be used; whether it was."""
    if os.environ.get("SQLGATE_READER_PURE") == "1":
        return False
    build = build_dir()
    if not usable(build):
        return False
    package_path.insert(0, str(build / "gateway" / "schema_model"))
    if str(build) not in sys.path:
        sys.path.append(str(build))  # mypyc's shared runtime module, named after the build's hash
    return True
