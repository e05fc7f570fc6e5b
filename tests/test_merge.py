"""launch.merge, run as `make up` runs it (.venv-vllm): a tiny random Qwen2 base with the real Qwen tokenizer and
a LoRA adapter made here with peft; the merged weights must be base + B @ A * scale."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer

from launch.merge import MARKER_FILE, SAMPLING_KEYS
from launch.tiny_model import SINGER_EXAMPLE, training_prompt

REPO_ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = Path(os.environ.get("SQLGATE_VLLM_PYTHON", REPO_ROOT / ".venv-vllm" / "bin" / "python"))
SUBPROCESS_TIMEOUT_S = 600

pytestmark = pytest.mark.slow

# Runs in .venv-vllm. argv: what ("base" | "mute-base" | "adapter"), output folder, seed, base folder.
BUILD_SCRIPT = r"""
import json, sys
from pathlib import Path
import torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM
from launch.tiny_model import QWEN25_CHAT_TEMPLATE, tokenizer_files_dir

what, out, seed = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(seed)
if what in ("base", "mute-base"):
    mute = what == "mute-base"
    config = Qwen2Config(
        vocab_size=151936, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        intermediate_size=128, max_position_embeddings=1024, tie_word_embeddings=not mute,
        bos_token_id=151643, eos_token_id=151645, pad_token_id=151643,
    )
    model = Qwen2ForCausalLM(config)
    if mute:
        # Every position carries the same residual vector and only <|im_end|> scores: the first greedy token
        # ends the answer, so the model "generates nothing".
        with torch.no_grad():
            model.model.embed_tokens.weight.zero_()
            model.model.embed_tokens.weight[:, 0] = 1.0
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            model.model.norm.weight.zero_()
            model.model.norm.weight[0] = 1.0
            model.lm_head.weight.zero_()
            model.lm_head.weight[151645, 0] = 10.0
    model.to(torch.bfloat16).save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_files_dir()), local_files_only=True)
    tokenizer.chat_template = QWEN25_CHAT_TEMPLATE
    tokenizer.eos_token, tokenizer.pad_token = "<|im_end|>", "<|endoftext|>"
    tokenizer.save_pretrained(out)
    # The sampling defaults Qwen2.5-Instruct ships, which the merge must drop.
    (out / "generation_config.json").write_text(json.dumps({
        "bos_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643], "pad_token_id": 151643,
        "repetition_penalty": 1.1, "temperature": 0.7, "top_k": 20, "top_p": 0.8,
    }))
else:
    from peft import LoraConfig, get_peft_model
    base = Qwen2ForCausalLM.from_pretrained(sys.argv[4], dtype=torch.float32)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:  # peft starts B at zero, which would make the merge a no-op
                parameter.normal_(0.0, 0.5)
    peft_model.save_pretrained(out)
"""

# Runs in .venv-vllm: compares the merged weights with base + B @ A * (alpha / r), in float32.
CHECK_SCRIPT = r"""
import json, sys
from pathlib import Path
import torch
from safetensors.torch import load_file

base_dir, adapter_dir, merged_dir = map(Path, sys.argv[1:4])
base = load_file(base_dir / "model.safetensors")
merged = load_file(merged_dir / "model.safetensors")
adapter = load_file(adapter_dir / "adapter_model.safetensors")
config = json.loads((adapter_dir / "adapter_config.json").read_text())
scale = config["lora_alpha"] / config["r"]
report = {"targeted": 0, "worst_relative_error": 0.0, "smallest_delta_norm": float("inf"), "untouched_equal": True,
          "dtypes": sorted({str(t.dtype) for t in merged.values()})}
for key, weight in base.items():
    module = key.removesuffix(".weight")
    a_key = f"base_model.model.{module}.lora_A.weight"
    if a_key not in adapter:
        report["untouched_equal"] &= bool(torch.equal(weight, merged[key]))
        continue
    delta = scale * adapter[f"base_model.model.{module}.lora_B.weight"].float() @ adapter[a_key].float()
    expected = weight.float() + delta
    error = (merged[key].float() - expected).norm() / delta.norm()
    report["targeted"] += 1
    report["worst_relative_error"] = max(report["worst_relative_error"], float(error))
    report["smallest_delta_norm"] = min(report["smallest_delta_norm"], float(delta.norm()))
