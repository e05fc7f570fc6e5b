"""Typed accessors for what the lifespan owns, so routes never reach for globals and tests build other apps."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.errors import ModelAsleep
from gateway.request_record import RequestRecord
from gateway.state import AppState


# `async def`: FastAPI runs a plain `def` dependency in a worker thread, two thread hand-offs per request.
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.sqlgate
    return state


async def get_record(request: Request) -> RequestRecord:
    record: RequestRecord = request.state.record
    return record


async def require_awake(request: Request) -> None:
    """The generation routes' business-hours gate (gateway/sleep_gate.py): 503 `model_asleep` when asleep."""
    state: AppState = request.app.state.sqlgate
    try:
        state.gate.check()
    except ModelAsleep:
        state.metrics.rejected("asleep")
        raise


Awake = Depends(require_awake)
State = Annotated[AppState, Depends(get_state)]
Record = Annotated[RequestRecord, Depends(get_record)]
