"""Compile the schema reader's hot modules with mypyc into .build/reader (run by `make install`).

    python -m launch.compile_reader [--out DIR] [--force]

gateway/schema_model stays pure Python and the source of truth: a copy of the package is compiled in a scratch
folder (mypyc ships with mypy, which the dev environment pins; it needs a C compiler and Python's headers), and
the extension modules go to DIR with a manifest of the sources they came from. The package uses them only while
the manifest matches (gateway/schema_model/compiled.py). Nothing to do when the build is current. A build that
fails is said, not an error: the reader then runs as plain Python, slower on big dumps and otherwise the same."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from gateway.schema_model import compiled

ROOT = Path(__file__).resolve().parents[1]


def say(message: str) -> None:
    print(f"compile_reader: {message}", file=sys.stderr, flush=True)


def build(out: Path, package: Path = compiled.PACKAGE) -> None:
    """Compile `package`'s MODULES into `out`; raises CalledProcessError (with mypyc's output) when it fails."""
    with tempfile.TemporaryDirectory(prefix="sqlgate-reader-build-") as scratch_name:
        scratch = Path(scratch_name)
        copy = scratch / "gateway" / "schema_model"
        shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        (scratch / "gateway" / "__init__.py").write_text("", encoding="utf-8")
        files = [f"gateway/schema_model/{name}.py" for name in compiled.MODULES]
        subprocess.run([sys.executable, "-m", "mypyc", *files], cwd=scratch, check=True, capture_output=True,
                       text=True, timeout=900)
        staged = out.with_name(out.name + ".new")
        shutil.rmtree(staged, ignore_errors=True)
        (staged / "gateway" / "schema_model").mkdir(parents=True)
        for extension in copy.glob("*.so"):
            shutil.copy2(extension, staged / "gateway" / "schema_model" / extension.name)
        for runtime in scratch.glob("*__mypyc*.so"):  # the build's shared runtime, a top-level module
            shutil.copy2(runtime, staged / runtime.name)
        (staged / compiled.MANIFEST).write_text(json.dumps(compiled.manifest_for(package), indent=2) + "\n",
                                                encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)
        staged.rename(out)  # whole or not at all: a half-copied build never meets a reader


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=compiled.DEFAULT_BUILD, help="where the build goes")
    parser.add_argument("--force", action="store_true", help="rebuild even when the build is current")
    args = parser.parse_args(argv)
    if not args.force and compiled.usable(args.out):
        say(f"{args.out} is current")
        return 0
    say(f"compiling {', '.join(compiled.MODULES)} with mypyc into {args.out} (about a minute)")
    started = time.monotonic()
    try:
        build(args.out)
    except subprocess.CalledProcessError as error:
        tail = "\n".join((error.stdout + error.stderr).strip().splitlines()[-15:])
        say(f"the build failed; the reader runs as plain Python (slower on big dumps, otherwise the same):\n{tail}")
        return 0
    except (OSError, subprocess.TimeoutExpired) as error:
        say(f"the build failed ({error}); the reader runs as plain Python (slower on big dumps, otherwise the same)")
        return 0
    say(f"built in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
