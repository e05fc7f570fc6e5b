"""The generation routes' business-hours gate: outside the hours, with vLLM stopped on schedule, answer 503
`model_asleep` saying when the model opens next (and, if configured, ask the scheduler to wake it)."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from pathlib import Path

from gateway.errors import ModelAsleep
from gateway.schedule import BusinessHours, describe_opening

logger = logging.getLogger("sqlgate.schedule")

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SleepGate:
    """Decides per request whether the model is asleep; `hours` None means always open."""

    def __init__(self, hours: BusinessHours | None, *, clock: Clock, upstream_ready: Callable[[], bool],
                 wake_file: Path | None, cold_start_s: int) -> None:
        self._hours = hours
        self._clock = clock
        self._upstream_ready = upstream_ready
        self._wake_file = wake_file
        self._cold_start_s = cold_start_s

    def in_hours(self) -> bool:
        return self._hours is None or self._hours.is_open(self._clock())

    def asleep(self) -> bool:
        """Outside the hours and vLLM not generating. A model someone woke (or left running) is served."""
        return not self.in_hours() and not self._upstream_ready()

    def check(self) -> None:
        """Raise ModelAsleep when asleep; with wake-on-request, ask the scheduler to start vLLM first."""
        if self.in_hours():
            return
        now = self._clock()
        if self._wake_file is not None:
            # Every request outside the hours renews the wake, so a woken model stays up while it is used.
            self._request_wake(now)
        if self._upstream_ready():
            return
        if self._wake_file is None:
            raise self.asleep_error()
        assert self._hours is not None
        raise ModelAsleep(
            "The model is asleep outside business hours and is being woken up for this request; retry in about "
            f"{self._cold_start_s} s. Business hours open next on {describe_opening(self._hours.next_open(now))}.",
            retry_after_s=min(self._cold_start_s, self._hours.seconds_until_open(now)),
        )

    def asleep_error(self) -> ModelAsleep:
        """The 503 that says when the hours open next, Retry-After the seconds until then."""
        assert self._hours is not None
        now = self._clock()
        return ModelAsleep(
            f"The model is asleep outside business hours. Business hours open next on "
            f"{describe_opening(self._hours.next_open(now))}.",
            retry_after_s=self._hours.seconds_until_open(now),
        )

    def _request_wake(self, now: dt.datetime) -> None:
        """Touch the wake file; the scheduler starts vLLM when it is newer than its idle window."""
        assert self._wake_file is not None
        try:
            self._wake_file.parent.mkdir(parents=True, exist_ok=True)
            self._wake_file.write_text(now.isoformat() + "\n")
            stamp = now.timestamp()
            os.utime(self._wake_file, (stamp, stamp))
        except OSError as error:  # the answer is 503 either way; the operator learns why no wake happened
            logger.warning("cannot write the wake file %s: %s", self._wake_file, error.strerror)
