"""`make up` / `make down` / `make status`: run vLLM and the gateway in the background and stop exactly them.

``python -m launch.stack {up,down,status} --help``. Runs in the gateway environment (.venv); vLLM, merging and the
tiny model run in .venv-vllm. The run folder (default ``.run/``) holds the pid files, logs, the generated API key
and ``stack.json``, which records each process's identity (pid, start time, command) so that `down` never signals a
process that merely reuses a pid. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final, Literal

from launch.cpu_weights import QUANTIZED, WeightsChoice, choose_cpu_weights, choose_from_environment
from launch.gpu_weights import choose_from_environment as choose_gpu_weights_from_environment
from launch.hardware import Target, detect_target
from launch.merge import ADAPTER_ENV, DEFAULT_ADAPTER, DEFAULT_MERGED_DIR, MERGED_DIR_ENV
from launch.quantize import variant_dir
from launch.target_defaults import with_target_defaults
from launch.tiny_model import SINGER_EXAMPLE
from launch.vllm_server import (
    DEFAULT_MAX_MODEL_LEN,
    DEFAULT_PORT,
    DEFAULT_SERVED_MODEL_NAME,
    LaunchError,
    LaunchOptions,
    build_command,
    build_env,
    default_scratch_dir,
    default_vllm_python,
    port_in_use,
    preflight,
    read_log_tail,
    wait_until_generates,
)

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
RUN_DIR_ENV: Final = "SQLGATE_RUN_DIR"
TINY_MODEL_DIR: Final = REPO_ROOT / ".cache" / "tiny-sql-model"
DEFAULT_GATEWAY_PORT: Final = 8000
STATE_FILE: Final = "stack.json"
API_KEY_FILE: Final = "api-key"
API_KEY_DIGEST_FILE: Final = "api-keys.sha256"
# First start on CPU loads weights and warms up (30-100 s on 2 cores); a GPU first start compiles (70-100 s).
DEFAULT_VLLM_READY_S: Final = 900.0
DEFAULT_GATEWAY_READY_S: Final = 120.0
# The gateway finishes in-flight requests for up to SQLGATE_SHUTDOWN_GRACE_S (20 s) after SIGTERM.
STOP_GRACE_S: Final = {"gateway": 30.0, "vllm": 30.0, "scheduler": 10.0}
KILL_WAIT_S: Final = 10.0
POLL_S: Final = 0.1
LOG_TAIL_LINES: Final = 40
EXAMPLE_QUESTION: Final = SINGER_EXAMPLE["question"]
EXAMPLE_SCHEMA: Final = SINGER_EXAMPLE["context"]

Part = Literal["vllm", "gateway", "scheduler"]
PARTS: Final[tuple[Part, ...]] = ("vllm", "gateway")
# Started only with SQLGATE_BUSINESS_HOURS set: launch/scheduler.py stops and starts vLLM on the hours.
OPTIONAL_PARTS: Final[tuple[Part, ...]] = ("scheduler",)
SCHEDULE_ENV: Final = "SQLGATE_BUSINESS_HOURS"


class StackError(RuntimeError):
    """`up` could not bring the stack up; the message says why and what to do."""


# ------------------------------------------------------------------------------------------- /proc


@dataclasses.dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat we rely on."""

    state: str
    process_group: int
    start_ticks: int  # clock ticks after boot: with the pid, identifies a process for its whole life


def proc_stat(pid: int) -> ProcStat | None:
    """The process's state, group and start time, or None when it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(state=fields[0], process_group=int(fields[2]), start_ticks=int(fields[19]))


def proc_cmdline(pid: int) -> str:
    """The command line of `pid`, words joined by spaces; empty when unreadable."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def running(stat: ProcStat | None) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    return stat is not None and stat.state not in ("Z", "X")


