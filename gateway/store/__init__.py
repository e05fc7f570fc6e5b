"""The durable store for what the team must not lose: feedback, verified pairs and the answers they name. Embedded
SQLite by default (a file in the run folder), PostgreSQL when SQLGATE_DATABASE_URL names one (several replicas)."""

from __future__ import annotations

from gateway.store.base import Store
from gateway.store.records import StoreError


def open_store(url: str) -> Store:
    """The store a URL names: `sqlite:///PATH` (`sqlite:///:memory:` for tests) or `postgresql://...`."""
    if url.startswith("sqlite:///"):
        from gateway.store.sqlite import SqliteStore

        return SqliteStore(url[len("sqlite:///"):])
    if url.startswith(("postgresql://", "postgres://")):
        from gateway.store.postgres import PostgresStore

        return PostgresStore(url)
    raise StoreError("SQLGATE_DATABASE_URL must start with sqlite:/// or postgresql://")


__all__ = ["Store", "StoreError", "open_store"]
