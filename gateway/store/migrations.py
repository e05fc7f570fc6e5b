"""The store's schema, versioned: ordered migrations applied at start-up, each in its own transaction together with
its row in `sqlgate_migrations`. A migration is never edited once released: a change is a new, higher version.

The statements are plain SQL that SQLite and PostgreSQL both take (TEXT times in ISO 8601 UTC, partial indexes)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATION_TABLE = """
CREATE TABLE IF NOT EXISTS sqlgate_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "answers, feedback and verified pairs", (
        # A schema text is often long and asked about again and again: each distinct text is kept once.
        """CREATE TABLE schemas (
            id TEXT PRIMARY KEY,
            text TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE answers (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            key_name TEXT,
            question TEXT NOT NULL,
            schema_id TEXT NOT NULL REFERENCES schemas (id),
            fingerprint TEXT NOT NULL,
            dialect TEXT NOT NULL,
            query TEXT NOT NULL,
            source_query TEXT NOT NULL,
            source TEXT NOT NULL,
            verified_id TEXT,
            trace_id TEXT
        )""",
        "CREATE INDEX answers_created ON answers (created_at)",
        """CREATE TABLE feedback (
            id TEXT PRIMARY KEY,
            answer_id TEXT NOT NULL REFERENCES answers (id),
            created_at TEXT NOT NULL,
            key_name TEXT,
            rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
            corrected_sql TEXT,
            comment TEXT
        )""",
        "CREATE INDEX feedback_answer ON feedback (answer_id)",
        """CREATE TABLE verified (
            id TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            question_key TEXT NOT NULL,
            question TEXT NOT NULL,
            schema_id TEXT NOT NULL REFERENCES schemas (id),
            source_query TEXT NOT NULL,
            origin TEXT NOT NULL CHECK (origin IN ('rating', 'correction')),
            answer_id TEXT REFERENCES answers (id),
            feedback_id TEXT REFERENCES feedback (id),
            verified_by TEXT,
            verified_at TEXT NOT NULL,
            retired_at TEXT,
            retired_by TEXT
        )""",
        "CREATE INDEX verified_live ON verified (fingerprint, question_key) WHERE retired_at IS NULL",
        "CREATE INDEX verified_answer ON verified (answer_id)",
        "CREATE INDEX verified_at ON verified (verified_at)",
    )),
)

LATEST_VERSION = MIGRATIONS[-1].version
