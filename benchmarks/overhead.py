"""Gateway overhead with an upstream that answers at once, the gateway's ceiling, a profile of its hot path, and the
cache-hit latency, all in one run:

1. added latency: open loop at `rate` req/s to the gateway and, interleaved half a period later, the same rate to
   the fake upstream directly (the exact body the gateway would send it), from one client; the difference of the
   percentiles is what the gateway adds;
2. ceiling: closed loop at `ceiling_concurrency` for `ceiling_s` against the gateway (and the fake alone, to show
   the client and fake are not the limit), with the gateway's CPU time per request from /proc;
3. profile: py-spy samples the gateway during another closed-loop run; hot functions are summarised;
4. cache hit: a gateway with its memory cache on, one request repeated.

    python -m benchmarks.overhead --out reports/overhead.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.bench_gateway import force_exact_length
from benchmarks.http_probe import ProbeClient, ProbeResponse
from benchmarks.processes import REPO_ROOT, ChildServer, child_server, free_port
from benchmarks.prompts import BENCH_PROMPTS
from benchmarks.results import difference_ms, host_facts, latency_ms, paired_overhead_ms, say, write_report
from gateway.prompt import render_prompt
from gateway.settings import DEFAULT_GENERATION_CONFIG, load_generation_params

BENCH_KEY = "sk-bench-overhead-0123456789abcdef"
TARGETS = {"added_p50_ms": 1.0, "added_p99_ms": 3.0, "cache_hit_p50_ms": 1.0}


@dataclass(frozen=True)
class OverheadPlan:
    rate: float = 100.0  # req/s to each of the two targets
    duration_s: float = 20.0
    warmup_requests: int = 200
    ceiling_concurrency: int = 16
    ceiling_s: float = 8.0
    profile_s: float = 8.0  # 0: no profile
    cache_requests: int = 1000


QUICK_PLAN = OverheadPlan(rate=50.0, duration_s=1.0, warmup_requests=10, ceiling_concurrency=4, ceiling_s=0.5,
                          profile_s=0.0, cache_requests=20)


def gateway_env(upstream_url: str, *, cache: bool) -> dict[str, str]:
    """Production settings except: one bench key, a rate limit too high to bite (so it still runs), cache choice."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLGATE_")}
    env.update({
        "SQLGATE_UPSTREAM_URL": upstream_url,
        "SQLGATE_API_KEYS": f"bench={BENCH_KEY}",
        "SQLGATE_RATE_LIMIT_PER_MINUTE": "100000000",
        "SQLGATE_CACHE_ENABLED": "true" if cache else "false",
        "PYTHONUNBUFFERED": "1",
    })
    return env


GATEWAY_VARIANTS = {
    # The production entry point, exactly as deployed.
    "gateway": ["-m", "gateway"],
    # The floor: FastAPI + pydantic + aiohttp (the gateway's transport) forwarding the same request, with none of
    # the gateway's policy.
    "bare_fastapi_aiohttp": ["-m", "benchmarks.bare_forwarder", "--transport", "aiohttp"],
    # The same forwarder on httpx: what the transport alone costs (the gateway used httpx until this showed it).
    "bare_fastapi_httpx": ["-m", "benchmarks.bare_forwarder", "--transport", "httpx"],
}
FLOOR_VARIANT = "bare_fastapi_aiohttp"
REFERENCE_VARIANTS = frozenset({"bare_fastapi_aiohttp", "bare_fastapi_httpx"})  # no cache, nothing of ours


@dataclass(frozen=True)
class GatewayUnderTest:
    name: str
    plain: ChildServer  # cache off: every request goes upstream
    cached: ChildServer | None  # memory cache on (None for a reference variant)


@contextmanager
def fake_and_gateways(log_dir: Path, variants: Sequence[str]) -> Iterator[tuple[ChildServer, list[GatewayUnderTest]]]:
    """The fake upstream, and for each variant a gateway without cache and one with its memory cache."""
    python = sys.executable
    with ExitStack() as stack:
        fake_port = free_port()
        fake = stack.enter_context(child_server(
            "fake-upstream", [python, "-m", "benchmarks.fake_upstream", "--port", str(fake_port)], port=fake_port,
            log_dir=log_dir))
        gateways = []
        for name in variants:
            servers: list[ChildServer | None] = []
            for cache in (False, True):
                if cache and name in REFERENCE_VARIANTS:
                    servers.append(None)
                    continue
                port = free_port()
                servers.append(stack.enter_context(child_server(
                    f"{name}-{'cached' if cache else 'plain'}", [python, *GATEWAY_VARIANTS[name], "--port", str(port)],
                    port=port, log_dir=log_dir, env=gateway_env(fake.base_url, cache=cache))))
            plain = servers[0]
            assert plain is not None
            gateways.append(GatewayUnderTest(name, plain, servers[1]))
        yield fake, gateways


