"""What a target engine said about a transpiled query. A leaf: imports nothing of the gateway's.

`level`: "engine" when a real engine of the target dialect compiled the query against the schema translated to
it; "translation" when none could (none runs here for the dialect, none is configured, or it did not answer in
time: `note` says which); None for SQLite (nothing was translated). `refused` holds the engine's message when it
refused the query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TargetLevel = Literal["engine", "translation"]


@dataclass(frozen=True)
class TargetCheck:
    level: TargetLevel | None
    engine: str | None = None
    refused: str | None = None
    note: str | None = None

    @staticmethod
    def translation(note: str, engine: str | None = None) -> TargetCheck:
        return TargetCheck(level="translation", engine=engine, note=note)

    @property
    def decisive(self) -> bool:
        """The engine answered (compiled or refused): worth remembering; an engine that did not answer is not."""
        return self.level == "engine" or self.refused is not None

    def as_fields(self) -> dict[str, object]:
        """The check object's fields: `target_verified`, `target_engine`, `target_message`."""
        return {"target_verified": self.level, "target_engine": self.engine,
                "target_message": self.refused or self.note}
