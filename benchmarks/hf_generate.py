"""The seed's free-tier serving path: plain transformers `generate` in float32 on the CPU, one request at a time,
greedy, exactly `--new-tokens` tokens per answer (min_new_tokens = max_new_tokens). Runs in the vLLM environment
(torch + transformers); prints one JSON object with each request's service time.

    .venv-vllm/bin/python -m benchmarks.hf_generate --model DIR --prompts prompts.json --new-tokens 32
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def run(model_dir: Path, prompts: list[str], new_tokens: int, warmup: int) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    load_started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True, torch_dtype=torch.float32)
    model.eval()
    load_s = time.perf_counter() - load_started
    settings = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False,
                "pad_token_id": tokenizer.pad_token_id}

    def one(prompt: str) -> tuple[float, int, int]:
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        started = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(**ids, **settings)
        elapsed = time.perf_counter() - started
        prompt_tokens = int(ids["input_ids"].shape[1])
        return elapsed, prompt_tokens, int(output.shape[1]) - prompt_tokens

    for prompt in prompts[:warmup]:
        one(prompt)
    service_s, prompt_tokens, new = [], [], []
    for prompt in prompts[warmup:]:
        elapsed, n_prompt, n_new = one(prompt)
        service_s.append(elapsed)
        prompt_tokens.append(n_prompt)
        new.append(n_new)
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "dtype": "float32", "load_s": round(load_s,
            2), "warmup_requests": warmup, "service_s": service_s, "prompt_tokens": prompt_tokens,
            "new_tokens": new}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hf_generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--prompts", type=Path, required=True, help="JSON list of rendered prompts")
    parser.add_argument("--new-tokens", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=1, help="leading prompts run but not timed")
    args = parser.parse_args(argv)
    prompts = json.loads(args.prompts.read_text())
    print(json.dumps(run(args.model, prompts, args.new_tokens, args.warmup)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