def group_members(group_id: int) -> list[int]:
    """Live processes whose process group is `group_id` (vLLM's engine workers, uvicorn's workers)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if running(stat) and stat is not None and stat.process_group == group_id:
                members.append(int(entry.name))
    return members


# ------------------------------------------------------------------------------------------ records


@dataclasses.dataclass(frozen=True)
class ProcessRecord:
    """A process `up` started: enough to find it again and to be sure it is still the same one."""

    pid: int
    start_ticks: int
    command: list[str]
    url: str
    log: str

    def identity_problem(self) -> str | None:
        """None when `pid` is still this process; otherwise why it is not."""
        stat = proc_stat(self.pid)
        if not running(stat) or stat is None:
            return "not running"
        if stat.start_ticks != self.start_ticks:
            return f"pid {self.pid} now belongs to another process (started at a different time)"
        if stat.process_group != self.pid:
            return f"pid {self.pid} is no longer the leader of its process group"
        return None

    def processes(self) -> list[int]:
        """The live processes of the group `up` created: the recorded one and its children."""
        stat = proc_stat(self.pid)
        if running(stat) and stat is not None and stat.start_ticks != self.start_ticks:
            # Linux never hands out a pid that still names a process group, so a reused pid means our group
            # is gone, and the group now carrying this id is a stranger's.
            return []
        # Same process, or the leader exited (its workers may live on in its group).
        return group_members(self.pid)


@dataclasses.dataclass
class StackState:
    """stack.json: what `up` started and how it was configured."""

    model: str
    model_folder: str
    served_model_name: str
    target: str
    gateway_url: str
    scratch_dir: str | None
    parts: dict[str, ProcessRecord] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> StackState:
        raw = json.loads(text)
        parts = {name: ProcessRecord(**record) for name, record in raw.pop("parts", {}).items()}
        return cls(**raw, parts=parts)


class RunFolder:
    """The run folder's files: state, pid files, logs, the generated key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def log(self, part: Part) -> Path:
        return self.path / f"{part}.log"

    def pid_file(self, part: Part) -> Path:
        return self.path / f"{part}.pid"

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    @property
    def api_key_file(self) -> Path:
        return self.path / API_KEY_FILE

    @property
    def digest_file(self) -> Path:
        return self.path / API_KEY_DIGEST_FILE

    def load(self) -> StackState | None:
        """The recorded state, None when nothing was started; unreadable state counts as nothing."""
        try:
            return StackState.from_json(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as error:
            print(f"warning: ignoring unreadable {self.state_file}: {error}", file=sys.stderr)
            return None

    def save(self, state: StackState) -> None:
        """Write state and pid files at once after each start, so a killed `up` can still be brought down."""
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(state.to_json())
        temporary.replace(self.state_file)
        for part in PARTS + OPTIONAL_PARTS:
            record = state.parts.get(part)
            if record is not None:
                self.pid_file(part).write_text(f"{record.pid}\n")

    def forget(self, state: StackState | None) -> None:
        """Remove the state, pid files and vLLM's scratch folder (logs and the API key stay)."""
        for part in PARTS + OPTIONAL_PARTS:
            self.pid_file(part).unlink(missing_ok=True)
        self.state_file.unlink(missing_ok=True)
        if state is not None and state.scratch_dir:
            shutil.rmtree(state.scratch_dir, ignore_errors=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One `up`/`down` at a time on this run folder."""
        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / ".lock").open("w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------- stopping


def _signal_group(group_id: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group_id, sig)


def _wait_gone(record: ProcessRecord, deadline_s: float, process: subprocess.Popen[bytes] | None) -> bool:
    end = time.monotonic() + deadline_s
    while True:
        if process is not None:
            process.poll()  # reap our own child so it does not linger as a zombie
        if not record.processes():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(POLL_S)


def stop_part(
    name: Part, record: ProcessRecord, grace_s: float, process: subprocess.Popen[bytes] | None = None
) -> bool:
    """SIGTERM the recorded process group, SIGKILL it after `grace_s`; True when nothing of it is left.

    Signals nothing when the pid now belongs to another process.
    """
    leader_problem = record.identity_problem()
    members = record.processes()
    if not members:
        if leader_problem not in (None, "not running"):
            print(f"{name}: {leader_problem}; not signalled", file=sys.stderr)
        return True
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, KILL_WAIT_S)):
        # The whole group: vLLM's engine core and workers, uvicorn's workers.
        _signal_group(record.pid, sig)
        if _wait_gone(record, wait_s, process):
            return True
        if sig == signal.SIGTERM:
            print(f"{name}: still running {grace_s:.0f} s after SIGTERM, sending SIGKILL", file=sys.stderr)
    left = record.processes()
    print(f"{name}: processes {left} survived SIGKILL", file=sys.stderr)
    return False


def stop_all(state: StackState, processes: dict[str, subprocess.Popen[bytes]] | None = None) -> bool:
    """Stop the scheduler (so it cannot restart vLLM), the gateway, then vLLM; True when nothing is left."""
    stopped = True
    for part in ("scheduler", "gateway", "vllm"):
        record = state.parts.get(part)
        if record is not None:
            process = (processes or {}).get(part)
            stopped = stop_part(part, record, STOP_GRACE_S[part], process) and stopped
    return stopped


# ------------------------------------------------------------------------------------------ helpers


def http_status(url: str, timeout_s: float = 5.0) -> int | None:
    """The HTTP status of GET `url`, None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, ValueError):
        return None


def local_url(host: str, port: int) -> str:
    """The URL to reach a server bound to `host` from this machine."""
    reach = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{reach}]:{port}" if ":" in reach else f"http://{reach}:{port}"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(read_log_tail(path).rstrip().splitlines()[-lines:])


