"""The durable store on both engines, for real: a SQLite file and a PostgreSQL server. Migrations are versioned and
applied once; one rating's changes land in one transaction; verified pairs are found by schema fingerprint and
question shape, retired ones never; a database from a newer gateway is refused, not silently used."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from gateway.store import Store, StoreError, open_store
from gateway.store.migrations import LATEST_VERSION, MIGRATIONS
from gateway.store.records import AnswerRow, FeedbackChange, FeedbackRow, VerifiedPair

SCHEMA = "CREATE TABLE singer (Singer_ID int, Name text, Country text)"
Opener = Callable[[], str]


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Store]:
    store = open_store(url)
    await store.start()
    try:
        yield store
    finally:
        await store.aclose()


def answer(answer_id: str = "sql-1", created_at: str = "2025-12-03T10:00:00.000000Z", **changes: str) -> AnswerRow:
    values = {"id": answer_id, "created_at": created_at, "key_name": "alice", "question": "How many singers?",
              "schema": SCHEMA, "fingerprint": "fp1", "dialect": "sqlite", "query": "SELECT count(*) FROM singer",
              "source_query": "SELECT count(*) FROM singer", "source": "generated", "verified_id": None,
              "trace_id": "ab" * 16}
    values.update(changes)
    return AnswerRow(**values)  # type: ignore[arg-type]


def pair(pair_id: str, *, answer_id: str | None = "sql-1", at: str = "2025-12-03T10:01:00.000000Z",
         question_key: str = "qk", source_query: str = "SELECT count(*) FROM singer") -> VerifiedPair:
    return VerifiedPair(id=pair_id, fingerprint="fp1", question_key=question_key, question="How many singers?",
                        schema=SCHEMA, source_query=source_query, origin="rating", answer_id=answer_id,
                        feedback_id=None, verified_by="alice", verified_at=at)


def rating(feedback_id: str, rating_: str, answer_id: str = "sql-1", at: str = "2025-12-03T10:01:00.000000Z"
           ) -> FeedbackRow:
    return FeedbackRow(id=feedback_id, answer_id=answer_id, created_at=at, key_name="bob", rating=rating_,  # type: ignore[arg-type]
                       corrected_sql=None, comment=None)


async def test_migrations_are_applied_once_and_recorded(store_url: str) -> None:
    async with opened(store_url) as store:
        assert await store.schema_version() == LATEST_VERSION == MIGRATIONS[-1].version
        await store.record_answers([answer()])
    async with opened(store_url) as again:  # a restart: nothing to apply, nothing lost
        assert await again.schema_version() == LATEST_VERSION
        assert await again.answer("sql-1") == answer()


async def test_a_rating_and_its_pair_are_one_transaction_and_a_thumbs_down_retires(store_url: str) -> None:
    async with opened(store_url) as store:
        await store.record_answers([answer(), answer("sql-2", question="How many singers are there?")])
        up = FeedbackChange(rating("fb-1", "up"), add=pair("vp-1"), retire_from_answer=None, retire_pair=None)
        outcome = await store.apply_feedback(up)
        assert outcome.added == pair("vp-1") and outcome.retired == 0
        assert [p.id for p in await store.live_pairs("fp1", "qk")] == ["vp-1"]
        assert await store.live_pairs("fp2", "qk") == [] and await store.live_pairs("fp1", "other") == []
        assert await store.has_live_pair_from("sql-1")

        # A pair for an answer id that does not exist breaks the foreign key: nothing of the change is kept.
        broken = FeedbackChange(rating("fb-2", "up", answer_id="sql-404"), add=pair("vp-2", answer_id="sql-404"),
                                retire_from_answer=None, retire_pair=None)
        with pytest.raises(StoreError):
            await store.apply_feedback(broken)
        assert await store.feedback_ids("sql-404") == []
        assert [p.id for p in await store.live_pairs("fp1", "qk")] == ["vp-1"]

        down = FeedbackChange(rating("fb-3", "down", answer_id="sql-2", at="2025-12-04T09:00:00.000000Z"),
                              add=None, retire_from_answer="sql-2", retire_pair="vp-1")
        assert (await store.apply_feedback(down)).retired == 1
        assert await store.live_pairs("fp1", "qk") == []
        assert not await store.has_live_pair_from("sql-1")
        assert await store.feedback_ids("sql-1") == ["fb-1"] and await store.feedback_ids("sql-2") == ["fb-3"]


async def test_live_pairs_come_newest_first_and_export_filters_by_date(store_url: str) -> None:
    async with opened(store_url) as store:
        await store.record_answers([answer()])
        await store.add_pair(pair("vp-old", at="2025-11-01T08:00:00.000000Z", source_query="SELECT 1"))
        await store.add_pair(pair("vp-new", at="2025-12-05T08:00:00.000000Z", answer_id=None))
        assert [p.id for p in await store.live_pairs("fp1", "qk")] == ["vp-new", "vp-old"]
        assert [p.id for p in await store.exported_pairs(None)] == ["vp-old", "vp-new"]
        assert [p.id for p in await store.exported_pairs("2025-12-01")] == ["vp-new"]
        assert (await store.exported_pairs(None))[0].schema == SCHEMA


async def test_old_unrated_answers_are_pruned_and_rated_ones_kept(store_url: str) -> None:
    async with opened(store_url) as store:
        await store.record_answers([answer("sql-old", created_at="2025-01-01T00:00:00.000000Z"),
                                    answer("sql-rated", created_at="2025-01-01T00:00:00.000000Z"),
                                    answer("sql-new", created_at="2025-12-01T00:00:00.000000Z")])
        await store.apply_feedback(FeedbackChange(rating("fb-1", "down", answer_id="sql-rated"), add=None,
                                                  retire_from_answer=None, retire_pair=None))
        assert await store.prune_answers("2025-06-01") == 1
        assert await store.answer("sql-old") is None
        assert await store.answer("sql-rated") is not None and await store.answer("sql-new") is not None


async def test_a_database_migrated_by_a_newer_gateway_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    async with opened(f"sqlite:///{path}"):
        pass
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO sqlgate_migrations (version, name, applied_at) VALUES (?, 'future', 'x')",
                           (LATEST_VERSION + 1,))
    store = open_store(f"sqlite:///{path}")
    with pytest.raises(StoreError, match="newer than this gateway knows"):
        await store.start()
    await store.aclose()


def test_the_sqlite_file_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "wal.db"

    async def start_and_stop() -> None:
        async with opened(f"sqlite:///{path}"):
            pass

    asyncio.run(start_and_stop())
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # WAL is a property of the file


async def test_a_url_of_another_kind_is_refused() -> None:
    with pytest.raises(StoreError, match="sqlite:/// or postgresql://"):
        open_store("mysql://root@localhost/sqlgate")


async def test_an_unreachable_postgresql_is_a_store_error_without_the_password(tmp_path: Path) -> None:
    store = open_store(f"postgresql://sqlgate:hunter2-secret@/sqlgate?host={tmp_path}")
    with pytest.raises(StoreError) as refused:
        await store.start()
    assert "hunter2-secret" not in str(refused.value)
    await store.aclose()


def test_settings_refuse_a_database_of_another_kind_and_default_to_the_run_folder(tmp_path: Path) -> None:
    from tests.conftest import make_settings

    with pytest.raises(ValueError, match="SQLGATE_DATABASE_URL must be"):
        make_settings(database_url="mysql://root@localhost/sqlgate")
    settings = make_settings(database_url=None, run_dir=tmp_path / "run")
    assert settings.database() == f"sqlite:///{tmp_path / 'run' / 'sqlgate.db'}"


async def test_a_store_that_cannot_be_opened_stops_start_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from gateway.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(database_url=f"postgresql://sqlgate:s3cret-pw@/sqlgate?host={tmp_path}"))
    with pytest.raises(StoreError):
        async with app.router.lifespan_context(app):
            pass
    assert "the store (SQLGATE_DATABASE_URL) failed" in caplog.text and "s3cret-pw" not in caplog.text
