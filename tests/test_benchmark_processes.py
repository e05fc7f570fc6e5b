"""Benchmarks stop what they started: `kill PID` of a benchmark runs its cleanup (benchmarks/processes.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys, time
from benchmarks.processes import exit_cleanly_on_sigterm
exit_cleanly_on_sigterm()
try:
    print("ready", flush=True)
    time.sleep(60)
finally:
    open(sys.argv[1], "w").write("cleaned up")
"""


def test_sigterm_runs_the_benchmark_s_cleanup(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with subprocess.Popen([sys.executable, "-c", SCRIPT, str(marker)], stdout=subprocess.PIPE, text=True,
                          cwd=Path(__file__).resolve().parents[1]) as child:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        child.terminate()
        assert child.wait(timeout=30) == 128 + 15
    assert marker.read_text() == "cleaned up"
