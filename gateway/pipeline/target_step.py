"""The last step of the whole check for a valid answer: the configured check database's word (PostgreSQL or MySQL
reached over the network; DuckDB runs in the synchronous chain). Asked in a worker thread under a deadline, so a
slow or unreachable database leaves the answer at `target_verified: "translation"` (with the reason), never holds
the request past the deadline nor blocks the event loop. Every path that serves an answer (the model's, the
cache's, a verified query, an analyst's correction) ends here."""

from __future__ import annotations

import asyncio

from gateway.pipeline.verdict import CheckOptions, Verdict, in_target_engine, with_target
from gateway.sql_check.target import TargetCheck


async def in_target(verdict: Verdict, *, schema: str, dialect: str, options: CheckOptions) -> Verdict:
    engines = options.engines
    if engines is None or verdict.error_code is not None or not engines.remote(dialect):
        return verdict
    call = asyncio.to_thread(in_target_engine, verdict, schema=schema, dialect=dialect, engines=engines)
    try:
        return await asyncio.wait_for(call, timeout=engines.timeout_s)
    except TimeoutError:
        return with_target(verdict, TargetCheck.translation(
            f"the check database did not answer within {engines.timeout_s} s"), dialect)
