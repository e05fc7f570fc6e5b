"""What the repository itself may hold: a fresh clone must build its own environments, so no virtual environment
(or a link to one) and no link out of the checkout is ever committed."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def tracked() -> list[str]:
    listing = subprocess.run(["git", "ls-files", "-s"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return listing.stdout.splitlines()


def test_no_environment_or_link_is_tracked() -> None:
    entries = [line.split(maxsplit=3) for line in tracked()]
    assert entries, "git ls-files listed nothing: not a checkout?"
    links = [path for mode, _, _, path in entries if mode == "120000"]
    assert links == [], f"symbolic links are tracked: {links}"
    environments = [path for *_, path in entries if path.split("/")[0] in (".venv", ".venv-vllm", ".cache", ".run")]
    assert environments == [], f"local environments or caches are tracked: {environments[:5]}"