class Bodies:
    """Request `n` for each target: the gateway gets question + schema, the fake gets the gateway's own upstream
    body for the same question (rendered training prompt + pinned generation fields)."""

    def __init__(self) -> None:
        self.generation = load_generation_params(DEFAULT_GENERATION_CONFIG).as_upstream_fields()
        self.gateway_headers = {"authorization": f"Bearer {BENCH_KEY}"}

    def _question(self, n: int) -> tuple[str, str]:
        prompt = BENCH_PROMPTS[n % len(BENCH_PROMPTS)]
        return f"{prompt.question} (request {n})", prompt.schema

    def gateway(self, n: int) -> bytes:
        question, schema = self._question(n)
        return json.dumps({"prompt": question, "schema": schema}).encode()

    def direct(self, n: int) -> bytes:
        question, schema = self._question(n)
        return json.dumps({"model": "qwen2.5-1.5b-sql", "prompt": render_prompt(question, schema),
                           **self.generation}).encode()


def _check_gateway_answer(response: ProbeResponse) -> str:
    if response.status != 200:
        return f"http_{response.status}"
    body = json.loads(response.body)
    if "sql" not in body:
        return "ok"  # the bare forwarder checks nothing
    return "ok" if body["sql"]["valid"] else "sql_invalid"


async def measure_added_latency(gateway: ProbeClient, direct: ProbeClient, bodies: Bodies, plan: OverheadPlan
                                ) -> dict[str, Any]:
    """Open loop, interleaved: gateway request i at i/rate, direct request i half a period later."""
    for n in range(plan.warmup_requests):
        await gateway.request("POST", "/v1/completions", bodies.gateway(n), bodies.gateway_headers)
        await direct.request("POST", "/v1/completions", bodies.direct(n))
    count = int(plan.rate * plan.duration_s)
    loop = asyncio.get_running_loop()
    schedule = sorted([(n / plan.rate, "gateway", n) for n in range(count)]
                      + [((n + 0.5) / plan.rate, "direct", n) for n in range(count)])
    results: dict[str, dict[int, ProbeResponse]] = {"gateway": {}, "direct": {}}
    late_ms: list[float] = []

    async def send(target: str, n: int) -> None:
        if target == "gateway":
            response = await gateway.request("POST", "/v1/completions", bodies.gateway(n + 10**6),
                                             bodies.gateway_headers)
        else:
            response = await direct.request("POST", "/v1/completions", bodies.direct(n + 10**6))
        results[target][n] = response

    began = loop.time() + 0.05
    tasks = []
    for offset, target, n in schedule:
        delay = began + offset - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        late_ms.append(max(0.0, (loop.time() - began - offset) * 1000))
        tasks.append(asyncio.create_task(send(target, n)))
    await asyncio.gather(*tasks)
    wall = loop.time() - began
    gateway_s = [results["gateway"][n].latency_s for n in range(count)]
    direct_s = [results["direct"][n].latency_s for n in range(count)]
    outcomes = Counter(_check_gateway_answer(results["gateway"][n]) for n in range(count))
    direct_outcomes = Counter(str(results["direct"][n].status) for n in range(count))
    gateway_summary, direct_summary = latency_ms(gateway_s), latency_ms(direct_s)
    added = difference_ms(gateway_summary, direct_summary)
    return {
        "design": f"open loop, {plan.rate:g} req/s to each target for {plan.duration_s:g} s, the direct request "
                  "half a period after the gateway one; same client (benchmarks/http_probe.py), same run",
        "requests_per_target": count,
        "wall_s": round(wall, 3),
        "schedule_lateness_ms": latency_ms(v / 1000 for v in late_ms),
        "gateway_outcomes": dict(outcomes),
        "direct_outcomes": dict(direct_outcomes),
        "gateway_latency_ms": gateway_summary,
        "direct_latency_ms": direct_summary,
        "added_latency_ms": added,
        "paired_difference_ms": paired_overhead_ms(gateway_s, direct_s),
        "targets": {"added_p50_ms": TARGETS["added_p50_ms"], "added_p99_ms": TARGETS["added_p99_ms"]},
        "meets_targets": (added["p50"] is not None and added["p50"] <= TARGETS["added_p50_ms"]
                          and added["p99"] is not None and added["p99"] <= TARGETS["added_p99_ms"]),
    }


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def closed_loop(send: Callable[[int], Awaitable[ProbeResponse]], concurrency: int, duration_s: float
                      ) -> tuple[list[ProbeResponse], float]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration_s
    responses: list[ProbeResponse] = []
    counter = iter(range(10**9))

    async def worker() -> None:
        while loop.time() < deadline:
            responses.append(await send(next(counter)))

    began = loop.time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return responses, loop.time() - began


