"""Several vLLM replicas behind one upstream client: who gets the next attempt, and who is marked down.

The upstream client asks this set for a replica per attempt (`acquire`), so its one retry layer also fails over:
an attempt that could not reach a replica is retried on another one. A replica is marked down when reaching it
failed (connection refused, connection lost) or a readiness probe failed, and marked up again only by a probe
that generated a token (the probe-back loop in gateway/app.py). A busy replica (503, 429, a slow answer) is not
marked down: it is only skipped by the request that met it.

A leaf module: it knows URLs and counts, not HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit


def parse_upstream_urls(value: str) -> tuple[str, ...]:
    """The comma-separated SQLGATE_UPSTREAM_URL as a tuple of base URLs without a trailing slash."""
    urls = tuple(part.strip().rstrip("/") for part in value.split(","))
    if not urls or any(not url for url in urls):
        raise ValueError("SQLGATE_UPSTREAM_URL needs one or more comma-separated URLs, none of them empty")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("each SQLGATE_UPSTREAM_URL entry must be an http:// or https:// URL with a host")
    if len(set(urls)) != len(urls):
        raise ValueError("SQLGATE_UPSTREAM_URL lists the same URL twice")
    return urls


@dataclass(eq=False)  # identity: two replicas are never "the same" however their counts line up
class Replica:
    """One vLLM server. `name` is its position (`r0`, `r1`, ...): metric labels and /ready never show URLs."""

    name: str
    url: str
    in_flight: int = 0
    up: bool = True
    ready: bool | None = None  # the last probe's answer; None before the first probe
    attempts: int = 0
    failures: int = 0


@dataclass(frozen=True)
class ReplicaSnapshot:
    """A replica's state at one moment, for metrics and /ready."""

    name: str
    in_flight: int
    up: bool
    ready: bool | None
    attempts: int
    failures: int


class ReplicaLease:
    """One attempt's hold on a replica: counts it in flight until `release()` (safe to call twice)."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self.replica.in_flight -= 1

    def fail(self) -> None:
        """Reaching the replica failed: route around it until a probe generates again."""
        self.replica.failures += 1
        self.replica.up = False


class ReplicaSet:
    """The replicas of one upstream, in SQLGATE_UPSTREAM_URL order. Used from one event loop: no locks."""

    def __init__(self, urls: Sequence[str]) -> None:
        if not urls:
            raise ValueError("a replica set needs at least one URL")
        self.replicas = tuple(Replica(name=f"r{index}", url=url) for index, url in enumerate(urls))
        self._turn = 0

    @classmethod
    def from_setting(cls, value: str) -> ReplicaSet:
        return cls(parse_upstream_urls(value))

    def __len__(self) -> int:
        return len(self.replicas)

    def _candidates(self, tried: Sequence[Replica]) -> list[Replica]:
        untried = [replica for replica in self.replicas if replica not in tried]
        return [replica for replica in untried if replica.up]

    def has_fresh(self, tried: Sequence[Replica]) -> bool:
        """Whether a replica that is up and not yet tried by this request remains (a retry need not wait)."""
        return bool(self._candidates(tried))

    def acquire(self, tried: Sequence[Replica] = ()) -> ReplicaLease:
        """The replica for the next attempt: among those up and not yet tried, the one with fewest in flight.

        When none is left (all down, or all tried), every replica is a candidate again: a request is never
        refused here, so a single replica behaves exactly like a plain URL and a set that is all down still
        finds out, by trying, when one comes back. Ties rotate, so an idle set shares the work."""
        candidates = self._candidates(tried) or [replica for replica in self.replicas if replica.up] or list(
            self.replicas)
        start = self._turn % len(candidates)
        self._turn += 1
        rotated = candidates[start:] + candidates[:start]
        replica = min(rotated, key=lambda r: r.in_flight)
        replica.in_flight += 1
        replica.attempts += 1
        return ReplicaLease(replica)

    def record_probe(self, replica: Replica, ok: bool) -> None:
        """A readiness probe's answer: the only way a replica marked down comes back."""
        replica.ready = ok
        if not ok and replica.up:
            replica.failures += 1
        replica.up = ok

    def down(self) -> list[Replica]:
        return [replica for replica in self.replicas if not replica.up]

    def snapshot(self) -> list[ReplicaSnapshot]:
        return [ReplicaSnapshot(r.name, r.in_flight, r.up, r.ready, r.attempts, r.failures)
                for r in self.replicas]
