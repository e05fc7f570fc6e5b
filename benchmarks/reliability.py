"""`make reliability`: the gateway's reliability and security proof, bounded and on loopback only.

    python -m benchmarks.reliability [--short] [--only faults,guard,contract,soak,shutdown,secrets]
                                     --out reports/reliability.json

Sections (docs/reliability.md explains each and quotes the figures of a full run):
  faults    every upstream fault, plain and streaming, through the gateway under uvicorn against a fake upstream
  guard     the SQL guard's adversarial/benign corpora and a bounded generated run
  contract  schemathesis over /openapi.json (healthy and down upstream) and the auth sweep
  soak      mixed load through the gateway process: counts, /metrics agreement, RSS and open files
  shutdown  SIGTERM with requests in flight
  secrets   keys searched for in logs, exported traces, responses and /metrics
Exit status 0 when every section passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SECTIONS = ("faults", "guard", "contract", "soak", "shutdown", "secrets")


@dataclass(frozen=True)
class Profile:
    name: str
    fault_requests: int  # concurrent requests per fault and mode
    guard_examples: int  # generated inputs per strategy
    contract_examples: int  # per operation and generation mode, healthy upstream
    contract_down_examples: int
    soak_seconds: float
    soak_rate: float
    soak_concurrency: int
    soak_warmup: int
    shutdown_grace_s: float
    shutdown_release_s: float  # when the slow upstream answers, after SIGTERM


FULL = Profile("full", fault_requests=5, guard_examples=2000, contract_examples=100, contract_down_examples=25,
               soak_seconds=300.0, soak_rate=50.0, soak_concurrency=16, soak_warmup=600,
               shutdown_grace_s=5.0, shutdown_release_s=2.0)
SHORT = Profile("short", fault_requests=1, guard_examples=200, contract_examples=20, contract_down_examples=5,
                soak_seconds=30.0, soak_rate=20.0, soak_concurrency=8, soak_warmup=200,
                shutdown_grace_s=3.0, shutdown_release_s=1.0)


def run_faults(profile: Profile) -> dict[str, Any]:
    from tests.reliability.fault_matrix import DISCONNECT, FaultLimits, catalogue, run_matrix

    limits = FaultLimits()
    results = []
    for result in run_matrix(count=profile.fault_requests, limits=limits, sleep_factory=lambda: asyncio.sleep):
        results.append(result.as_dict())
        _say(f"  {'ok  ' if result.passed else 'FAIL'} {result.fault:<26} {result.mode:<6} "
             f"{result.handled}/{result.injected} as {result.expected}, max {result.max_latency_s:.2f} s "
             f"(bound {result.bound_s:.1f}), retries {result.retries}/{result.retry_budget}"
             + (f"  {result.problems}" if result.problems else ""))
    totals = {key: sum(r[key] for r in results) for key in ("injected", "handled", "unexpected_500s", "hung",
                                                             "leaked_connections", "retries", "retry_budget")}
    return {"passed": all(r["passed"] for r in results), "limits": limits.__dict__, "totals": totals,
            "recovered": sum(r["recovered"] for r in results), "scenarios": len(results),
            "table": [{"fault": case.name, "what": case.what, "plain": case.expect_plain.describe(),
                       "stream": case.expect_stream.describe(), "bound_s": limits.bound(case.bound),
                       "retries_per_request": case.retries_per_request}
                      for case in [*catalogue(limits), DISCONNECT]],
            "results": results}


def run_guard(profile: Profile) -> dict[str, Any]:
    from tests.reliability.sql_guard import guard_figures

    figures = guard_figures(examples=profile.guard_examples)
    _say(f"  adversarial refused {figures.adversarial_refused}/{figures.adversarial}, benign accepted "
         f"{figures.benign_accepted}/{figures.benign}, generated: "
         + ", ".join(f"{run.name} {run.examples} ({'ok' if run.failure is None else 'FAIL'})"
                     for run in figures.generated))
    return figures.as_dict()


def run_contract(profile: Profile) -> dict[str, Any]:
    from tests.reliability.contract import run_contract as contract

    report = contract(max_examples=profile.contract_examples, down_examples=profile.contract_down_examples)
    healthy, down, auth = report["healthy"], report["upstream_down"], report["auth"]
    passed = (healthy["server_errors"] == down["server_errors"] == 0 and healthy["spec_violations"] == 0
              and down["spec_violations"] == 0 and not auth["failures"])
    for name, part in (("healthy upstream", healthy), ("upstream down", down)):
        _say(f"  {name}: {part['cases']} cases over {len(part['operations'])} operations, "
             f"{part['server_errors']} server errors, {part['spec_violations']} spec violations "
             f"{part['violation_samples']}")
    _say(f"  auth: {auth['refused_as_specified']}/{auth['probes']} refused as specified")
    return {"passed": passed, **report}


def run_soak(profile: Profile) -> dict[str, Any]:
    from tests.reliability.soak import run_soak as soak

    total = int(profile.soak_seconds * profile.soak_rate)
    result = soak(total=total, rate=profile.soak_rate, concurrency=profile.soak_concurrency,
                  warmup=profile.soak_warmup)
    report = result.as_dict()
    _say(f"  {report['requests']} requests in {report['seconds']} s ({report['achieved_rate_per_s']}/s): "
         f"{report['by_class']}, unexpected {report['unexpected']}, server errors {report['server_errors']}, "
         f"streams closed once {report['streams_closed_once']}/{report['streams']}, "
         f"/metrics agrees: {report['metrics_match_client']}, RSS {report['baseline']['rss_kib']} -> "
         f"{report['final']['rss_kib']} KiB, files {report['baseline']['open_files']} -> "
         f"{report['final']['open_files']}")
    return report


def run_shutdown(profile: Profile) -> dict[str, Any]:
    from tests.reliability.shutdown import run_shutdown as shutdown

    finite = shutdown(grace_s=profile.shutdown_grace_s, in_flight=4, release_after_s=profile.shutdown_release_s)
    stuck = shutdown(grace_s=min(2.0, profile.shutdown_grace_s), in_flight=4, release_after_s=None)
    for result in (finite, stuck):
        _say(f"  {result.scenario}: stopped accepting after {_seconds(result.stopped_accepting_s)}, exited after "
             f"{_seconds(result.exited_after_s)} (bound {result.bound_s:.1f} s) with status {result.exit_status}; "
             f"{result.completed}/{result.in_flight} in-flight completed, {result.server_errors} answered 500")
    return {"passed": finite.passed and stuck.passed, "finite_upstream": finite.as_dict(),
            "upstream_never_answers": stuck.as_dict(),
            "note": "`make down` leaving no process behind is covered by tests/test_stack.py (launch helper)."}


def run_secrets(profile: Profile) -> dict[str, Any]:
    from tests.reliability.secrets import run_secrets as secrets

    result = secrets()
    _say(f"  {result.leaks} occurrences of {len(result.occurrences)} secrets in "
         f"{sum(result.haystacks.values())} characters ({', '.join(result.haystacks)}); {result.spans} spans; "
         f"controls {result.controls}")
    return result.as_dict()


RUNNERS: dict[str, Callable[[Profile], dict[str, Any]]] = {
    "faults": run_faults, "guard": run_guard, "contract": run_contract, "soak": run_soak,
    "shutdown": run_shutdown, "secrets": run_secrets,
}


def _say(line: str) -> None:
    print(line, flush=True)


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__.split("\n")[0])
    parser.add_argument("--short", action="store_true", help="the CI-sized run (about two minutes)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--out", type=Path, default=Path("reports/reliability.json"))
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {sorted(unknown)}")
    profile = SHORT if args.short else FULL
    # The in-process gateways log through the root logger: keep their request lines out of this report.
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger("sqlglot").setLevel(logging.CRITICAL)
    report: dict[str, Any] = {
        "profile": profile.__dict__, "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": "python -m benchmarks.reliability" + (" --short" if args.short else ""),
        "sections": {},
    }
    # Sections left out with --only keep their last result (same profile), marked as such, so the report stays
    # whole after re-running one section.
    if args.out.is_file():
        earlier = json.loads(args.out.read_text(encoding="utf-8"))
        if earlier.get("profile", {}).get("name") == profile.name:
            for name, section in earlier.get("sections", {}).items():
                if name not in chosen:
                    report["sections"][name] = {**section, "from_an_earlier_run": earlier.get("started_at")}
    for name in chosen:
        _say(f"[{name}]")
        started = time.monotonic()
        try:
            section = RUNNERS[name](profile)
        except Exception as error:  # a broken section is reported, the others still run
            logging.getLogger("benchmarks.reliability").critical("section %s failed", name, exc_info=True)
            section = {"passed": False, "error": f"{type(error).__name__}: {error}"}
        section["seconds"] = round(time.monotonic() - started, 1)
        report["sections"][name] = section
        _say(f"  -> {'passed' if section['passed'] else 'FAILED'} in {section['seconds']} s")
    report["passed"] = all(section["passed"] for section in report["sections"].values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    _say(f"{'PASSED' if report['passed'] else 'FAILED'}: "
         + ", ".join(f"{name} {'ok' if s['passed'] else 'FAILED'}" for name, s in report["sections"].items())
         + f" -> {args.out}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
