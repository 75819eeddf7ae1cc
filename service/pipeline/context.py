"""The state of one request, in one typed object: made by the surface when the request starts,
handed down to the pipeline and the Hub client, read by the log line and the metrics when it ends.
No layer below the surfaces reaches for it: each is given it."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field, replace

from service.catalog.tasks import Task
from service.hub.deadline import Deadline
from service.hub.messages import UpstreamUsage
from service.keys.admission import Ticket
from service.keys.keyring import OPEN_ACCESS, ClientKey
from service.store.contract import UsageEntry
from service.usage.labels import model_label
from service.usage.ledger import ERROR_PREFIX


@dataclass
class CacheTally:
    """How a request's upstream calls were answered; shared by its fan-out and fallback calls."""

    hits: int = 0
    misses: int = 0
    # Whether a call waited on an identical call another request made: that request's outcome,
    # which it reports to the target's breaker itself.
    waited: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    @property
    def outcome(self) -> str:
        """X-Cache: HIT when every upstream call was answered from the cache, else MISS."""
        return "HIT" if self.hits and not self.misses else "MISS"


@dataclass(frozen=True)
class CacheDirectives:
    """What the caller's `Cache-Control` asks: `no-cache` skips the lookup, `no-store` the keeping."""

    lookup: bool = True
    keep: bool = True

    @classmethod
    def from_header(cls, value: str | None) -> CacheDirectives:
        names = {part.split("=", 1)[0].strip().lower() for part in (value or "").split(",")}
        return cls(lookup="no-cache" not in names, keep="no-store" not in names)


@dataclass
class RequestContext:
    """One request: its id, when it started, its task and model, its deadline and its upstream usage."""

    request_id: str
    started: float = field(default_factory=time.perf_counter)
    task: Task | None = None
    model: str | None = None
    deadline: Deadline | None = None
    usage: UpstreamUsage = field(default_factory=UpstreamUsage)
    # Who called (service/keys/keyring.py), what admission took, and what the request asked and got.
    client_key: ClientKey | None = None
    ticket: Ticket | None = None
    input_chars: int = 0
    results: int = 0
    error_type: str | None = None
    # What the caller's Cache-Control asks, and how its upstream calls were answered.
    cache_directives: CacheDirectives = field(default_factory=lambda: CacheDirectives())
    cache: CacheTally = field(default_factory=lambda: CacheTally())
    # A streamed answer: its ledger row is written when the stream ends, not when it starts.
    streamed: bool = False

    def for_target(self, deadline: Deadline) -> RequestContext:
        """The same request as one target of its chain sees it: that target's share of the
        time, and a cache tally of its own (X-Cache speaks of the target that answered)."""
        return replace(self, deadline=deadline, cache=CacheTally())

    @property
    def seconds(self) -> float:
        """Return how long the request has run."""
        return time.perf_counter() - self.started

    def usage_entry(self, status: int, day: str, catalog) -> UsageEntry:
        """What the request adds to its key's row of the ledger (service/usage/ledger.py)."""
        counts: dict[str, float] = {"requests": 1}
        if status == 200:
            counts["results"] = self.results
            if self.task is not None and self.task.makes_images:
                counts["images"] = self.results
        else:
            counts[ERROR_PREFIX + (self.error_type or f"http_{status}")] = 1
        usage = self.usage
        optional = {
            "upstream_attempts": usage.attempts,
            "upstream_seconds": round(usage.seconds, 6),
            "input_chars": self.input_chars,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
        }
        counts.update({name: value for name, value in optional.items() if value})
        key = (self.client_key or OPEN_ACCESS).name
        return UsageEntry(day, key, model_label(self.model, catalog), counts)


def outside_request(name: str, seconds: float, monotonic=None) -> RequestContext:
    """Return a context for upstream calls no caller made (liveness lookups), with its own deadline
    on the `monotonic` clock given (the system's by default)."""
    return RequestContext(request_id=f"{name}-{uuid.uuid4().hex[:8]}", deadline=Deadline(seconds, clock=monotonic))
