"""Every vLLM server the GPU pipeline benchmark needs, started at once on one GPU and left running between device
calls (a device machine gives a call 10 minutes, and a vLLM start costs 1-2 of them: started one after another,
nine servers would eat the session).

Each server gets a fixed KV-cache size (`--kv-cache-memory-bytes`) instead of a share of the card: vLLM then skips
its memory profiling, which would otherwise count the other servers' allocations as its own. A low
`--gpu-memory-utilization` only passes vLLM's start-up check that this much memory is free. Servers that sit idle
cost the others nothing: every measurement runs against one server at a time.

    python3 -m benchmarks.gpu_fleet start --dir /root/gp --coder /root/coder-0.5b    # on the GPU host
    python3 -m benchmarks.gpu_fleet stop --dir /root/gp
    .venv/bin/python -m benchmarks.gpu_fleet start --dir /tmp/gp --dry-run           # fakes, any machine
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.gpu_serving import vllm_command
from benchmarks.model_folder import write_model_folder
from benchmarks.processes import REPO_ROOT, free_port, log_tail
from launch.speculative import Speculative, suffix
from launch.vllm_server import LaunchError, LaunchOptions, build_env, wait_until_generates

FLEET_FILE = "fleet.json"
W8A8_CONFIG = Path(__file__).resolve().parent / "w8a8-quantization-config.json"
GIB = 1024**3


@dataclass(frozen=True)
class Server:
    """One vLLM configuration of the benchmark: which weights, which vLLM flags."""

    name: str
    model: str  # d15: Qwen2.5-1.5B architecture (dummy weights); c05: the real Qwen2.5-Coder-0.5B
    weights: str = "bf16"  # bf16, fp8, fp8_marlin, int8
    speculative: Speculative | None = None
    kv_cache_bytes: int = 3 * GIB  # c = 256 of ~300-token prompts needs ~2.2 GiB on the 1.5B
    note: str = ""

    @property
    def dummy(self) -> bool:
        return self.model == "d15"

    @property
    def max_model_len(self) -> int:
        return 1024 if self.dummy else 2048  # the 0.5B's chatty answers and its prompts (~600 tokens) fit 2048


SERVERS = (
    Server("d15_bf16", "d15", note="production shape: serving cells, and the weights baseline"),
    Server("d15_fp8", "d15", "fp8", note="FP8 W8A8, Hopper's FP8 tensor cores (vLLM's online quantization)"),
    Server("d15_fp8_marlin", "d15", "fp8_marlin",
           note="FP8 weights only, Marlin kernel: what vLLM runs for fp8 on Ampere (RTX 3090), forced on Hopper"),
    Server("d15_int8", "d15", "int8", note="int8 W8A8 (compressed-tensors, CUTLASS int8 GEMM; runs on Ampere)"),
    Server("c05_bf16", "c05", kv_cache_bytes=4 * GIB,
           note="real model: quality, candidate policies, grammar stall, speculative baseline"),
    Server("c05_fp8", "c05", "fp8", kv_cache_bytes=GIB * 5 // 2),
    Server("c05_fp8_marlin", "c05", "fp8_marlin", kv_cache_bytes=GIB * 5 // 2),
    Server("c05_int8", "c05", "int8", kv_cache_bytes=GIB * 5 // 2),
    Server("c05_suffix", "c05", speculative=suffix(), kv_cache_bytes=GIB * 5 // 2,
           note="suffix decoding (needs the arctic-inference wheel)"),
)


def weights_args(server: Server) -> tuple[str, ...]:
    """vLLM flags for the server's weights: fp8 is vLLM's online quantization of the bf16 checkpoint; int8 is a
    compressed-tensors folder (its config says so, no flag needed)."""
    return ("--quantization", "fp8") if server.weights in ("fp8", "fp8_marlin") else ()


def weights_env(server: Server) -> dict[str, str]:
    # vLLM picks Marlin for fp8 by itself on GPUs without FP8 compute (Ampere); this makes a Hopper do the same.
    return {"VLLM_TEST_FORCE_FP8_MARLIN": "1"} if server.weights == "fp8_marlin" else {}


@dataclass
class Folders:
    """The model folders the servers load, made on the host (none can be carried whole)."""

    root: Path
    coder: Path | None  # the real 0.5B (bf16), from benchmarks/coder_pieces.py
    made: dict[str, str] = field(default_factory=dict)

    def for_server(self, server: Server) -> Path:
        if server.dummy:
            return self._dummy(int8=server.weights == "int8")
        if self.coder is None:
            raise LaunchError("model_missing", "no --coder folder: the real-model servers need it")
        return self._coder_int8() if server.weights == "int8" else self.coder

    def _dummy(self, *, int8: bool) -> Path:
        folder = self.root / ("qwen2.5-1.5b-dummy-int8" if int8 else "qwen2.5-1.5b-dummy")
        if not (folder / "config.json").is_file():
            write_model_folder(folder)
            if int8:
                # The quantization scheme launch/quantize.py writes (compressed-tensors 0.17, W8A8, RTN): with
                # --load-format dummy vLLM builds int8 layers and leaves their values unset, which costs the same.
                config = json.loads((folder / "config.json").read_text())
                config["quantization_config"] = json.loads(W8A8_CONFIG.read_text())
                (folder / "config.json").write_text(json.dumps(config, indent=2))
        self.made[folder.name] = str(folder)
        return folder

    def _coder_int8(self) -> Path:
        assert self.coder is not None
        folder = self.coder.with_name(f"{self.coder.name}-int8")
        if not (folder / "config.json").is_file():
            subprocess.run([sys.executable, "-m", "launch.quantize", "--model", str(self.coder), "--weights",
                            "int8", "--out", str(folder)], check=True, cwd=REPO_ROOT)
        self.made[folder.name] = str(folder)
        return folder


def launch_options(server: Server, model_dir: Path, port: int) -> LaunchOptions:
    """The launcher's GPU command line for `server`, with a fixed KV cache (see the module's docstring)."""
    extra = ("--load-format", "dummy") if server.dummy else ()
    extra += (*weights_args(server), "--kv-cache-memory-bytes", str(server.kv_cache_bytes))
    return LaunchOptions(model=str(model_dir), target="gpu", port=port, max_model_len=server.max_model_len,
                         gpu_memory_utilization=0.04, speculative=server.speculative, extra_args=extra)


def server_argv(server: Server, model_dir: Path, port: int, *, dry_run: bool) -> tuple[list[str], dict[str, str]]:
    if dry_run:
        argv = [sys.executable, "-m", "benchmarks.fake_spec_vllm", "--port", str(port)]
        if server.speculative is not None:
            argv += ["--speculative-config", server.speculative.as_json()]
        return argv, dict(os.environ)
    options = launch_options(server, model_dir, port)
    env = {**build_env(options), **weights_env(server), "VLLM_USE_FLASHINFER_SAMPLER": "0"}
    return vllm_command(options, sys.executable), env


def start(root: Path, coder: Path | None, names: set[str] | None, *, dry_run: bool, deadline_s: float
          ) -> dict[str, Any]:
    """Start the servers (each in its own session, so it outlives this command), wait until each generates or
    fails, write fleet.json and return it."""
    root.mkdir(parents=True, exist_ok=True)
    folders = Folders(root, coder)
    fleet: dict[str, Any] = {"dry_run": dry_run, "servers": {}, "started_at": time.time()}
    waiting: list[tuple[Server, subprocess.Popen[bytes], LaunchOptions, Path, float]] = []
    for server in SERVERS:
        if names is not None and server.name not in names:
            continue
        entry: dict[str, Any] = {"note": server.note, "weights": server.weights, "model": server.model}
        fleet["servers"][server.name] = entry
        log_path = root / f"vllm-{server.name}.log"
        try:
            model_dir = root if dry_run else folders.for_server(server)  # fakes load no model
            port = free_port()
            argv, env = server_argv(server, model_dir, port, dry_run=dry_run)
        except (LaunchError, subprocess.CalledProcessError, OSError) as error:
            entry["error"] = f"{type(error).__name__}: {error}"[-1500:]
            continue
        options = launch_options(server, model_dir, port)
        with log_path.open("wb") as log:
            process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO_ROOT)
        entry.update({"url": options.base_url, "pid": process.pid, "log": str(log_path), "argv": argv,
                      "env": weights_env(server)})
        waiting.append((server, process, options, log_path, time.monotonic()))
    fleet["folders"] = folders.made

    def wait(server: Server, process: subprocess.Popen[bytes], options: LaunchOptions, log_path: Path,
             began: float) -> None:
        entry = fleet["servers"][server.name]
        try:
            wait_until_generates(options.base_url, options.served_model_name, deadline_s, process,
                                 log_tail=lambda: log_tail(log_path, 60), options=options)
            entry["startup_s"] = round(time.monotonic() - began, 1)
        except LaunchError as error:
            entry["error"] = f"{error.reason}: {str(error)[-1500:]}"
            _terminate(process.pid)

    threads = [threading.Thread(target=wait, args=item) for item in waiting]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (root / FLEET_FILE).write_text(json.dumps(fleet, indent=2) + "\n")
    return fleet


def _terminate(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the server's whole session (vLLM's engine runs in child processes), SIGKILL after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def load(root: Path) -> dict[str, Any]:
    return dict(json.loads((root / FLEET_FILE).read_text()))


def urls(fleet: dict[str, Any]) -> dict[str, str]:
    """The servers that came up, by name."""
    return {name: entry["url"] for name, entry in fleet["servers"].items()
            if entry.get("url") and "startup_s" in entry}


def stop(root: Path) -> None:
    for entry in load(root)["servers"].values():
        if entry.get("pid"):
            _terminate(int(entry["pid"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument("--dir", type=Path, required=True, help="where folders, logs and fleet.json go")
    parser.add_argument("--coder", type=Path, help="the real Qwen2.5-Coder-0.5B folder (bf16)")
    parser.add_argument("--only", help=f"comma-separated subset of {[s.name for s in SERVERS]}")
    parser.add_argument("--deadline-s", type=float, default=420.0, help="how long each server may take to start")
    parser.add_argument("--dry-run", action="store_true", help="fake servers (benchmarks/fake_spec_vllm.py)")
    args = parser.parse_args(argv)
    if args.command == "stop":
        stop(args.dir)
        return 0
    if args.command == "status":
        print(json.dumps(load(args.dir), indent=2))
        return 0
    names = set(args.only.split(",")) if args.only else None
    fleet = start(args.dir, args.coder, names, dry_run=args.dry_run, deadline_s=args.deadline_s)
    for name, entry in fleet["servers"].items():
        state = f"up in {entry['startup_s']} s" if "startup_s" in entry else f"FAILED: {entry.get('error', '')[:300]}"
        print(f"{name:16} {state}", flush=True)
        if "startup_s" not in entry and entry.get("log"):
            print(log_tail(Path(entry["log"]), 15), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
