"""An answer on its way: ready (memory, cache), joined (another identical request's flight), or led by this
request. When a flight's leader ends without an answer, the requests waiting on it elect one new leader among
themselves (the first to wake leads, the others wait on it), so six identical requests whose leader failed make
one more upstream call, not five."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Protocol

from gateway.answer import Generation, SqlAnswer, SqlRequest
from gateway.pipeline.candidates import Draw
from gateway.pipeline.flights import FlightAbandoned, Flights
from gateway.request_record import RequestRecord
from gateway.upstream import UpstreamStream


class Steps(Protocol):
    """The answer pipeline's steps a pending answer runs (gateway/pipeline/pipeline.py)."""

    @property
    def flights(self) -> Flights: ...

    def start_draw(self, request: SqlRequest) -> asyncio.Task[Draw] | None: ...

    async def generate(self, request: SqlRequest, record: RequestRecord) -> Generation: ...

    async def collect(self, upstream: UpstreamStream, started: float, record: RequestRecord) -> Generation: ...

    async def finish(self, request: SqlRequest, generation: Generation, record: RequestRecord,
                     drawing: asyncio.Task[Draw] | None = None) -> SqlAnswer: ...

    async def remember(self, key: str, answer: SqlAnswer) -> None: ...

    def account(self, answer: SqlAnswer, record: RequestRecord, request: SqlRequest) -> None: ...


class PendingAnswer:
    def __init__(self, steps: Steps, request: SqlRequest, record: RequestRecord, key: str, *,
                 ready: SqlAnswer | None = None, joined: asyncio.Future[SqlAnswer] | None = None,
                 landing: asyncio.Future[SqlAnswer] | None = None, upstream: UpstreamStream | None = None,
                 started: float = 0.0) -> None:
        self._steps = steps
        self._request = request
        self._record = record
        self._key = key
        self._ready = ready
        self._joined = joined
        self._landing = landing
        self._upstream = upstream
        self._started = started

    async def result(self) -> SqlAnswer:
        answer = await self._obtain()
        self._steps.account(answer, self._record, self._request)
        return answer

    async def _obtain(self) -> SqlAnswer:
        if self._ready is not None:
            return self._ready
        flights = self._steps.flights
        while self._joined is not None:
            try:
                shared = await flights.wait(self._joined)
            except FlightAbandoned:
                # The leader went away without an answer. The first waiting request to get here leads the next
                # flight (nothing awaits between the check and `lead`); the others find it and wait on it.
                self._joined = flights.in_flight(self._key)
                continue
            self._record.cache = "joined"
            return replace(shared, cached=True, source="cache", check={**shared.check, "source": "cache"})
        if self._landing is None:
            self._landing = flights.lead(self._key)
        return await self._lead()

    async def _lead(self) -> SqlAnswer:
        steps, landing = self._steps, self._landing
        assert landing is not None
        drawing = steps.start_draw(self._request)
        try:
            if self._upstream is not None:
                generation = await steps.collect(self._upstream, self._started, self._record)
            else:
                generation = await steps.generate(self._request, self._record)
            answer = await steps.finish(self._request, generation, self._record, drawing)
            await steps.remember(self._key, answer)
        except BaseException:
            if drawing is not None:
                drawing.cancel()
            # Whatever stopped this request (an upstream failure on its replica, its client leaving) need not
            # stop the ones waiting on it: they elect a new leader.
            steps.flights.land(self._key, landing, None)
            raise
        steps.flights.land(self._key, landing, answer)
        return answer

    async def aclose(self) -> None:
        """Release the upstream stream; a flight this request led and never finished is handed back, so the
        requests waiting on it go on instead of waiting forever. Idempotent."""
        if self._landing is not None and not self._landing.done():
            self._steps.flights.land(self._key, self._landing, None)
        if self._upstream is not None:
            await self._upstream.aclose()
