"""Keeping a batch inside its key's limits, from what the gateway says about them.

Every answer of a key with limits carries `RateLimit-Policy` (the IETF draft's form, e.g.
`"rpm";q=10;w=60, "concurrency";q=4`) and `RateLimit`, what is left of each and when more
frees (`"rpm";r=0;t=58`). The pacer keeps the batch's own requests of the last window under
the requests-per-minute quota and its requests in flight under the concurrency quota, so that
a batch alone on its key rarely meets a 429; when an answer says nothing is left (other
clients share the key), or a 429 comes anyway, every worker holds off until the time it names.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

REQUESTS_POLICY = "rpm"
# Answers are kept this long while no quota is known yet: the gateway's window is a minute.
DEFAULT_WINDOW_SECONDS = 60.0
CONCURRENCY_POLICY = "concurrency"
# The gateway counts requests per second of its clock, so a request counts for up to a second
# longer than the window: the pacer waits that second too.
WINDOW_GRACE_SECONDS = 1.0
# How soon a worker waiting for a free slot looks again: slots free when answers come back.
SLOT_POLL_SECONDS = 0.1


def parse_structured_list(value: str | None) -> dict[str, dict[str, str]]:
    """Read `"name";a=1;b=2, "other";a=3` into {name: {a: "1", b: "2"}, other: {a: "3"}};
    anything unreadable is left out."""
    entries: dict[str, dict[str, str]] = {}
    for member in (value or "").split(","):
        name, *params = (part.strip() for part in member.split(";"))
        name = name.strip('"')
        if not name:
            continue
        entries[name] = dict(param.partition("=")[::2] for param in params if "=" in param)
    return entries


def number(params: Mapping[str, str], name: str) -> float | None:
    """One parameter as a number, None when absent or unreadable."""
    try:
        return float(params[name])
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class Quota:
    """At most `requests` requests in any `window` seconds."""

    requests: int
    window: float


def policies_of(headers: Mapping[str, str]) -> tuple[Quota | None, int | None]:
    """The key's requests-per-window quota and concurrency limit, from RateLimit-Policy."""
    policies = parse_structured_list(headers.get("RateLimit-Policy"))
    requests = policies.get(REQUESTS_POLICY, {})
    quota, window = number(requests, "q"), number(requests, "w")
    concurrency = number(policies.get(CONCURRENCY_POLICY, {}), "q")
    return (
        Quota(int(quota), window) if quota and window else None,
        int(concurrency) if concurrency else None,
    )


def reset_seconds(headers: Mapping[str, str]) -> float | None:
    """When the exhausted limit named in RateLimit frees up (its t=, when its r= is 0)."""
    for params in parse_structured_list(headers.get("RateLimit")).values():
        if number(params, "r") == 0 and (seconds := number(params, "t")) is not None:
            return seconds
    return None


class Pacer:
    """Shared by a batch's workers: says how long a worker waits before its next request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.quota: Quota | None = None
        self.concurrency: int | None = None
        self.in_flight = 0
        # When each answered request came back: the gateway admitted it before then, so a
        # window counted from these times never ends before the gateway's does.
        self._answered: deque[float] = deque()
        self._hold_until = 0.0

    def reserve(self, now: float) -> float:
        """Take a turn and return 0, or return how many seconds to wait before asking again."""
        with self._lock:
            wait = self._wait_at(now)
            if wait <= 0:
                self.in_flight += 1
            return wait

    def answered(self, now: float, headers: Mapping[str, str], refused_for: float | None = None) -> None:
        """Count an answer, learn the limits its headers state, and hold everyone off for the
        time a refusal by the key's limits names."""
        quota, concurrency = policies_of(headers)
        with self._lock:
            self.in_flight -= 1
            self._answered.append(now)
            if quota or concurrency:
                self.quota, self.concurrency = quota, concurrency
            window = (self.quota.window if self.quota else DEFAULT_WINDOW_SECONDS) + WINDOW_GRACE_SECONDS
            while self._answered and self._answered[0] <= now - window:
                self._answered.popleft()
            # A refusal names its wait; a success may say the key has nothing left (r=0) and for how long.
            hold = refused_for if refused_for is not None else reset_seconds(headers)
            if hold is not None:
                self._hold_until = max(self._hold_until, now + hold)

    def unanswered(self) -> None:
        """Give back the turn of a request that got no answer at all."""
        with self._lock:
            self.in_flight -= 1

    def _wait_at(self, now: float) -> float:
        waits = [self._hold_until - now]
        if self.concurrency is not None and self.in_flight >= self.concurrency:
            waits.append(SLOT_POLL_SECONDS)
        if self.quota is not None:
            answered = self._answered
            window = self.quota.window + WINDOW_GRACE_SECONDS
            while answered and answered[0] <= now - window:
                answered.popleft()
            if len(answered) + self.in_flight >= self.quota.requests:
                # Full: the oldest answered request leaves the window first; with none
                # answered, the window is full of requests still in flight.
                waits.append(answered[0] + window - now if answered else SLOT_POLL_SECONDS)
        return max(0.0, *waits)
