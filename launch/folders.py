"""Model folders written safely: one writer at a time, and a finished folder swapped in whole."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive_lock(out_dir: Path) -> Iterator[None]:
    """One writer into a folder at a time (make up, a benchmark and a test may start together)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with (out_dir.parent / f".{out_dir.name}.lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def replace_folder(work_dir: Path, out_dir: Path) -> None:
    """Swap the finished folder in, so a reader never sees a half-written one."""
    retired = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        out_dir.rename(retired)
    work_dir.rename(out_dir)
    shutil.rmtree(retired, ignore_errors=True)