async def measure_ceiling(gateway: ProbeClient, bodies: Bodies, plan: OverheadPlan, gateway_pid: int
                          ) -> dict[str, Any]:
    """Closed loop against one gateway process: req/s, latency and its CPU time per request."""
    def to_gateway(n: int) -> Awaitable[ProbeResponse]:
        return gateway.request("POST", "/v1/completions", bodies.gateway(2 * 10**6 + n), bodies.gateway_headers)

    cpu_before = process_cpu_s(gateway_pid)
    responses, wall = await closed_loop(to_gateway, plan.ceiling_concurrency, plan.ceiling_s)
    cpu_used = process_cpu_s(gateway_pid) - cpu_before
    ok = sum(1 for r in responses if r.status == 200)
    return {"requests": len(responses), "ok": ok, "req_per_s": round(ok / wall, 1),
            "latency_ms": latency_ms(r.latency_s for r in responses),
            "gateway_cpu_ms_per_request": round(cpu_used * 1000 / max(1, len(responses)), 3)}


async def measure_direct_ceiling(direct: ProbeClient, bodies: Bodies, plan: OverheadPlan) -> dict[str, Any]:
    """The same closed loop against the fake alone: shows that the client and the fake are not the limit."""
    def to_direct(n: int) -> Awaitable[ProbeResponse]:
        return direct.request("POST", "/v1/completions", bodies.direct(2 * 10**6 + n))

    responses, wall = await closed_loop(to_direct, plan.ceiling_concurrency, plan.ceiling_s)
    return {"requests": len(responses), "req_per_s": round(sum(1 for r in responses if r.status == 200) / wall, 1),
            "latency_ms": latency_ms(r.latency_s for r in responses)}