print(json.dumps(report))
"""


def run_vllm_python(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if not os.access(VLLM_PYTHON, os.X_OK):
        pytest.fail(f"no vLLM Python at {VLLM_PYTHON}: create .venv-vllm (make install) or set SQLGATE_VLLM_PYTHON")
    return subprocess.run(
        [str(VLLM_PYTHON), *args],
        cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )


def build(what: str, out: Path, seed: int, base: Path | None = None) -> Path:
    done = run_vllm_python("-c", BUILD_SCRIPT, what, str(out), str(seed), str(base or ""))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def run_merge(base: Path | str, adapter: Path | str, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_vllm_python("-m", "launch.merge", "--base", str(base), "--adapter", str(adapter), "--out", str(out),
                           env=env)


def check_weights(base: Path, adapter: Path, merged: Path) -> dict[str, Any]:
    done = run_vllm_python("-c", CHECK_SCRIPT, str(base), str(adapter), str(merged))
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("base", tmp_path_factory.mktemp("merge") / "base", seed=1)


def test_merge_writes_base_plus_lora_delta_with_tokenizer_and_greedy_config(tiny_base: Path, tmp_path: Path) -> None:
    adapter = build("adapter", tmp_path / "adapter", seed=2, base=tiny_base)
    out = tmp_path / "merged"

    first = run_merge(tiny_base, adapter, out)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "[merge 4/5] verifying" in first.stderr
    marker = json.loads(first.stdout)
    assert marker == json.loads((out / MARKER_FILE).read_text())
    assert marker["base_model"] == str(tiny_base) and marker["adapter"] == str(adapter)
    assert marker["verification_output"].strip()

    report = check_weights(tiny_base, adapter, out)
    assert report["targeted"] == 4  # q_proj and v_proj in 2 layers
    assert report["smallest_delta_norm"] > 1.0  # the adapter really changes the weights...
    assert report["worst_relative_error"] < 0.02  # ...and the merge applied exactly that change (bf16 rounding)
    assert report["untouched_equal"]
    assert report["dtypes"] == ["torch.bfloat16"]

    saved = Tokenizer.from_file(str(out / "tokenizer.json"))
    source = Tokenizer.from_file(str(tiny_base / "tokenizer.json"))
    prompt = training_prompt(SINGER_EXAMPLE["question"], SINGER_EXAMPLE["context"])
    assert saved.encode(prompt).ids == source.encode(prompt).ids
    assert saved.token_to_id("<|im_end|>") == 151645

    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["do_sample"] is False
    assert not set(SAMPLING_KEYS) & set(generation)
    assert generation["eos_token_id"] == [151645, 151643]
    assert not list(tmp_path.glob(".merged.partial-*"))

    # Second run: the folder is complete and the marker matches, so nothing is rewritten.
    weights_mtime = (out / "model.safetensors").stat().st_mtime_ns
    second = run_merge(tiny_base, adapter, out)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "up to date" in second.stderr
    assert json.loads(second.stdout) == marker
    assert (out / "model.safetensors").stat().st_mtime_ns == weights_mtime

    # The same adapter path with different weights: merged again, and the new weights are in.
    shutil.rmtree(adapter)
    build("adapter", adapter, seed=3, base=tiny_base)
    third = run_merge(tiny_base, adapter, out)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "up to date" not in third.stderr
    assert json.loads(third.stdout)["adapter_sha256"] != marker["adapter_sha256"]
    assert check_weights(tiny_base, adapter, out)["worst_relative_error"] < 0.02


def test_merge_fails_loudly_when_the_model_generates_nothing(tmp_path: Path) -> None:
    base = build("mute-base", tmp_path / "mute-base", seed=4)
    adapter = build("adapter", tmp_path / "adapter", seed=5, base=base)
    out = tmp_path / "merged"

    done = run_merge(base, adapter, out)

    assert done.returncode == 1
    assert "generated nothing for the training prompt" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()  # no half-verified folder for vLLM to pick up
    assert not list(tmp_path.glob(".merged.partial-*"))


def test_merge_offline_and_not_cached_is_one_clear_error(tmp_path: Path) -> None:
    done = run_merge("Qwen/Qwen2.5-1.5B-Instruct", "samrat-kar/qwen2.5-1.5b-sql-qlora", tmp_path / "merged",
                     HF_HOME=str(tmp_path / "empty-hf-home"))

    assert done.returncode == 1
    assert "HF_HUB_OFFLINE is set and it is not in the Hugging Face cache" in done.stderr
    assert "samrat-kar/qwen2.5-1.5b-sql-qlora" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "merged").exists()


def test_merge_refuses_a_folder_that_is_not_an_adapter(tiny_base: Path, tmp_path: Path) -> None:
    done = run_merge(tiny_base, tiny_base, tmp_path / "merged")

    assert done.returncode == 1
    assert "is not a PEFT adapter" in done.stderr
    assert "Traceback" not in done.stderr
