"""Typed accessors for what the lifespan owns, so routes never reach for globals and tests build other apps."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.request_record import RequestRecord
from gateway.state import AppState


# `async def`: FastAPI runs a plain `def` dependency in a worker thread, two thread hand-offs per request.
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.sqlgate
    return state


async def get_record(request: Request) -> RequestRecord:
    record: RequestRecord = request.state.record
    return record


State = Annotated[AppState, Depends(get_state)]
Record = Annotated[RequestRecord, Depends(get_record)]
