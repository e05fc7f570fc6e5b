"""`sqlgate feedback`: rate an answer (👍/👎, optionally with the corrected SQL) and export the verified pairs as
training rows for the next fine-tune. Speaks only HTTP to the gateway (`POST /v1/feedback`,
`GET /v1/feedback/export`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from clients.connection import Connection, resolve_connection
from clients.failures import ExitCode, GatewayFailure, UsageError

TRAINING_FIELDS = ("question", "context", "answer")  # b-mc2/sql-create-context's rows, what make quality reads


def add_feedback_command(commands: Any, connection: argparse.ArgumentParser) -> None:
    """`sqlgate feedback rate|export` on the main parser's subcommands."""
    feedback = commands.add_parser(
        "feedback", help="rate an answer, or export the verified queries for fine-tuning",
        description="Tell the gateway whether an answer was right (its verified queries then answer the same "
        "question again without the model), and export what the team verified as training rows.")
    actions = feedback.add_subparsers(dest="action", required=True, metavar="ACTION")
    rate = actions.add_parser(
        "rate", parents=[connection], help="rate one answer up or down",
        description="Rate the answer with this id (the `id` of the response; `sqlgate ask -v` prints it).",
        epilog="Examples:\n  sqlgate feedback rate sql-8f1c... up\n"
        "  sqlgate feedback rate cmpl-2a9d... down --correct fixed.sql --comment 'count distinct singers'\n"
        "Exit codes: 0 kept, 2 usage or unknown id, 3 the correction failed the check, 4 auth, 5 rate limited, "
        "6 gateway or store unavailable.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    rate.add_argument("id", help="the answer's id")
    rate.add_argument("rating", choices=("up", "down"))
    rate.add_argument("--correct", metavar="SQL|FILE",
                      help="the right query (a file, '-' for stdin, or the SQL itself), in the answer's dialect; "
                           "checked by the gateway before it is kept")
    rate.add_argument("--comment", help="why (kept with the rating)")
    rate.add_argument("--json", action="store_true", help="print the gateway's whole answer")
    rate.set_defaults(handler=_rate)
    export = actions.add_parser(
        "export", parents=[connection], help="write the verified queries as JSONL training rows",
        description="Every live verified query (ratings and corrections) as one JSON line "
        '{"question", "context", "answer"}: the training format, which `make quality` and `sqlgate eval` read.',
        epilog="Example:\n  sqlgate feedback export --since 2025-12-01 --out verified.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="only pairs verified on or after this day")
    export.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout)")
    export.set_defaults(handler=_export)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got '{text}'") from None


def _request(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    connection: Connection = resolve_connection(args.base_url, args.api_key, os.environ)
    try:
        response = httpx.request(method, f"{connection.root_url}{path}", headers=connection.auth_headers(),
                                 timeout=args.timeout, **kwargs)
    except httpx.HTTPError as exc:
        raise GatewayFailure(f"cannot reach the gateway at {connection.root_url}: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.status_code >= 400:
        raise GatewayFailure.from_body(response.status_code, body, response.headers.get("retry-after"))
    if not isinstance(body, dict):
        raise GatewayFailure(f"the gateway's answer is not a JSON object (HTTP {response.status_code})")
    return body


def _correction(value: str | None) -> str | None:
    if value is None:
        return None
    if value == "-":
        text = sys.stdin.read()
    elif Path(value).is_file():
        try:
            text = Path(value).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {value}: {exc}") from exc
    else:
        text = value
    if not text.strip():
        raise UsageError("the correction is empty")
    return text.strip()


def _rate(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"id": args.id, "rating": args.rating}
    correction = _correction(args.correct)
    if correction is not None:
        body["corrected_sql"] = correction
    if args.comment:
        body["comment"] = args.comment
    try:
        receipt = _request(args, "POST", "/v1/feedback", json=body)
    except GatewayFailure as failure:
        if failure.status == 422 and failure.param == "corrected_sql":
            reasons = "; ".join(str(p.get("message")) for p in (failure.check or {}).get("problems", []))
            print(f"sqlgate: the correction was not kept: {reasons or failure.message}", file=sys.stderr)
            return ExitCode.SQL_REJECTED
        raise
    if args.json:
        print(json.dumps(receipt, indent=2))
        return ExitCode.OK
    verified = receipt.get("verified")
    said = f"rated {receipt.get('answer_id')} {args.rating}"
    if isinstance(verified, dict):
        said += f"; verified query {verified.get('id')} ({verified.get('origin')}) answers it from now on"
    if receipt.get("retired"):
        said += f"; retired {receipt['retired']} verified quer{'y' if receipt['retired'] == 1 else 'ies'}"
    print(said)
    return ExitCode.OK


def _export(args: argparse.Namespace) -> int:
    params = {"since": args.since.isoformat()} if args.since else {}
    body = _request(args, "GET", "/v1/feedback/export", params=params)
    rows = [row for row in body.get("data") or [] if isinstance(row, dict)]
    lines = [json.dumps({field: row.get(field) for field in TRAINING_FIELDS}, ensure_ascii=False) for row in rows]
    text = "".join(line + "\n" for line in lines)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    counts = body.get("counts") or {}
    since = f" since {args.since.isoformat()}" if args.since else ""
    where = f" to {args.out}" if args.out is not None else ""
    print(f"exported {len(rows)} rows{since}{where}: {counts.get('ratings', 0)} from ratings, "
          f"{counts.get('corrections', 0)} from corrections", file=sys.stderr)
    return ExitCode.OK
