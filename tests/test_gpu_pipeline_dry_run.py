"""Every code path of the GPU pipeline benchmark, on this machine: the fleet of fake vLLM servers
(benchmarks/fake_spec_vllm.py) started the way the GPU host starts the real ones, then every phase against them
through the real gateway. Its figures are the fakes' and mean nothing; what it proves is that the next GPU lease
will not be spent on a broken script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import gpu_fleet
from benchmarks.gpu_pipeline import PHASES
from benchmarks.quality import default_file

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_pipeline_runs_every_phase_against_a_fake_fleet(tmp_path: Path) -> None:
    if not default_file().exists():  # (a clone outside the workspace: the corpus tests skip alike)
        pytest.skip(f"the Spider rows are not on this machine ({default_file()})")
    fleet_dir, out = tmp_path / "fleet", tmp_path / "out" / "gpu_pipeline.json"
    out.parent.mkdir()
    started = subprocess.run([sys.executable, "-m", "benchmarks.gpu_fleet", "start", "--dir", str(fleet_dir),
                              "--dry-run"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    try:
        assert started.returncode == 0, started.stderr
        assert set(gpu_fleet.urls(gpu_fleet.load(fleet_dir))) == {server.name for server in gpu_fleet.SERVERS}
        run = subprocess.run([sys.executable, "-m", "benchmarks.gpu_pipeline", "--fleet", str(fleet_dir), "--out",
                              str(out), "--dry-run"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                             check=False)
        assert run.returncode == 0, run.stderr[-3000:]
    finally:
        gpu_fleet.stop(fleet_dir)
    body = json.loads(out.read_text())
    assert body.get("errors") is None, body.get("errors")
    assert body["phases_done"] == list(PHASES)
    assert body["summary"]["dry_run"] is True and body["summary"]["target_met"] is False
    rows = [json.loads(line) for line in (out.parent / "gpu_quality_rows.jsonl").read_text().splitlines()]
    assert rows and all(len(row["direct_samples"]) == 2 and row["gateway_status"] == 200 for row in rows)
    assert all(row["gateway_agreement_detail"]["candidates"] == 9 for row in rows)  # greedy + k = 8 (GPU default)
    quality = json.loads((out.parent / "gpu_quality.json").read_text())
    assert quality["design"]["candidate_step"] | {"sampling": None, "other_settings": None} == {
        "k": 8, "budget_s": 1.5, "strategy": "sample", "policy": "always", "sampling": None, "other_settings": None}
