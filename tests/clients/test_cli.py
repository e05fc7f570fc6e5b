"""The `sqlgate` command line: help, usage errors, and exit codes + one-line messages from real gateway errors
(auth, rate limit, caps, upstream down) and from no gateway at all. Runs without a model."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from clients.cli import main
from clients.failures import ExitCode
from tests.clients.conftest import GatewayFactory

SINGER = "CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text)"


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "schema.sql"
    path.write_text(SINGER + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["ask", "eval", "bench", "Exit codes"]),
        (["ask"], ["--schema", "--json", "--dialect", "--route", "-v", "Exit codes"]),
        (["eval"], ["--split", "heldout", "--limit", "--concurrency", "--out", "--route"]),
        (["bench"], ["--requests", "--duration", "--concurrency", "--rate", "--processes", "--stream", "--target",
                     "--compare", "--prompts", "--max-tokens", "--ignore-eos", "--out"]),
    ],
)
def test_help_everywhere(argv: list[str], expected: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in expected:
        assert word in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "--schema", "{schema}"], "no question"),
        (["ask", "How many?", "-q", "How many?", "--schema", "{schema}"], "not both"),
        (["ask", "How many?", "--schema", "{missing}"], "does not exist"),
        (["ask", "How many?", "--schema", "{empty}"], "schema is empty"),
        (["eval", "{missing}"], "does not exist"),
        (["eval", "{bad_rows}", "--out", "{out}"], "missing or non-string field(s): answer"),
        (["bench", "--concurrency", "1", "--processes", "2"], "at least one concurrent request per process"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], message: str, schema_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty.sql").write_text("  \n")
    (tmp_path / "bad.jsonl").write_text('{"question": "q", "context": "c"}\n')
    paths = {"schema": schema_file, "missing": tmp_path / "nope.sql", "empty": tmp_path / "empty.sql",
             "bad_rows": tmp_path / "bad.jsonl", "out": tmp_path / "out"}
    code = main([part.format(**paths) for part in argv])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert err.startswith("sqlgate: error: ") and message in err
    assert err.count("\n") == 1


def test_argparse_refuses_bad_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--requests", "0"])
    assert exit_info.value.code == ExitCode.USAGE
    assert "at least 1" in capsys.readouterr().err


def test_no_gateway_listening_exits_6(closed_port_url: str, schema_file: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ask", "How many singers do we have?", "--schema", str(schema_file), "--base-url",
                 closed_port_url, "--api-key", "sk-whatever-key-123", "--max-retries", "0"])
    err = capsys.readouterr().err
    assert code == ExitCode.UPSTREAM
    assert f"cannot reach the gateway at {closed_port_url}" in err


def test_wrong_key_exits_4(serve_gateway: GatewayFactory, closed_port_url: str, schema_file: Path,
                           capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_gateway(upstream_url=closed_port_url) as url:
        # The key comes from OPENAI_API_KEY and the URL from OPENAI_BASE_URL (with /v1), as for the SDK.
        monkeypatch.setenv("OPENAI_BASE_URL", f"{url}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-not-a-key-of-this-gateway")
        code = main(["ask", "How many singers do we have?", "--schema", str(schema_file)])
    err = capsys.readouterr().err
    assert code == ExitCode.AUTH
    assert "(HTTP 401, authentication_error, invalid_api_key)" in err


def test_upstream_down_exits_6_and_rate_limit_exits_5(
    serve_gateway: GatewayFactory, closed_port_url: str, schema_file: Path, api_key: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = ["ask", "How many singers do we have?", "--schema", str(schema_file), "--max-retries", "0"]
    with serve_gateway(upstream_url=closed_port_url, upstream_retry_attempts=1, rate_limit_per_minute=1) as url:
        monkeypatch.setenv("SQLGATE_URL", url)
        monkeypatch.setenv("SQLGATE_API_KEY", api_key)
        first = main(argv)
        first_err = capsys.readouterr().err
        second = main([*argv, "--json"])
        second_out, second_err = capsys.readouterr()
    assert first == ExitCode.UPSTREAM
    assert "(HTTP 503, upstream_error, upstream_unavailable)" in first_err
    assert second == ExitCode.RATE_LIMITED
    assert "retry after" in second_err and "(HTTP 429, rate_limit_error, rate_limit_exceeded)" in second_err
    assert json.loads(second_out)["error"]["code"] == "rate_limit_exceeded"


def test_question_over_the_cap_exits_2(serve_gateway: GatewayFactory, closed_port_url: str, schema_file: Path,
                                       api_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    with serve_gateway(upstream_url=closed_port_url, max_question_chars=20) as url:
        code = main(["ask", "-q", "How many singers do we have in the whole database?", "--schema",
                     str(schema_file), "--base-url", url, "--api-key", api_key])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert "question_too_long" in err and "HTTP 422" in err


def test_schema_text_and_stdin_are_accepted(serve_gateway: GatewayFactory, closed_port_url: str, api_key: str,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # The upstream is down, so a 503 proves the question and schema passed the CLI and the gateway's caps.
    with serve_gateway(upstream_url=closed_port_url, upstream_retry_attempts=1) as url:
        common = ["--base-url", url, "--api-key", api_key, "--max-retries", "0"]
        assert main(["ask", "How many singers?", "--schema", SINGER, *common]) == ExitCode.UPSTREAM
        monkeypatch.setattr("sys.stdin", io.StringIO(SINGER))
        assert main(["ask", "How many singers?", "--schema", "-", *common]) == ExitCode.UPSTREAM
    assert capsys.readouterr().err.count("upstream_unavailable") == 2



def test_schema_from_a_pipe_like_process_substitution_is_read(serve_gateway: GatewayFactory, closed_port_url: str,
                                                              api_key: str, capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    # `--schema <(cat schema.sql)` hands the CLI a /dev/fd path that is a pipe, not a regular file.
    read_end, write_end = os.pipe()
    os.write(write_end, SINGER.encode())
    os.close(write_end)
    try:
        with serve_gateway(upstream_url=closed_port_url, upstream_retry_attempts=1) as url:
            assert main(["ask", "How many singers?", "--schema", f"/dev/fd/{read_end}", "--base-url", url,
                         "--api-key", api_key, "--max-retries", "0"]) == ExitCode.UPSTREAM
    finally:
        os.close(read_end)
    assert "upstream_unavailable" in capsys.readouterr().err


def _sqlite_database(path: Path) -> None:
    import sqlite3

    connection = sqlite3.connect(path)
    connection.executescript("""
        CREATE TABLE "singer" ("Singer_ID" int PRIMARY KEY, "Name" text, "Country" text);  -- as .schema keeps it
        CREATE TABLE concert (concert_ID int, singer_id int REFERENCES singer("Singer_ID"), year int);
        CREATE INDEX by_year ON concert(year);
        CREATE VIEW french AS SELECT "Name" FROM singer WHERE "Country" = 'France';
    """)
    connection.close()


def _duckdb_database(path: Path) -> None:
    import duckdb

    connection = duckdb.connect(str(path))
    connection.execute("CREATE TABLE singer (Singer_ID INTEGER PRIMARY KEY, Name VARCHAR, Country VARCHAR)")
    connection.execute("CREATE TABLE concert (concert_ID INTEGER, singer_id INTEGER REFERENCES singer(Singer_ID))")
    connection.close()


@pytest.mark.parametrize("kind", ["sqlite", "duckdb"])
def test_schema_from_a_live_database_sends_its_catalog_read_only(
        kind: str, tmp_path: Path, serve_gateway: GatewayFactory, api_key: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    from tests import faults
    from tests.servers import fake_upstream

    path = tmp_path / f"music.{'db' if kind == 'sqlite' else 'duckdb'}"
    (_sqlite_database if kind == "sqlite" else _duckdb_database)(path)
    before = path.read_bytes()
    with fake_upstream(faults.ok("SELECT count(*) FROM singer")) as upstream, \
            serve_gateway(upstream_url=upstream.base_url, sql_candidates=0) as url:
        code = main(["ask", "How many singers?", "--schema-from", f"{kind}://{path}", "--tables", "concert",
                     "--route", "sql", "--base-url", url, "--api-key", api_key, "--json"])
        out, err = capsys.readouterr()
        assert code == ExitCode.OK, err
        sent = json.loads(upstream.requests[0])["prompt"]
    assert "CREATE TABLE" in sent and "concert" in sent and "singer" in sent
    if kind == "sqlite":
        assert '"Singer_ID" int PRIMARY KEY' in sent  # the DDL as the database keeps it
    assert set(json.loads(out)["check"]["schema_scope"]["tables_sent"]) == {"singer", "concert"}
    assert path.read_bytes() == before  # read-only: the file is untouched


@pytest.mark.parametrize(("source", "message"), [
    ("mysql://localhost/db", "--schema-from takes postgresql://"),
    ("sqlite:///no/such/file.db", "no sqlite database file"),
    ("postgresql://127.0.0.1:9/none", "cannot read the PostgreSQL catalog"),
])
def test_schema_from_a_source_it_cannot_read_is_a_usage_error(source: str, message: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "How many?", "--schema-from", source, "--base-url", "http://127.0.0.1:9"]) == ExitCode.USAGE
    assert message in capsys.readouterr().err
