"""Single flight: identical requests that arrive while the first is still being answered wait for its answer
instead of asking vLLM again (five identical concurrent misses made five upstream calls)."""

from __future__ import annotations

import asyncio

from gateway.answer import SqlAnswer


class FlightAbandoned(Exception):
    """The request leading a flight ended without an answer (client gone, shutdown, an upstream failure on its
    replica): the requests waiting on it answer themselves."""


class Flights:
    def __init__(self) -> None:
        self._landing: dict[str, asyncio.Future[SqlAnswer]] = {}
        self.waiting = 0  # requests waiting on another's flight right now

    async def wait(self, future: asyncio.Future[SqlAnswer]) -> SqlAnswer:
        """Another request's answer; shielded, so that this request going away does not cancel the flight."""
        self.waiting += 1
        try:
            return await asyncio.shield(future)
        finally:
            self.waiting -= 1

    def in_flight(self, key: str) -> asyncio.Future[SqlAnswer] | None:
        return self._landing.get(key)

    def lead(self, key: str) -> asyncio.Future[SqlAnswer]:
        future: asyncio.Future[SqlAnswer] = asyncio.get_running_loop().create_future()
        self._landing[key] = future
        return future

    def land(self, key: str, future: asyncio.Future[SqlAnswer], answer: SqlAnswer | None) -> None:
        """Hand the answer to everyone waiting, or (None) tell them the leader gave up; once per `lead`."""
        if self._landing.get(key) is future:
            del self._landing[key]
        if future.done():
            return
        if answer is not None:
            future.set_result(answer)
            return
        future.set_exception(FlightAbandoned())
        future.exception()  # mark it retrieved: with nobody waiting, asyncio would log it as never retrieved

    def __len__(self) -> int:
        return len(self._landing)
