"""launch.quantize, run as `make up` runs it (.venv-vllm), on a tiny random Qwen2 with the real Qwen tokenizer:
the folder is in the compressed-tensors format vLLM reads, the stored integers times their scales give back the
weights to within half a quantization step, and a second run does nothing unless the source changed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from launch.quantize import MARKER_FILE

REPO_ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = Path(os.environ.get("SQLGATE_VLLM_PYTHON", REPO_ROOT / ".venv-vllm" / "bin" / "python"))
SUBPROCESS_TIMEOUT_S = 600

pytestmark = pytest.mark.slow

# Runs in .venv-vllm. argv: output folder. hidden 64 / intermediate 128: the int4 group size must come down to 64.
BUILD_SCRIPT = r"""
import sys
import torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM
from launch.tiny_model import QWEN25_CHAT_TEMPLATE, tokenizer_files_dir

torch.manual_seed(0)
config = Qwen2Config(
    vocab_size=151936, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
    intermediate_size=128, max_position_embeddings=1024, tie_word_embeddings=True,
    bos_token_id=151643, eos_token_id=151645, pad_token_id=151643,
)
Qwen2ForCausalLM(config).to(torch.bfloat16).save_pretrained(sys.argv[1])
tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_files_dir()), local_files_only=True)
tokenizer.chat_template = QWEN25_CHAT_TEMPLATE
tokenizer.save_pretrained(sys.argv[1])
"""

# Runs in .venv-vllm. argv: source folder, quantized folder, bits. Prints, per projection, the largest error of
# the dequantized weight in units of half its quantization step (<= 1 means round-to-nearest held), and the share
# of weights within half a step.
CHECK_SCRIPT = r"""
import json, sys
import torch
from safetensors.torch import load_file
from compressed_tensors.compressors.pack_quantized.helpers import unpack_from_int32

source = load_file(sys.argv[1] + "/model.safetensors")
quantized = load_file(sys.argv[2] + "/model.safetensors")
bits = int(sys.argv[3])
worst, within = {}, {}
for name, original in source.items():
    if not name.endswith("_proj.weight"):
        continue
    prefix = name.removesuffix(".weight")
    scale = quantized[prefix + ".weight_scale"].float()
    if bits == 8:
        integers = quantized[prefix + ".weight"]
        assert integers.dtype == torch.int8, integers.dtype
        restored, step = integers.float() * scale, scale.expand_as(original)
    else:
        shape = torch.Size(quantized[prefix + ".weight_shape"].tolist())
        integers = unpack_from_int32(quantized[prefix + ".weight_packed"], 4, shape)
        assert int(integers.min()) >= -8 and int(integers.max()) <= 7
        group = shape[1] // scale.shape[1]
        step = scale.repeat_interleave(group, dim=1)
        restored = integers.float() * step
    error = (restored - original.float()).abs() / (step / 2)
    worst[prefix] = float(error.max())
    within[prefix] = float((error <= 1.01).float().mean())
head = quantized.get("lm_head.weight")
print(json.dumps({"worst": worst, "within": within, "head_kept": head is None or head.dtype == torch.bfloat16,
                  "embeddings": str(quantized["model.embed_tokens.weight"].dtype)}))
"""


def in_vllm_env(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VLLM_PYTHON), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S,
        check=False, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip


def quantize(source: Path, weights: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return in_vllm_env("-m", "launch.quantize", "--model", str(source), "--weights", weights, "--out", str(out),
                       *extra)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not os.access(VLLM_PYTHON, os.X_OK):
        pytest.fail(f"no vLLM Python at {VLLM_PYTHON}: make install, or deselect with -m 'not slow'")
    folder = tmp_path_factory.mktemp("tiny-base")
    done = in_vllm_env("-c", BUILD_SCRIPT, str(folder))
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


@pytest.mark.parametrize(("weights", "bits", "fmt"), [("int8", 8, "int-quantized"), ("int4", 4, "pack-quantized")])
def test_quantized_folder_is_compressed_tensors_and_restores_the_weights(
    tiny_base: Path, tmp_path: Path, weights: str, bits: int, fmt: str
) -> None:
    out = tmp_path / weights
    done = quantize(tiny_base, weights, out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[quantize 4/4] quantized model saved" in done.stderr  # progress is shown

    config: dict[str, Any] = json.loads((out / "config.json").read_text())["quantization_config"]
    assert config["quant_method"] == "compressed-tensors" and config["format"] == fmt
    assert config["ignore"] == ["lm_head"]
    group = config["config_groups"]["group_0"]
    assert group["weights"]["num_bits"] == bits
    if weights == "int8":
        assert group["input_activations"]["dynamic"] is True and group["input_activations"]["strategy"] == "token"
    else:
        assert group["weights"]["group_size"] == 64 and group["input_activations"] is None
    marker = json.loads((out / MARKER_FILE).read_text())
    assert marker["weights"] == weights and marker["layers"] == 14  # 7 projections in each of 2 layers
    assert (out / "tokenizer.json").is_file() and (out / "generation_config.json").is_file()

    check = in_vllm_env("-c", CHECK_SCRIPT, str(tiny_base), str(out), str(bits))
    assert check.returncode == 0, check.stderr[-3000:]
    result = json.loads(check.stdout.strip().splitlines()[-1])
    assert len(result["worst"]) == 14
    # Half a step, but for a row's (or group's) largest value when the bf16-rounded scale came out a hair small
    # and the value was clamped to the end of the range.
    assert max(result["worst"].values()) <= 1.1, result["worst"]
    assert min(result["within"].values()) >= 0.99, result["within"]
    assert result["head_kept"] and result["embeddings"] == "torch.bfloat16"


def test_second_run_reuses_the_folder_until_the_source_changes(tiny_base: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8"
    assert quantize(tiny_base, "int8", out).returncode == 0
    weights_file = out / "model.safetensors"
    first = weights_file.stat().st_mtime_ns

    again = quantize(tiny_base, "int8", out)
    assert again.returncode == 0 and "up to date, nothing to do" in again.stderr
    assert weights_file.stat().st_mtime_ns == first

    changed = tmp_path / "changed-base"
    changed.mkdir()
    for path in tiny_base.iterdir():
        (changed / path.name).write_bytes(path.read_bytes())
    redo = quantize(changed, "int8", out)
    assert redo.returncode == 0 and "up to date" not in redo.stderr
    assert json.loads((out / MARKER_FILE).read_text())["source"] == str(changed.resolve())


def test_a_quantized_folder_or_a_folder_without_weights_is_refused(tiny_base: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8"
    assert quantize(tiny_base, "int8", out).returncode == 0
    twice = quantize(out, "int4", tmp_path / "int8-int4")
    assert twice.returncode == 1 and "already a quantized variant" in twice.stderr

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    refused = quantize(empty, "int8", tmp_path / "empty-int8")
    assert refused.returncode == 1 and "is not a model folder" in refused.stderr
