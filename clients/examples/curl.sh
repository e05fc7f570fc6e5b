#!/usr/bin/env bash
# The gateway with nothing but curl: the core route (/v1/completions), the plain /v1/sql route, and streaming.
#
#   SQLGATE_URL=http://127.0.0.1:8000 SQLGATE_API_KEY=sk-... clients/examples/curl.sh
#
# OPENAI_BASE_URL / OPENAI_API_KEY work too. Exits non-zero when any call fails (curl --fail-with-body).
set -euo pipefail

base="${SQLGATE_URL:-${OPENAI_BASE_URL:-http://127.0.0.1:8000}}"
base="${base%/}"
base="${base%/v1}"
key="${SQLGATE_API_KEY:-${OPENAI_API_KEY:-}}"
auth=()
if [[ -n "$key" ]]; then
  auth=(-H "Authorization: Bearer $key")
fi
question="${1:-How many singers do we have?}"
schema="${2:-CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text)}"

# JSON-encode the two strings without jq: python3 is everywhere the gateway is.
body=$(python3 -c 'import json, sys; print(json.dumps({"prompt": sys.argv[1], "schema": sys.argv[2]}))' \
  "$question" "$schema")
sql_body=$(python3 -c 'import json, sys; print(json.dumps({"question": sys.argv[1], "schema": sys.argv[2]}))' \
  "$question" "$schema")

echo "== POST /v1/completions"
curl -sS --fail-with-body --max-time 120 "${auth[@]}" -H 'Content-Type: application/json' \
  -d "$body" "$base/v1/completions"
echo

echo "== POST /v1/sql"
curl -sS --fail-with-body --max-time 120 "${auth[@]}" -H 'Content-Type: application/json' \
  -d "$sql_body" "$base/v1/sql"
echo

echo "== POST /v1/completions, streamed"
stream_body=$(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); d["stream"] = True; print(json.dumps(d))' \
  "$body")
stream_out=$(curl -sS --fail-with-body --no-buffer --max-time 120 "${auth[@]}" \
  -H 'Content-Type: application/json' -d "$stream_body" "$base/v1/completions")
printf '%s\n' "$stream_out"
# An error after the first byte arrives inside the stream (HTTP status already 200).
if grep -q '^data: {"error"' <<<"$stream_out"; then
  echo "the stream ended with an error" >&2
  exit 1
fi
