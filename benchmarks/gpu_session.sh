#!/usr/bin/env bash
# The device calls of one GPU session for reports/gpu_pipeline.json (docs/benchmarks.md §4), one step per call:
#
#   bash benchmarks/gpu_session.sh pieces       here, once: the vLLM bundle's pieces re-cut to 44 MiB (.gpu/c0..c4)
#   bash benchmarks/gpu_session.sh bundle N     carrying .gpu/cN         (N = 0..4: the vLLM 0.26 bundle, 44 MiB pieces)
#   bash benchmarks/gpu_session.sh model N      carrying .gpu/coder/mN   (N = 0..10: the real 0.5B's GGUF pieces)
#   bash benchmarks/gpu_session.sh setup        carrying .gpu/coder/m10 and .whl: install, convert, start every
#                                               server (benchmarks/gpu_fleet.py), then measure until the call's end
#   bash benchmarks/gpu_session.sh measure      go on measuring where the last call stopped (--resume)
#
# Every step that measures ends by copying the reports to $OUT (emptied before each call). A machine left idle
# ~30 s is given back with everything on it: send the calls back to back.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=/root/site VLLM_USE_FLASHINFER_SAMPLER=0 PYTHONUNBUFFERED=1 VLLM_NO_USAGE_STATS=1
GP=/root/gp
ROWS=/root/coder-gguf/spider_dev_public.jsonl
CALL_START=$(date +%s)
CALL_BUDGET_S=${CALL_BUDGET_S:-570}
# A later lease may need fewer servers and phases: FLEET_ONLY=c05_bf16 PHASES=quality,schema_scale,candidates
FLEET_ONLY=${FLEET_ONLY:-}
PHASES=${PHASES:-}

collect() {
  [[ -n ${OUT:-} ]] || return 0
  mkdir -p "$GP/out"
  # At most 8 files come back from a call: the report itself, and two archives (every report and rows file; the
  # servers' logs with fleet.json).
  cp "$GP/out/gpu_pipeline.json" "$OUT"/ 2>/dev/null
  tar czf "$OUT/reports.tar.gz" -C "$GP/out" $(cd "$GP/out" && ls *.json *.jsonl *.txt 2>/dev/null)
  tar czf "$OUT/fleet-logs.tar.gz" -C "$GP" fleet.json $(cd "$GP" && ls vllm-*.log 2>/dev/null) 2>/dev/null
  ls -la "$OUT"
}

measure() {
  local until=$(( CALL_START + CALL_BUDGET_S ))
  # A phase that overruns (one without its own deadline) is stopped in time for collect to run: the call's kill
  # would lose every report.
  timeout -s INT $(( until - $(date +%s) + 10 )) python3 -m benchmarks.gpu_pipeline --fleet "$GP" \
    --out "$GP/out/gpu_pipeline.json" --rows "$ROWS" --until "$until" --resume ${PHASES:+--phases "$PHASES"}
  collect
}

case ${1:-} in
  pieces)  # every tracked file travels with each carry: 55 MiB pieces plus the ~15 MB checkout exceed 64 MiB
    set -e
    cat .gpu/c[0-9]/piece[0-9] > .gpu/bundle.tar && rm -rf .gpu/c[0-9]
    split -b $(( 44 * 1024 * 1024 )) -d -a 1 .gpu/bundle.tar .gpu/piece
    for piece in .gpu/piece[0-9]; do n=${piece: -1}; mkdir -p ".gpu/c$n" && mv "$piece" ".gpu/c$n/piece$n"; done
    rm -f .gpu/bundle.tar && ls .gpu/c[0-9]
    ;;
  bundle) mkdir -p /root/stash && cp ".gpu/c$2"/* /root/stash/ && ls /root/stash ;;
  model) mkdir -p /root/coder-gguf && cp ".gpu/coder/m$2"/* /root/coder-gguf/ && ls /root/coder-gguf ;;
  setup)
    set -e
    nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader
    ( cd /root && cat stash/piece* > b.tar && mkdir -p w && tar xf b.tar -C w && rm -f b.tar )
    python3 -m pip install -q --no-index --no-deps --no-compile --target /root/site /root/w/*.whl \
      /root/coder-gguf/*.whl .whl/*.whl
    echo "installed in $(( $(date +%s) - CALL_START )) s"
    python3 -m benchmarks.coder_pieces assemble /root/coder-gguf /root/coder-0.5b
    echo "model converted at $(( $(date +%s) - CALL_START )) s"
    mkdir -p "$GP/out"
    python3 -m benchmarks.gpu_fleet start --dir "$GP" --coder /root/coder-0.5b --deadline-s 400 \
      ${FLEET_ONLY:+--only "$FLEET_ONLY"}
    echo "fleet up at $(( $(date +%s) - CALL_START )) s"
    nvidia-smi --query-gpu=memory.used --format=csv,noheader
    set +e
    measure
    ;;
  measure) measure ;;
  *) echo "usage: $0 pieces | bundle N | model N | setup | measure" >&2; exit 2 ;;
esac