def start_background(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start `command` in a new session (its own process group, immune to the terminal's hangup), output to a log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=REPO_ROOT,
        )  # fmt: skip


def record_for(process: subprocess.Popen[bytes], command: list[str], url: str, log: Path) -> ProcessRecord:
    stat = proc_stat(process.pid)
    # A process that already exited keeps start 0: it can never match a live process again.
    return ProcessRecord(process.pid, stat.start_ticks if stat else 0, command, url, str(log))


# ---------------------------------------------------------------------------------------- the model


@dataclasses.dataclass(frozen=True)
class ResolvedModel:
    """What vLLM serves and where the gateway finds the tokenizer."""

    served: str  # a folder, or a hub id vLLM downloads itself
    tokenizer: Path | None
    offline: bool


def _run_in_vllm_env(vllm_python: str, args: list[str], what: str) -> None:
    """Run a launch module with the vLLM environment, its progress on our terminal."""
    print(f"== {what}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run([vllm_python, *args], cwd=REPO_ROOT, stdout=sys.stderr, check=False)
    except OSError as error:
        raise StackError(f"cannot run {vllm_python}: {error.strerror}; run `make install` first") from None
    if done.returncode != 0:
        raise StackError(f"{what} failed (exit {done.returncode}); its messages are above")


def merged_dir() -> Path:
    return Path(os.environ.get(MERGED_DIR_ENV, DEFAULT_MERGED_DIR)).resolve()


def resolve_model(model: str, vllm_python: str) -> ResolvedModel:
    """`tiny`, a merged or adapter folder, the SQL adapter's hub id (merged first), or any other hub id."""
    if model == "tiny":
        _run_in_vllm_env(vllm_python, ["-m", "launch.tiny_model", str(TINY_MODEL_DIR)], "tiny demo model")
        return ResolvedModel(str(TINY_MODEL_DIR), TINY_MODEL_DIR, offline=True)
    folder = Path(model).expanduser()
    adapter_ids = {DEFAULT_ADAPTER, os.environ.get(ADAPTER_ENV, DEFAULT_ADAPTER)}
    if (folder.is_dir() and (folder / "adapter_config.json").is_file()) or model in adapter_ids:
        out = merged_dir()
        adapter = str(folder.resolve()) if folder.is_dir() else model
        try:
            _run_in_vllm_env(
                vllm_python, ["-m", "launch.merge", "--adapter", adapter, "--out", str(out)], f"merge {adapter}"
            )
        except StackError as error:
            raise StackError(
                f"{error}\n  without network to Hugging Face: --model /path/to/merged-folder (make up MODEL=...), "
                "or --model tiny for a demo"
            ) from None
        return ResolvedModel(str(out), out, offline=True)
    if folder.is_dir():
        resolved = folder.resolve()
        tokenizer = resolved if (resolved / "tokenizer.json").is_file() else None
        return ResolvedModel(str(resolved), tokenizer, offline=True)
    return ResolvedModel(model, None, offline=False)


# ---------------------------------------------------------------------------------------------- keys


def gateway_key_env(run: RunFolder) -> tuple[dict[str, str], str | None]:
    """Environment that gives the gateway a key; the new key when one was generated now (shown once).

    Keys the operator configured win. Otherwise a key kept in the run folder (mode 600) is reused, or made; the
    gateway only sees its SHA-256 digest, through SQLGATE_API_KEY_FILE.
    """
    configured = any(os.environ.get(name) for name in ("SQLGATE_API_KEYS", "SQLGATE_API_KEY_FILE"))
    auth_off = os.environ.get("SQLGATE_AUTH_ENABLED", "").lower() in ("0", "false", "no", "off")
    if configured or auth_off:
        return {}, None
    new_key = None
    if not run.api_key_file.is_file():
        new_key = "sk-sqlgate-" + secrets.token_urlsafe(24)
        descriptor = os.open(run.api_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as key_file:
            key_file.write(new_key + "\n")
    key = run.api_key_file.read_text().strip()
    run.digest_file.write_text(f"local:{hashlib.sha256(key.encode()).hexdigest()}\n")
    return {"SQLGATE_API_KEY_FILE": str(run.digest_file)}, new_key


def schedule_env_for(run: RunFolder) -> dict[str, str]:
    """With SQLGATE_BUSINESS_HOURS set: where the gateway asks the scheduler for a wake (the run folder, unless
    configured); empty without business hours, and then no scheduler is started."""
    if not os.environ.get(SCHEDULE_ENV, "").strip():
        return {}
    from launch.scheduler import ScheduleSettings  # only with business hours set

    try:  # refused here, before anything starts, rather than by a scheduler that exits in the background
        settings = ScheduleSettings()
        settings.hours()
        settings.runpod()
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise StackError(f"business-hours settings: {error}") from None
    return {"SQLGATE_WAKE_FILE": os.environ.get("SQLGATE_WAKE_FILE") or str(run.path / "wake")}


# --------------------------------------------------------------------------------------------------- up


@dataclasses.dataclass(frozen=True)
class UpOptions:
    """The `up` command's arguments."""

    model: str
    target: Literal["auto", "gpu", "cpu"]
    host: str
    gateway_port: int
    vllm_port: int
    workers: int
    served_model_name: str
    max_model_len: int
    vllm_ready_s: float
    gateway_ready_s: float
    cpu_weights: str | None = None  # fp32|bf16|int8|int4|auto; None: $CPU_WEIGHTS, else measured/CPU features
    gpu_weights: str | None = None  # bf16|fp8|auto; None: $GPU_WEIGHTS, else measured for the GPU's generation


def _vllm_options(up: UpOptions, model: ResolvedModel, vllm_python: str) -> LaunchOptions:
    target: Target = detect_target(vllm_python) if up.target == "auto" else up.target
    sibling = Path(vllm_python).parent / "vllm"
    return LaunchOptions(
        model=model.served,
        target=target,
        port=up.vllm_port,
        served_model_name=up.served_model_name,
        max_model_len=up.max_model_len,
        python=vllm_python,
        vllm_executable=str(sibling) if sibling.is_file() else "vllm",
        scratch_dir=default_scratch_dir(up.vllm_port) if target == "cpu" else None,
    )


def _with_gpu_weights(options: LaunchOptions, up: UpOptions) -> LaunchOptions:
    """The GPU weights the launcher picks for this GPU's generation (launch/gpu_weights.py), said with the reason."""
    try:
        choice = choose_gpu_weights_from_environment(up.gpu_weights)
    except ValueError as error:
        raise StackError(str(error)) from None
    print(f"== GPU weights: {choice.weights} ({choice.reason})", file=sys.stderr)
    return dataclasses.replace(options, extra_args=(*options.extra_args, *choice.extra_args))


def _cpu_weights_choice(up: UpOptions, model: ResolvedModel) -> WeightsChoice:
    asked = up.cpu_weights or os.environ.get("CPU_WEIGHTS")
    # The tiny demo is 20 MB (memory bandwidth is no issue) and quantizing it would change its taught answers.
    if up.model == "tiny" and not (asked and asked.strip().lower() != "auto"):
        choice = choose_cpu_weights("fp32")
        return WeightsChoice(choice.weights, choice.dtype, "the tiny demo model is served as trained")
    try:
        return choose_from_environment(up.cpu_weights)
    except ValueError as error:
        raise StackError(str(error)) from None


def _with_cpu_weights(
    options: LaunchOptions, up: UpOptions, model: ResolvedModel, vllm_python: str
) -> LaunchOptions:
    """The CPU weights the launcher picks (quantized first when needed), said with the reason."""
    choice = _cpu_weights_choice(up, model)
    served = model.served
    if choice.weights in QUANTIZED:
        folder = Path(served)
        if not (folder.is_dir() and any(folder.glob("*.safetensors"))):
            print(f"== CPU weights: {choice.weights} wanted ({choice.reason}), but {served} is not a local folder "
                  f"of weights to quantize: serving it in {choice.dtype}", file=sys.stderr)
            return dataclasses.replace(options, cpu_dtype=choice.dtype)
        out = variant_dir(folder, choice.weights)
        _run_in_vllm_env(
            vllm_python,
            ["-m", "launch.quantize", "--model", str(folder), "--weights", choice.weights, "--out", str(out)],
            f"quantize to {choice.weights}",
        )
        served = str(out)
    print(f"== CPU weights: {choice.weights} (computing in {choice.dtype}): {choice.reason}", file=sys.stderr)
    return dataclasses.replace(options, model=served, cpu_dtype=choice.dtype)


def _wait_gateway_ready(url: str, process: subprocess.Popen[bytes], deadline_s: float, log: Path) -> None:
    end = time.monotonic() + deadline_s
    last: int | None = None
    while True:
        if process.poll() is not None:
            raise StackError(
                f"the gateway exited with code {process.returncode} during start-up\n"
                f"--- last lines of {log} ---\n{log_tail(log)}"
            )
        last = http_status(f"{url}/ready", timeout_s=15.0)
        if last == 200:
            return
        if time.monotonic() >= end:
            raise StackError(
                f"the gateway at {url} was not ready within {deadline_s:.0f} s (last /ready: {last})\n"
                f"--- last lines of {log} ---\n{log_tail(log)}"
            )
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.25)


def _already_up(run: RunFolder, state: StackState) -> bool:
    """True when everything recorded still runs; clears stale records; refuses a half-running stack."""
    alive = {name: record.identity_problem() is None for name, record in state.parts.items()}
    if alive and all(alive.values()):
        return True
    if any(alive.values()):
        raise StackError(
            "part of a previous stack still runs ("
            + ", ".join(name for name, ok in alive.items() if ok)
            + "): run `make down` first"
        )
    stop_all(state)  # leftovers of a crashed leader's group
    run.forget(state)
    return False


def _print_summary(state: StackState, up_key: str | None, run: RunFolder, *, already: bool) -> None:
    url = state.gateway_url
    key_source = f"$(cat {run.api_key_file})" if run.api_key_file.is_file() else "$SQLGATE_KEY"
    body = json.dumps({"model": state.served_model_name, "prompt": EXAMPLE_QUESTION, "schema": EXAMPLE_SCHEMA})
    vllm = state.parts["vllm"]
    print("sqlgate is " + ("already up" if already else "up") + f": {url}")
    print(f"  vLLM ({state.target}) pid {vllm.pid} at {vllm.url}, serving {state.model_folder}")
    print(f"  gateway pid {state.parts['gateway'].pid}; logs in {run.path}/")
    if up_key is not None:
        print(f"  API key (shown once, kept in {run.api_key_file}): {up_key}")
    print("\ncurl:")
    print(
        f"  curl -s {url}/v1/completions -H \"Authorization: Bearer {key_source}\" "
        f"-H 'content-type: application/json' -d {shlex.quote(body)}"
    )
    print("\nopenai SDK:")
    key_expr = 'os.environ["SQLGATE_KEY"]'
    if run.api_key_file.is_file():
        key_expr = f'open("{run.api_key_file}").read().strip()'
    print(
        f'  OpenAI(base_url="{url}/v1", api_key={key_expr}).completions.create(model="{state.served_model_name}", '
        f"prompt={EXAMPLE_QUESTION!r}, extra_body={{'schema': {EXAMPLE_SCHEMA!r}}})"
    )
    print("\nstop with: make down")


def up(run: RunFolder, options: UpOptions) -> int:
    """Bring the stack up, or say it already is; on any failure stop what was started."""
    existing = run.load()
    if existing is not None and _already_up(run, existing):
        _print_summary(existing, None, run, already=True)
        return 0
    for what, host, port in (("gateway", options.host, options.gateway_port), ("vLLM", "127.0.0.1", options.vllm_port)):
        if port_in_use(host, port):
            raise StackError(f"port {port} on {host} ({what}) is already in use: stop what holds it or pick another")

    schedule_env_for(run)  # a bad business-hours setting stops `up` before anything starts
    vllm_python = default_vllm_python()
    model = resolve_model(options.model, vllm_python)
    vllm_options = _vllm_options(options, model, vllm_python)
    if vllm_options.target == "cpu":
        vllm_options = _with_cpu_weights(vllm_options, options, model, vllm_python)
    else:
        vllm_options = _with_gpu_weights(vllm_options, options)
    try:
        preflight(vllm_options)
    except LaunchError as error:
        raise StackError(str(error)) from None
    env = {**os.environ, "HF_HUB_OFFLINE": "1"} if model.offline else dict(os.environ)
    vllm_env = build_env(vllm_options, base=env)
    if vllm_options.scratch_dir:
        Path(vllm_options.scratch_dir).mkdir(parents=True, exist_ok=True)

    gateway_url = local_url(options.host, options.gateway_port)
    state = StackState(
        model=options.model, model_folder=vllm_options.model, served_model_name=options.served_model_name,
        target=vllm_options.target, gateway_url=gateway_url, scratch_dir=vllm_options.scratch_dir,
    )  # fmt: skip
    processes: dict[str, subprocess.Popen[bytes]] = {}
    new_key: str | None = None
    succeeded = False
    try:
        print(f"== vLLM ({vllm_options.target}) on {vllm_options.base_url}, log {run.log('vllm')}", file=sys.stderr)
        vllm_command = build_command(vllm_options)
        processes["vllm"] = start_background(vllm_command, vllm_env, run.log("vllm"))
        state.parts["vllm"] = record_for(processes["vllm"], vllm_command, vllm_options.base_url, run.log("vllm"))
        run.save(state)
        try:
            seconds = wait_until_generates(
                vllm_options.base_url, options.served_model_name, options.vllm_ready_s, processes["vllm"],
                log_tail=lambda: read_log_tail(run.log("vllm")), options=vllm_options,
            )  # fmt: skip
        except LaunchError as error:
            raise StackError(f"vLLM did not come up: {error}") from None
        print(f"   vLLM generates ({seconds:.0f} s)", file=sys.stderr)

        key_env, new_key = gateway_key_env(run)
        schedule_env = schedule_env_for(run)
        gateway_env = {
            **with_target_defaults(vllm_options.target, os.environ),
            **key_env,
            **schedule_env,
            "SQLGATE_UPSTREAM_URL": vllm_options.base_url,
            "SQLGATE_UPSTREAM_MODEL": options.served_model_name,
            "SQLGATE_MAX_MODEL_LEN": str(options.max_model_len),
        }
        if model.tokenizer is not None:
            gateway_env["SQLGATE_TOKENIZER"] = str(model.tokenizer)
        gateway_command = [
            sys.executable, "-m", "gateway",
            "--host", options.host, "--port", str(options.gateway_port), "--workers", str(options.workers),
        ]  # fmt: skip
        print(f"== gateway on {gateway_url}, log {run.log('gateway')}", file=sys.stderr)
        processes["gateway"] = start_background(gateway_command, gateway_env, run.log("gateway"))
        state.parts["gateway"] = record_for(processes["gateway"], gateway_command, gateway_url, run.log("gateway"))
        run.save(state)
        _wait_gateway_ready(gateway_url, processes["gateway"], options.gateway_ready_s, run.log("gateway"))
        if schedule_env:
            # With vLLM's environment, so the restarts it makes are the process `up` just started.
            scheduler_command = [sys.executable, "-m", "launch.scheduler", "run", "--run-dir", str(run.path)]
            print(f"== business-hours scheduler, log {run.log('scheduler')}", file=sys.stderr)
            processes["scheduler"] = start_background(scheduler_command, {**vllm_env, **schedule_env},
                                                      run.log("scheduler"))
            state.parts["scheduler"] = record_for(processes["scheduler"], scheduler_command, "",
                                                  run.log("scheduler"))
            run.save(state)
        succeeded = True
    finally:
        if not succeeded:
            print("== stopping what was started", file=sys.stderr)
            stop_all(state, processes)
            run.forget(state)
    _print_summary(state, new_key, run, already=False)
    return 0


# -------------------------------------------------------------------------------------- down, status


def down(run: RunFolder) -> int:
    """Stop exactly what `up` recorded; idempotent."""
    state = run.load()
    if state is None:
        for part in PARTS:
            run.pid_file(part).unlink(missing_ok=True)
        print("nothing to stop")
        return 0
    stopped = stop_all(state)
    if not stopped:
        print("some processes survived; state kept in " + str(run.state_file), file=sys.stderr)
        return 1
    run.forget(state)
    print("stopped: " + ", ".join(f"{name} (pid {record.pid})" for name, record in state.parts.items()))
    return 0


def status(run: RunFolder) -> int:
    """Print what runs; 0 when everything runs and the gateway is ready, 1 when partly, 3 when nothing runs."""
    state = run.load()
    if state is None:
        print("not running")
        return 3
    healthy = 0
    for part in PARTS:
        record = state.parts.get(part)
        if record is None:
            print(f"{part:8} not started")
            continue
        problem = record.identity_problem()
        if problem is not None:
            print(f"{part:8} down ({problem}), was pid {record.pid}, log {record.log}")
            continue
        probe = "/health" if part == "vllm" else "/ready"
        code = http_status(record.url + probe, timeout_s=15.0)
        verdict = {"vllm": "alive" if code == 200 else "not answering",
                   "gateway": "ready" if code == 200 else "not ready"}[part]
        healthy += code == 200
        print(f"{part:8} running  pid {record.pid:<7} {record.url:28} {verdict} ({probe}: {code})")
    scheduler = state.parts.get("scheduler")
    if scheduler is not None:
        problem = scheduler.identity_problem()
        print(f"scheduler {'running  pid ' + str(scheduler.pid) if problem is None else 'down (' + problem + ')'}"
              f"  business hours {os.environ.get(SCHEDULE_ENV, '(as configured at make up)')}")
    print(f"model    {state.model_folder} as {state.served_model_name!r} on {state.target}")
    if healthy == len(PARTS):
        return 0
    return 1 if any(record.identity_problem() is None for record in state.parts.values()) else 3


# ------------------------------------------------------------------------------------------------ CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch.stack",
        description="Run vLLM and the sqlgate gateway in the background (make up / down / status).",
    )
    parser.add_argument(
        "--run-dir", type=Path, default=Path(os.environ.get(RUN_DIR_ENV, REPO_ROOT / ".run")),
        help=f"pid files, logs, API key (${RUN_DIR_ENV}, default %(default)s)",
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser(
        "up",
        help="merge if needed, start vLLM, start the gateway, print how to call it",
        description=(
            "MODEL: the SQL adapter's hub id (merged into the base first, skipped when done), a merged model folder "
            "(served offline), an adapter folder (merged), `tiny` (a tiny demo model trained here), or any hub id."
        ),
    )
    add = start.add_argument
    add("--model", default=DEFAULT_ADAPTER, help="default %(default)s")
    add("--target", choices=("auto", "gpu", "cpu"), default="auto", help="default: GPU when one is visible")
    add("--host", default="127.0.0.1", help="gateway bind address (default %(default)s); vLLM stays on 127.0.0.1")
    add("--gateway-port", type=int, default=DEFAULT_GATEWAY_PORT, help="default %(default)s")
    add("--vllm-port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    add("--workers", type=int, default=1, help="gateway worker processes (default %(default)s)")
    add("--served-model-name", default=DEFAULT_SERVED_MODEL_NAME, help="default %(default)s")
    add("--max-model-len", type=int, default=DEFAULT_MAX_MODEL_LEN, help="default %(default)s")
    add("--vllm-ready-timeout", type=float, default=DEFAULT_VLLM_READY_S, help="seconds (default %(default)s)")
    add("--gateway-ready-timeout", type=float, default=DEFAULT_GATEWAY_READY_S, help="seconds (default %(default)s)")
    add("--cpu-weights", choices=("auto", "fp32", "bf16", "int8", "int4"), default=None,
        help="CPU target: weights to serve (default $CPU_WEIGHTS, else auto: measured on this CPU, else its features)")
    add("--gpu-weights", choices=("auto", "bf16", "fp8"), default=None,
        help="GPU target: weights (default $GPU_WEIGHTS, else auto: FP8 on Hopper, bf16 elsewhere, as measured)")
    commands.add_parser("down", help="stop exactly what `up` started")
    commands.add_parser("status", help="what runs, pids, ports, readiness; exit 0 only when up and ready")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; see --help."""
    args = _parser().parse_args(argv)
    run = RunFolder(args.run_dir.resolve())
    if args.command == "status":
        return status(run)
    with run.locked():
        if args.command == "down":
            return down(run)
        options = UpOptions(
            model=args.model, target=args.target, host=args.host, gateway_port=args.gateway_port,
            vllm_port=args.vllm_port, workers=args.workers, served_model_name=args.served_model_name,
            max_model_len=args.max_model_len, vllm_ready_s=args.vllm_ready_timeout,
            gateway_ready_s=args.gateway_ready_timeout, cpu_weights=args.cpu_weights, gpu_weights=args.gpu_weights,
        )  # fmt: skip
        try:
            return up(run, options)
        except StackError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted; what was started has been stopped", file=sys.stderr)
            return 130


if __name__ == "__main__":
    raise SystemExit(main())
