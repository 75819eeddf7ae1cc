"""The state of one request, in one typed object: made when the request starts, handed down to
the runner and the Hub client, read by the log line and the metrics when it ends."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from flask import g

from service.hub.deadline import Deadline
from service.tasks import Task

if TYPE_CHECKING:
    from service.keys.admission import Ticket
    from service.keys.keyring import ClientKey


@dataclass
class UpstreamUsage:
    """What one request cost upstream; shared by its fan-out and fallback calls."""

    attempts: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record_attempt(self, seconds: float) -> None:
        """Count one upstream attempt and the time it took."""
        with self._lock:
            self.attempts += 1
            self.seconds += seconds

    def record_tokens(self, prompt: int, completion: int) -> None:
        """Add the tokens an answer reports (OpenAI-style `usage`)."""
        with self._lock:
            self.prompt_tokens += prompt
            self.completion_tokens += completion


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

    def with_deadline(self, deadline: Deadline) -> RequestContext:
        """Return the same request with another deadline (a fallback target's share of the time)."""
        return replace(self, deadline=deadline)

    @property
    def seconds(self) -> float:
        """Return how long the request has run."""
        return time.perf_counter() - self.started


def outside_request(name: str, seconds: float) -> RequestContext:
    """Return a context for upstream calls no caller made (liveness lookups), with its own deadline."""
    return RequestContext(request_id=f"{name}-{uuid.uuid4().hex[:8]}", deadline=Deadline(seconds))


def begin(request_id: str) -> RequestContext:
    """Start this request's context (the first thing a request does)."""
    g.context = RequestContext(request_id)
    return g.context


def current() -> RequestContext | None:
    """Return this request's context, None before it started."""
    return g.get("context")
