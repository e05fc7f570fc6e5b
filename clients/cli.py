"""The `sqlgate` command line: `ask` one question, `eval` a dataset, `bench` the gateway (and vLLM), `mcp` (stdio),
`feedback` (rate an answer, export verified pairs: clients/feedback_cli.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from clients.bench import (
    DEFAULT_VLLM_URL,
    BenchConfig,
    load_generation,
    load_prompts,
    run_bench,
    write_report,
)
from clients.bench import format_summary as format_bench_summary
from clients.catalog import CatalogError, schema_from
from clients.connection import DEFAULT_MODEL, DEFAULT_TIMEOUT_S, resolve_connection
from clients.eval_data import DataError
from clients.evaluation import EvalConfig, RunMismatch, run_eval
from clients.evaluation import format_summary as format_eval_summary
from clients.failures import ExitCode, GatewayFailure, UsageError
from clients.feedback_cli import add_feedback_command
from clients.gateway_client import ROUTES, Answer, Route, SqlGatewayClient
from clients.mcp_stdio import serve_stdio

PROG = "sqlgate"


def _connection_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument(
        "--base-url",
        metavar="URL",
        help="gateway URL, with or without /v1 (default: $SQLGATE_URL, else $OPENAI_BASE_URL, "
        "else http://127.0.0.1:8000)",
    )
    group.add_argument(
        "--api-key", metavar="KEY", help="gateway API key (default: $SQLGATE_API_KEY, else $OPENAI_API_KEY)"
    )
    group.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"seconds to wait for one answer (default {DEFAULT_TIMEOUT_S:g})",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Client of the sqlgate text-to-SQL gateway: ask questions, evaluate datasets, benchmark.",
        epilog="Exit codes: 0 ok, 2 usage or bad input, 3 SQL rejected by the gateway's check, 4 auth, "
        "5 rate limited, 6 upstream or network failure.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    connection = _connection_options()

    ask = commands.add_parser(
        "ask",
        parents=[connection],
        help="turn one question into SQL",
        description="Send a question and the CREATE TABLE statements it is about; print the SQL on stdout.",
        epilog="Examples:\n"
        "  sqlgate ask 'How many singers do we have?' --schema schema.sql\n"
        "  cat schema.sql | sqlgate ask -q 'How many singers do we have?' -v\n"
        "Exit codes: 0 valid SQL, 2 usage or bad input, 3 SQL rejected by the check, 4 authentication, "
        "5 rate limited, 6 upstream or network failure.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ask.add_argument("question", nargs="?", help="the question in plain language")
    ask.add_argument(
        "-q",
        "--question",
        dest="question_option",
        metavar="QUESTION",
        help="the question (instead of the positional argument)",
    )
    ask.add_argument(
        "--schema",
        metavar="FILE",
        help="file with CREATE TABLE statements, '-' for stdin (default: stdin when piped); "
        "text starting with CREATE TABLE is used as is",
    )
    ask.add_argument(
        "--schema-from",
        metavar="SOURCE",
        help="read the schema from a live database's catalog, read-only, instead: postgresql://..., "
        "sqlite:///FILE or duckdb:///FILE (a whole database is fine: the gateway shows the model the tables the "
        "question needs)",
    )
    ask.add_argument(
        "--tables",
        metavar="NAMES",
        help="comma-separated tables to always show the model, for a big schema whose chosen tables missed one",
    )
    ask.add_argument("--dialect", help="SQL dialect for the gateway's check (default: the gateway's, sqlite)")
    ask.add_argument(
        "--route",
        choices=ROUTES,
        default="completions",
        help="gateway route: /v1/completions (default), /v1/chat/completions or /v1/sql",
    )
    ask.add_argument("--model", help=f"model id (default {DEFAULT_MODEL}, else the one the gateway lists)")
    ask.add_argument("--json", action="store_true", help="print the whole JSON response instead of the SQL")
    ask.add_argument("-v", "--verbose", action="store_true", help="print the check results on stderr")
    ask.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=2,
        metavar="N",
        help="retries on 408/409/429/5xx and network errors, as the openai SDK does (default 2)",
    )
    ask.set_defaults(handler=_ask)

    evaluate = commands.add_parser(
        "eval",
        parents=[connection],
        help="score the gateway on a question/context/answer dataset",
        description="Ask the gateway every row of FILE (JSONL, or the sql-create-context JSON array), report "
        "exact match as the model's publication defined it, a sqlglot-normalised match, the share "
        "of valid / read-only / schema-grounded SQL, and whether each query compiles in SQLite. "
        "Finished rows are kept in OUT/rows.jsonl: rerunning the same command resumes.",
        epilog="Exit codes: 0 every row scored, 2 bad input, 4 authentication, 5 rows left by rate limits, "
        "6 rows left by upstream or network failures (rerun to finish them).",
    )
    evaluate.add_argument(
        "file", type=Path, metavar="FILE", help="JSONL or JSON array of question/context/answer"
    )
    evaluate.add_argument(
        "--split",
        choices=("all", "heldout"),
        default="all",
        help="all rows in file order, or the publication's 500 held-out rows "
        "(default_rng(42).permutation(N)[:500] of the sql-create-context file)",
    )
    evaluate.add_argument("--limit", type=_positive_int, metavar="N", help="only the first N selected rows")
    evaluate.add_argument(
        "-c",
        "--concurrency",
        type=_positive_int,
        default=4,
        metavar="N",
        help="requests in flight at once (default 4)",
    )
    evaluate.add_argument(
        "--out",
        type=Path,
        default=Path("sqlgate-eval"),
        metavar="DIR",
        help="folder for rows.jsonl, run.json, report.json and report.png (default sqlgate-eval)",
    )
    evaluate.add_argument("--fresh", action="store_true", help="forget finished rows in DIR and start over")
    evaluate.add_argument(
        "--route",
        choices=("completions", "sql"),
        default="completions",
        help="/v1/completions through the openai SDK (default) or /v1/sql",
    )
    evaluate.add_argument(
        "--dialect", default="sqlite", help="dialect for the check and normalisation (sqlite)"
    )
    evaluate.add_argument("--model", help="model id (default: the one the gateway lists)")
    evaluate.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=4,
        metavar="N",
        help="SDK retries per row on 429/5xx/network errors (default 4)",
    )
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    evaluate.add_argument("--no-chart", action="store_true", help="skip report.png")
    evaluate.set_defaults(handler=_eval)

    bench = commands.add_parser(
        "bench",
        parents=[connection],
        help="load-test the gateway and/or vLLM",
        description="Send realistic questions at the gateway (question + schema) or at vLLM directly (the "
        "rendered training prompt, the same greedy parameters) and report latency percentiles, "
        "time to first token, throughput and errors by status. Bounded by --requests and "
        "--duration, whichever comes first.",
        epilog="Examples:\n"
        "  sqlgate bench --requests 200 --concurrency 8 --out bench.json\n"
        "  sqlgate bench --duration 60 --rate 2 --arrivals poisson --stream\n"
        "  sqlgate bench --compare --unique-prompts --requests 50 --concurrency 4 "
        "--vllm-url http://127.0.0.1:8001",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "--target",
        choices=("gateway", "vllm"),
        default="gateway",
        help="where to send requests (default gateway)",
    )
    bench.add_argument(
        "--compare",
        action="store_true",
        help="run the gateway, then vLLM, with identical prompts, and report gateway/vLLM ratios",
    )
    bench.add_argument(
        "--requests",
        type=_positive_int,
        metavar="N",
        help="stop after N requests per target (default 100 when --duration is not given)",
    )
    bench.add_argument(
        "--duration", type=_positive_float, metavar="S", help="start no request after S seconds per target"
    )
    bench.add_argument(
        "-c",
        "--concurrency",
        type=_positive_int,
        default=1,
        metavar="C",
        help="closed loop: C requests in flight, each sent when the previous answers (default 1)",
    )
    bench.add_argument(
        "--rate",
        type=_positive_float,
        metavar="R",
        help="open loop: start R requests per second whatever the answers do",
    )
    bench.add_argument(
        "--arrivals",
        choices=("uniform", "poisson"),
        default="uniform",
        help="open-loop spacing: even (default) or Poisson",
    )
    bench.add_argument(
        "--processes",
        type=_positive_int,
        default=1,
        metavar="P",
        help="client processes (forked), each with its own event loop and HTTP client (default 1)",
    )
    bench.add_argument("--stream", action="store_true", help="stream answers and measure time to first token")
    bench.add_argument(
        "--prompts",
        type=Path,
        metavar="FILE",
        help="JSONL of question + schema (or context); default: a built-in realistic set",
    )
    bench.add_argument(
        "--unique-prompts",
        action="store_true",
        help="append the request number to each question so no cache answers (for --compare)",
    )
    bench.add_argument("--model", help="gateway model id (default: none sent, the gateway uses its own)")
    bench.add_argument(
        "--vllm-url",
        default=os.environ.get("SQLGATE_UPSTREAM_URL", DEFAULT_VLLM_URL),
        metavar="URL",
        help="vLLM URL for --target vllm / --compare "
        "(default $SQLGATE_UPSTREAM_URL, else http://127.0.0.1:8001)",
    )
    bench.add_argument("--vllm-api-key", metavar="KEY", help="vLLM's --api-key, if it was started with one")
    bench.add_argument("--vllm-model", help="vLLM served model name (default: the first it lists)")
    bench.add_argument(
        "--generation-config",
        type=Path,
        metavar="FILE",
        help="TOML of generation parameters for vLLM (default: the gateway's greedy defaults)",
    )
    bench.add_argument("--max-tokens", type=_positive_int, metavar="N", help="vLLM target only: max_tokens")
    bench.add_argument(
        "--ignore-eos",
        action="store_true",
        help="vLLM target only: keep generating past the end token (fixed-length outputs)",
    )
    bench.add_argument("--seed", type=int, default=0, help="seed for Poisson arrivals (default 0)")
    bench.add_argument(
        "--out",
        type=Path,
        metavar="FILE.json",
        help="write the JSON report here and the latency plot next to it (.png)",
    )
    bench.set_defaults(handler=_bench)

    mcp = commands.add_parser(
        "mcp",
        help="serve the gateway's MCP tools on stdio, for local agents",
        description="An MCP server on stdin/stdout for agents that start their tools as subprocesses (desktop "
        "assistants, IDEs). It lists and calls the gateway's tools (generate_sql, check_sql, list_dialects) at "
        "URL/mcp with the key; docs/agents.md has the configuration snippets.",
        epilog="Example (what an agent's mcpServers entry runs):\n"
        "  sqlgate mcp --url http://127.0.0.1:8000 --key $SQLGATE_API_KEY",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mcp.add_argument("--url", metavar="URL", help="gateway URL (default: $SQLGATE_URL, else $OPENAI_BASE_URL, "
                     "else http://127.0.0.1:8000)")
    mcp.add_argument("--key", metavar="KEY", help="gateway API key (default: $SQLGATE_API_KEY, else "
                     "$OPENAI_API_KEY; the environment keeps it out of process lists)")
    mcp.add_argument("--timeout", type=_positive_float, default=DEFAULT_TIMEOUT_S, metavar="S",
                     help=f"seconds to wait for one answer (default {DEFAULT_TIMEOUT_S:g})")
    mcp.set_defaults(handler=_mcp)

    add_feedback_command(commands, connection)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sqlgate` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except UsageError as exc:
        _error(str(exc))
        return ExitCode.USAGE
    except GatewayFailure as failure:
        _error(failure.one_line())
        return failure.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


def _error(message: str, stream: TextIO | None = None) -> None:
    print(f"{PROG}: error: {' '.join(message.split())}", file=stream or sys.stderr)


# ----------------------------------------------------------------------------------------------------
# ask


def _question(args: argparse.Namespace) -> str:
    if args.question and args.question_option:
        raise UsageError("give the question once: as an argument or with -q, not both")
    question = args.question or args.question_option
    if not question or not question.strip():
        raise UsageError("no question: sqlgate ask 'How many singers do we have?' --schema schema.sql")
    return str(question)


def _schema(value: str | None) -> str:
    if value is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError("no schema: pass --schema FILE, or pipe CREATE TABLE statements on stdin")
        value = "-"
    if value == "-":
        try:
            text = sys.stdin.read()
        except OSError as exc:
            raise UsageError(f"cannot read the schema from stdin: {exc}") from exc
    elif Path(value).exists() and not Path(value).is_dir():  # a file, or a pipe such as <(...) or /dev/stdin
        try:
            text = Path(value).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read schema file {value}: {exc}") from exc
    elif value.lstrip().upper().startswith("CREATE"):
        text = value
    else:
        raise UsageError(f"schema file {value} does not exist")
    if not text.strip():
        raise UsageError("the schema is empty: give CREATE TABLE statements")
    return text


def _print_check(
    answer_check: dict[str, Any], *, cache: str | None, latency_s: float | None, usage: dict[str, Any] | None
) -> None:
    def names(key: str) -> str:
        values = answer_check.get(key) or []
        return ", ".join(str(v) for v in values) if values else "none"

    verdict = "valid" if answer_check.get("valid") else "INVALID"
    print(
        f"check: {verdict}, statement {answer_check.get('statement_type') or '?'}, "
        f"read-only {'yes' if answer_check.get('read_only') else 'no'}, "
        f"dialect {answer_check.get('dialect')}",
        file=sys.stderr,
    )
    if answer_check.get("target_verified"):
        engine = answer_check.get("target_engine") or answer_check.get("target_message") or ""
        print(f"{answer_check.get('dialect')}: verified by {answer_check['target_verified']}"
              + (f" ({engine})" if engine else ""), file=sys.stderr)
    print(f"tables: {names('tables')}; columns: {names('columns')}", file=sys.stderr)
    print(
        f"unknown tables: {names('unknown_tables')}; unknown columns: {names('unknown_columns')}",
        file=sys.stderr,
    )
    for problem in answer_check.get("problems") or []:
        if isinstance(problem, dict):
            print(f"problem: {problem.get('code')}: {problem.get('message')}", file=sys.stderr)
    details = []
    if cache:
        details.append(f"cache {cache}")
    if latency_s is not None:
        details.append(f"latency {latency_s * 1000:.0f} ms")
    if usage:
        details.append(f"tokens {usage.get('prompt_tokens')} in, {usage.get('completion_tokens')} out")
    if details:
        print(", ".join(details), file=sys.stderr)


async def _ask_async(args: argparse.Namespace, question: str, schema: str) -> Answer:
    connection = resolve_connection(args.base_url, args.api_key, os.environ)
    async with SqlGatewayClient(
        connection, model=args.model, timeout_s=args.timeout, max_retries=args.max_retries
    ) as client:
        route: Route = args.route
        tables = [name.strip() for name in (args.tables or "").split(",") if name.strip()] or None
        return await client.ask(question, schema, dialect=args.dialect, route=route, tables=tables)


def _ask(args: argparse.Namespace) -> int:
    question = _question(args)
    if args.schema_from is not None:
        if args.schema is not None:
            raise UsageError("give --schema or --schema-from, not both")
        try:
            schema = schema_from(args.schema_from)
        except CatalogError as error:
            raise UsageError(str(error)) from None
    else:
        schema = _schema(args.schema)
    try:
        answer = asyncio.run(_ask_async(args, question, schema))
    except GatewayFailure as failure:
        if args.json and failure.body is not None:
            print(json.dumps(failure.body, indent=2))
        if failure.sql_rejected:
            if args.verbose and failure.check:
                if failure.check.get("query"):
                    print(f"rejected SQL: {failure.check['query']}", file=sys.stderr)
                _print_check(failure.check, cache=None, latency_s=None, usage=None)
            _error(f"SQL rejected: {failure.one_line()}")
            return ExitCode.SQL_REJECTED
        raise
    if args.json:
        print(json.dumps(answer.response, indent=2))
    else:
        print(answer.sql)
    if args.verbose:
        usage = answer.response.get("usage")
        _print_check(
            answer.check,
            cache=answer.cache,
            latency_s=answer.latency_s,
            usage=usage if isinstance(usage, dict) else None,
        )
        if answer.id:
            source = answer.check.get("source")
            print(f"answer {answer.id}{f' ({source})' if source else ''}: rate it with "
                  f"sqlgate feedback rate {answer.id} up|down", file=sys.stderr)
    if not answer.valid:
        _error("the gateway returned SQL that did not pass its check")
        return ExitCode.SQL_REJECTED
    return ExitCode.OK


# ----------------------------------------------------------------------------------------------------
# mcp


def _mcp(args: argparse.Namespace) -> int:
    connection = resolve_connection(args.url, args.key, os.environ)
    asyncio.run(serve_stdio(connection, args.timeout))
    return ExitCode.OK


# ----------------------------------------------------------------------------------------------------
# eval


def _eval(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise UsageError(f"{args.file} does not exist")
    config = EvalConfig(
        path=args.file,
        connection=resolve_connection(args.base_url, args.api_key, os.environ),
        out_dir=args.out,
        split=args.split,
        limit=args.limit,
        concurrency=args.concurrency,
        route=args.route,
        dialect=args.dialect,
        model=args.model,
        timeout_s=args.timeout,
        max_retries=args.max_retries,
        progress=not args.no_progress,
        fresh=args.fresh,
        chart=not args.no_chart,
    )
    try:
        outcome = run_eval(config)
    except (DataError, RunMismatch) as exc:
        raise UsageError(str(exc)) from exc
    print(format_eval_summary(outcome.report, args.out))
    return outcome.exit_code


# ----------------------------------------------------------------------------------------------------
# bench


def _bench(args: argparse.Namespace) -> int:
    connection = resolve_connection(args.base_url, args.api_key, os.environ)
    try:
        prompts = load_prompts(args.prompts) if args.prompts else None
        generation = load_generation(args.generation_config) if args.generation_config else None
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    requests = args.requests if args.requests is not None or args.duration is not None else 100
    config = BenchConfig(
        target=args.target,
        gateway_url=connection.root_url,
        api_key=connection.api_key,
        model=args.model,
        vllm_url=args.vllm_url,
        vllm_api_key=args.vllm_api_key,
        vllm_model=args.vllm_model,
        requests=requests,
        duration_s=args.duration,
        concurrency=args.concurrency,
        rate=args.rate,
        arrivals=args.arrivals,
        processes=args.processes,
        stream=args.stream,
        unique_prompts=args.unique_prompts,
        max_tokens=args.max_tokens,
        ignore_eos=args.ignore_eos,
        timeout_s=args.timeout,
        compare=args.compare,
        seed=args.seed,
    )
    if prompts:
        config = replace(config, prompts=prompts)
    if generation:
        config = replace(config, generation=generation)
    try:
        config.validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        report = run_bench(config)
    except Exception as exc:  # discovery of vLLM's model, a dead client process: one line, not a traceback
        import httpx

        if isinstance(exc, httpx.HTTPError):
            raise GatewayFailure(f"cannot reach vLLM at {args.vllm_url}: {exc}") from exc
        raise
    print(format_bench_summary(report))
    if args.out:
        chart = write_report(report, args.out)
        print(f"report: {args.out}  plot: {chart}")
    if all(target["ok"] == 0 for target in report["targets"].values()):
        _error("no request succeeded")
        return ExitCode.UPSTREAM
    return ExitCode.OK


# ----------------------------------------------------------------------------------------------------
# argument types


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


if __name__ == "__main__":
    sys.exit(main())
