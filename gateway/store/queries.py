"""The store's statements and row mapping, shared by SQLite and PostgreSQL: each function runs inside one
transaction (`Tx`), given by the engine's module. Placeholders are written `?`; the PostgreSQL transaction rewrites
them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

from gateway.store.migrations import MIGRATION_TABLE, MIGRATIONS, Migration
from gateway.store.records import (
    AnswerRow,
    FeedbackChange,
    FeedbackOutcome,
    StoreError,
    VerifiedPair,
    utc_now,
)


class Tx(Protocol):
    """One open transaction."""

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Execute; the rows it returns (none for a write)."""
        ...

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute a write; the rows it changed."""
        ...


def schema_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# ---- migrations -------------------------------------------------------------------------------------------------

def current_version(tx: Tx) -> int:
    tx.run(MIGRATION_TABLE)
    rows = tx.run("SELECT max(version) FROM sqlgate_migrations")
    return int(rows[0][0] or 0) if rows else 0


def pending_migrations(version: int) -> list[Migration]:
    known = MIGRATIONS[-1].version
    if version > known:
        raise StoreError(f"the database's schema is at version {version}, newer than this gateway knows ({known}): "
                         "run a gateway at least as new as the one that migrated it")
    return [migration for migration in MIGRATIONS if migration.version > version]


def apply_migration(tx: Tx, migration: Migration) -> None:
    for statement in migration.statements:
        tx.run(statement)
    tx.run("INSERT INTO sqlgate_migrations (version, name, applied_at) VALUES (?, ?, ?)",
           (migration.version, migration.name, utc_now()))


# ---- answers ----------------------------------------------------------------------------------------------------

def _keep_schema(tx: Tx, text: str, now: str) -> str:
    key = schema_id(text)
    tx.run("INSERT INTO schemas (id, text, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
           (key, text, now))
    return key


def insert_answers(tx: Tx, rows: Sequence[AnswerRow]) -> None:
    for row in rows:
        key = _keep_schema(tx, row.schema, row.created_at)
        tx.run("INSERT INTO answers (id, created_at, key_name, question, schema_id, fingerprint, dialect, query, "
               "source_query, source, verified_id, trace_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (id) DO NOTHING",
               (row.id, row.created_at, row.key_name, row.question, key, row.fingerprint, row.dialect, row.query,
                row.source_query, row.source, row.verified_id, row.trace_id))


def get_answer(tx: Tx, answer_id: str) -> AnswerRow | None:
    rows = tx.run("SELECT a.id, a.created_at, a.key_name, a.question, s.text, a.fingerprint, a.dialect, a.query, "
                  "a.source_query, a.source, a.verified_id, a.trace_id FROM answers a "
                  "JOIN schemas s ON s.id = a.schema_id WHERE a.id = ?", (answer_id,))
    return AnswerRow(*rows[0]) if rows else None


def prune_answers(tx: Tx, before: str) -> int:
    """Answers older than `before` that nobody rated (rated ones stay: feedback and pairs point at them)."""
    removed = tx.count("DELETE FROM answers WHERE created_at < ? AND NOT EXISTS "
                       "(SELECT 1 FROM feedback f WHERE f.answer_id = answers.id) AND NOT EXISTS "
                       "(SELECT 1 FROM verified v WHERE v.answer_id = answers.id)", (before,))
    tx.run("DELETE FROM schemas WHERE NOT EXISTS (SELECT 1 FROM answers a WHERE a.schema_id = schemas.id) "
           "AND NOT EXISTS (SELECT 1 FROM verified v WHERE v.schema_id = schemas.id)")
    return removed


# ---- feedback and verified pairs --------------------------------------------------------------------------------

def apply_feedback(tx: Tx, change: FeedbackChange) -> FeedbackOutcome:
    row = change.feedback
    tx.run("INSERT INTO feedback (id, answer_id, created_at, key_name, rating, corrected_sql, comment) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)",
           (row.id, row.answer_id, row.created_at, row.key_name, row.rating, row.corrected_sql, row.comment))
    retired = 0
    if change.retire_from_answer is not None:
        retired += tx.count("UPDATE verified SET retired_at = ?, retired_by = ? WHERE answer_id = ? "
                            "AND retired_at IS NULL", (row.created_at, row.key_name, change.retire_from_answer))
    if change.retire_pair is not None:
        retired += tx.count("UPDATE verified SET retired_at = ?, retired_by = ? WHERE id = ? AND retired_at IS NULL",
                            (row.created_at, row.key_name, change.retire_pair))
    if change.add is not None:
        add_pair(tx, change.add)
    return FeedbackOutcome(retired=retired, added=change.add)


def live_pair_from_answer(tx: Tx, answer_id: str) -> bool:
    return bool(tx.run("SELECT 1 FROM verified WHERE answer_id = ? AND retired_at IS NULL", (answer_id,)))


def add_pair(tx: Tx, pair: VerifiedPair) -> None:
    """Keep a verified pair (a rating's, a correction's, or one seeded from known-good answers)."""
    key = _keep_schema(tx, pair.schema, pair.verified_at)
    tx.run("INSERT INTO verified (id, fingerprint, question_key, question, schema_id, source_query, origin, "
           "answer_id, feedback_id, verified_by, verified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
           (pair.id, pair.fingerprint, pair.question_key, pair.question, key, pair.source_query, pair.origin,
            pair.answer_id, pair.feedback_id, pair.verified_by, pair.verified_at))


_PAIR_COLUMNS = ("v.id, v.fingerprint, v.question_key, v.question, s.text, v.source_query, v.origin, v.answer_id, "
                 "v.feedback_id, v.verified_by, v.verified_at, v.retired_at")


def live_pairs(tx: Tx, fingerprint: str, question_key: str, limit: int) -> list[VerifiedPair]:
    """The live pairs for one schema and question shape, newest first."""
    rows = tx.run(f"SELECT {_PAIR_COLUMNS} FROM verified v JOIN schemas s ON s.id = v.schema_id "
                  "WHERE v.fingerprint = ? AND v.question_key = ? AND v.retired_at IS NULL "
                  "ORDER BY v.verified_at DESC, v.id LIMIT ?", (fingerprint, question_key, limit))
    return [VerifiedPair(*row) for row in rows]


def exported_pairs(tx: Tx, since: str | None) -> list[VerifiedPair]:
    """Live pairs (ratings and corrections) verified at or after `since`, oldest first."""
    rows = tx.run(f"SELECT {_PAIR_COLUMNS} FROM verified v JOIN schemas s ON s.id = v.schema_id "
                  "WHERE v.retired_at IS NULL AND v.verified_at >= ? ORDER BY v.verified_at, v.id", (since or "",))
    return [VerifiedPair(*row) for row in rows]


def feedback_ids(tx: Tx, answer_id: str) -> list[str]:
    return [str(row[0]) for row in tx.run("SELECT id FROM feedback WHERE answer_id = ? ORDER BY created_at, id",
                                          (answer_id,))]