def py_spy_command() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def summarise_profile(collapsed: str, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function (file, function) from py-spy's raw collapsed stacks."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_area: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(frame) for frame in stack.split(";")]
        self_counts[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
        for area in {_area(frame) for frame in stack.split(";")}:
            by_area[area] += count

    def shares(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"function": name, "share": round(n / total, 4)} for name, n in counter.most_common(top)]

    return {"samples": total, "self": shares(self_counts), "inclusive": shares(inclusive),
            "inclusive_by_area": {area: round(n / total, 4) for area, n in by_area.most_common(30)} if total else {}}


def _frame_name(frame: str) -> str:
    """`func (path/to/file.py:123)` -> `file-relative path:func` without the line number."""
    function, _, location = frame.partition(" (")
    path = location.rstrip(")").rsplit(":", 1)[0]
    return f"{_short_path(path)}:{function}"


def _short_path(path: str) -> str:
    for marker in ("site-packages/", "lib/python3", str(REPO_ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1].split("/", 1)[-1] if marker == "lib/python3" else path.split(marker, 1)[1]
    return path


def _area(frame: str) -> str:
    """The module a frame belongs to: `gateway/sql_check/`, or a library's top package (`sqlglot`, `httpx`)."""
    path = _short_path(frame.partition(" (")[2].rstrip(")").rsplit(":", 1)[0])
    if path.startswith(("gateway/", "benchmarks/")):
        return path
    return path.split("/", 1)[0]


def start_py_spy(py_spy: str, pid: int, duration_s: float, raw_path: Path) -> subprocess.Popen[bytes]:
    """Sample `pid` at 500 Hz without pausing it; collapsed stacks (one line per stack and count) to `raw_path`."""
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--rate", "500", "--duration", str(int(duration_s)),
         "--format", "raw", "--nonblocking", "--output", str(raw_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def profile_gateway(gateway: ProbeClient, bodies: Bodies, plan: OverheadPlan, gateway_pid: int,
                          raw_path: Path) -> dict[str, Any]:
    py_spy = py_spy_command()
    if py_spy is None or plan.profile_s <= 0:
        return {"skipped": "py-spy not installed" if py_spy is None else "profile_s is 0"}
    recorder = start_py_spy(py_spy, gateway_pid, plan.profile_s, raw_path)

    def to_gateway(n: int) -> Awaitable[ProbeResponse]:
        return gateway.request("POST", "/v1/completions", bodies.gateway(3 * 10**6 + n), bodies.gateway_headers)

    responses, wall = await closed_loop(to_gateway, plan.ceiling_concurrency, plan.profile_s + 1.0)
    _, errors = await asyncio.to_thread(recorder.communicate)
    if recorder.returncode != 0 or not await asyncio.to_thread(raw_path.exists):
        return {"skipped": f"py-spy failed: {errors.decode(errors='replace')[-400:]}"}
    summary = summarise_profile(await asyncio.to_thread(raw_path.read_text))
    return {"tool": "py-spy record --rate 500 --nonblocking (busy samples only)", "raw_stacks": raw_path.name,
            "load_req_per_s": round(len(responses) / wall, 1), **summary}


async def measure_cache_hit(cached: ProbeClient, bodies: Bodies, plan: OverheadPlan) -> dict[str, Any]:
    body = bodies.gateway(4 * 10**6)
    first = await cached.request("POST", "/v1/completions", body, bodies.gateway_headers)
    hits: list[ProbeResponse] = []
    for _ in range(plan.cache_requests):
        hits.append(await cached.request("POST", "/v1/completions", body, bodies.gateway_headers))
    headers = Counter(r.headers.get("x-sqlgate-cache", "none") for r in hits)
    summary = latency_ms(r.latency_s for r in hits if r.headers.get("x-sqlgate-cache") == "hit")
    return {
        "design": f"one request, then the same request {plan.cache_requests} times one at a time (closed loop, "
                  "concurrency 1) through a gateway with its in-process memory cache",
        "first_request": {"cache": first.headers.get("x-sqlgate-cache"), "latency_ms": round(first.latency_s * 1000,
                                                                                              3)},
        "cache_headers": dict(headers),
        "hit_latency_ms": summary,
        "target_p50_ms": TARGETS["cache_hit_p50_ms"],
        "meets_target": summary["p50"] is not None and float(summary["p50"]) <= TARGETS["cache_hit_p50_ms"],
    }


def transport_rewrite_cost_us(bodies: Bodies) -> float:
    """What the serving benchmarks' exact-length rewrite adds to each gateway request (microseconds)."""
    body = json.loads(bodies.direct(0))
    repeats = 2000
    return round(timeit.timeit(lambda: force_exact_length(body), number=repeats) / repeats * 1e6, 2)


async def measure_variant(gateway: GatewayUnderTest, fake_url: str, bodies: Bodies, plan: OverheadPlan,
                          out_dir: Path) -> dict[str, Any]:
    plain, direct = ProbeClient(gateway.plain.base_url), ProbeClient(fake_url)
    cached = ProbeClient(gateway.cached.base_url) if gateway.cached is not None else None
    result: dict[str, Any] = {}
    try:
        say(f"overhead [{gateway.name}]: open loop, gateway vs direct")
        added = result["added_latency"] = await measure_added_latency(plain, direct, bodies, plan)
        say(f"overhead [{gateway.name}]: added p50 {added['added_latency_ms']['p50']} ms, "
            f"p99 {added['added_latency_ms']['p99']} ms")
        ceiling = result["ceiling"] = await measure_ceiling(plain, bodies, plan, gateway.plain.process.pid)
        say(f"overhead [{gateway.name}]: ceiling {ceiling['req_per_s']} req/s, "
            f"{ceiling['gateway_cpu_ms_per_request']} ms CPU per request")
        if cached is not None:
            result["profile"] = await profile_gateway(plain, bodies, plan, gateway.plain.process.pid,
                                                      out_dir / f"overhead-profile-{gateway.name}.txt")
            cache = result["cache_hit"] = await measure_cache_hit(cached, bodies, plan)
            say(f"overhead [{gateway.name}]: cache hit p50 {cache['hit_latency_ms']['p50']} ms")
    finally:
        for client in (plain, cached, direct):
            if client is not None:
                await client.aclose()
    return result


async def run_async(plan: OverheadPlan, fake_url: str, gateways: Sequence[GatewayUnderTest], out_dir: Path
                    ) -> dict[str, Any]:
    bodies = Bodies()
    results = {gateway.name: await measure_variant(gateway, fake_url, bodies, plan, out_dir) for gateway in gateways}
    direct = ProbeClient(fake_url)
    try:
        direct_ceiling = await measure_direct_ceiling(direct, bodies, plan)
    finally:
        await direct.aclose()
    return {"variants": results, "fake_direct_ceiling": direct_ceiling,
            "exact_length_rewrite_us": transport_rewrite_cost_us(bodies)}


def _event_loop_runner() -> Callable[[Awaitable[Any]], Any]:
    try:
        import uvloop

        return uvloop.run  # type: ignore[no-any-return]
    except ImportError:
        return asyncio.run


def run(plan: OverheadPlan, out_dir: Path, variants: Sequence[str] = tuple(GATEWAY_VARIANTS)) -> dict[str, Any]:
    if "gateway" not in variants:
        raise ValueError("the gateway variant is the one measured; the others are references")
    """Start the fake and the gateways, measure, stop them; return the report."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sqlgate-bench-") as scratch, \
         fake_and_gateways(Path(scratch), variants) as (fake, gateways):
        measured = _event_loop_runner()(run_async(plan, fake.base_url, gateways, out_dir))
    headline = measured["variants"]["gateway"]
    floor = measured["variants"].get(FLOOR_VARIANT)
    httpx_floor = measured["variants"].get("bare_fastapi_httpx")
    return {
        "benchmark": "overhead",
        "command": "python -m benchmarks.overhead --out reports/overhead.json (part of make bench)",
        "plan": asdict(plan),
        "host": host_facts(),
        "setup": {
            "upstream": "benchmarks/fake_upstream.py: raw asyncio HTTP/1.1, canned vLLM completion with the "
                        "question's reference SQL (so the SQL check runs its full path and passes)",
            "gateway": "python -m gateway (uvicorn, 1 worker, uvloop/httptools when installed), auth on, in-process "
                       "rate limiter on (limit too high to bite), cache off (cache on for cache_hit); request log "
                       "lines to a file; bare_fastapi_aiohttp: benchmarks/bare_forwarder.py, the framework floor "
                       "on the gateway's transport; bare_fastapi_httpx: the same on httpx",
            "client": "benchmarks/http_probe.py on uvloop (keep-alive pool), one process",
            "prompts": f"{len(BENCH_PROMPTS)} questions over 8 schemas of 141-213 tokens, unique per request",
        },
        "headline": {
            "added_p50_ms": headline["added_latency"]["added_latency_ms"]["p50"],
            "added_p99_ms": headline["added_latency"]["added_latency_ms"]["p99"],
            "ceiling_req_per_s": headline["ceiling"]["req_per_s"],
            "gateway_cpu_ms_per_request": headline["ceiling"]["gateway_cpu_ms_per_request"],
            "cache_hit_p50_ms": headline["cache_hit"]["hit_latency_ms"]["p50"],
            # The same measures for a bare FastAPI + aiohttp forwarder in the same run: the framework's own floor.
            "floor_added_p50_ms": floor["added_latency"]["added_latency_ms"]["p50"] if floor else None,
            "floor_added_p99_ms": floor["added_latency"]["added_latency_ms"]["p99"] if floor else None,
            "floor_cpu_ms_per_request": floor["ceiling"]["gateway_cpu_ms_per_request"] if floor else None,
            "floor_ceiling_req_per_s": floor["ceiling"]["req_per_s"] if floor else None,
            # ... and on httpx, the transport the gateway used before.
            "httpx_floor_added_p50_ms": (httpx_floor["added_latency"]["added_latency_ms"]["p50"]
                                         if httpx_floor else None),
            "httpx_floor_cpu_ms_per_request": (httpx_floor["ceiling"]["gateway_cpu_ms_per_request"]
                                               if httpx_floor else None),
            "targets": TARGETS,
        },
        **measured,
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports/overhead.json"))
    parser.add_argument("--quick", action="store_true", help="a tiny run of every code path (seconds)")
    args = parser.parse_args(argv)
    plan = QUICK_PLAN if args.quick else OverheadPlan()
    report = run(plan, args.out.parent)
    write_report(report, args.out)
    say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
