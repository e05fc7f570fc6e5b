# syntax=docker/dockerfile:1
# Two images from one file (docker-compose.yml builds both):
#   --target merge    one-shot: merges the LoRA adapter into the bf16 base (CPU torch is enough), writes /models
#   --target gateway  (the default, last stage) the FastAPI gateway: python:3.11-slim, no torch, non-root
# vLLM itself runs from the official vllm/vllm-openai image; see docs/deploy.md.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- merge --------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS merge
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HOME=/hf-cache
# The CPU wheel of torch first, so that peft's dependency on torch does not pull the CUDA build (2+ GB).
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0+cpu" \
 && pip install "transformers==5.19.0" "peft==0.21.2" "huggingface_hub>=0.25" "safetensors" "tqdm"
RUN useradd --create-home --uid 10001 sqlgate \
 && mkdir -p /models /hf-cache && chown sqlgate:sqlgate /models /hf-cache
WORKDIR /app
COPY launch/ launch/
USER sqlgate
ENTRYPOINT ["python", "-m", "launch.merge"]

# ---- gateway ------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS gateway
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SQLGATE_HOST=0.0.0.0 SQLGATE_PORT=8000
RUN useradd --create-home --uid 10001 sqlgate && mkdir -p /data && chown sqlgate /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway/ gateway/
COPY clients/ clients/
COPY launch/ launch/
RUN pip install . && rm -rf /root/.cache
USER sqlgate
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
# python -m gateway reads every SQLGATE_* setting, refuses unsafe ones with a clear message, then runs uvicorn.
CMD ["python", "-m", "gateway"]
