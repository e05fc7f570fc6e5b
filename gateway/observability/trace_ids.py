"""The Langfuse trace id of an answer, derived from the answer's id (the response `id`): feedback that names the
answer finds its trace without looking anything up. The same digest as `Langfuse.create_trace_id(seed=answer_id)`
(32 lower-case hex characters), computed here so that nothing imports Langfuse when tracing is off."""

from __future__ import annotations

import hashlib


def trace_id_for(answer_id: str) -> str:
    return hashlib.sha256(answer_id.encode("utf-8")).digest()[:16].hex()
