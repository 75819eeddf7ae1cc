"""What the shared store keeps, whichever backend keeps it.

Everything that must agree across the workers of a host, or across hosts, lives here: the
per-key request windows, concurrency leases and daily quotas, and the usage ledger. Two
backends keep it: SQLite in WAL mode (one host, nothing to install) and Redis (several
hosts). Admitting a request is one transaction (SQLite) or one Lua script (Redis) that
checks every limit and takes all or nothing, so two workers can never both take the last
slot and a refused request takes no place in any window; the same step says what each limit
has left. Settling it is one more.
"""

from __future__ import annotations

import datetime
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

SECONDS_PER_DAY = 86_400
# A request refused for concurrency may try again in a second: a slot frees when any of the
# key's requests ends, which no clock can tell in advance.
CONCURRENCY_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Window:
    """A moving window: at most `limit` requests in any `seconds` (requests per minute).

    Requests are counted per second of the clock, and a second's requests count until
    `seconds` + 1 after that second began: each request counts for `seconds` to `seconds` + 1,
    never less, so no `seconds`-long stretch ever holds more than `limit`. A key's check costs
    the same (at most `seconds` + 1 counters) whatever its traffic.
    """

    limit: int
    seconds: int = 60

    def frees_at(self, second: int) -> float:
        """When the requests counted in `second` stop counting."""
        return second + self.seconds + 1

    def oldest_second(self, now: float) -> float:
        """Seconds up to this one no longer count at `now`."""
        return now - self.seconds - 1


@dataclass(frozen=True)
class Claim:
    """Part of a daily quota taken by one request: `amount` of `name` (results, images)."""

    name: str
    amount: int
    limit: int


@dataclass(frozen=True)
class Refusal:
    """Why a request was not admitted, and when trying again can succeed; for a quota, how
    much of it the day had used."""

    policy: str
    retry_after: float
    used: int | None = None


@dataclass(frozen=True)
class Left:
    """What one limit has left once a request is admitted, that request counted: `remaining`
    requests, slots, results or images, and the seconds until more free up (None for a slot,
    which frees when one of the key's requests ends, no clock can tell when)."""

    remaining: int
    reset_after: float | None = None


def window_left(window: Window, counted: int, oldest: float | None, now: float) -> Left:
    """What a window has left once the request admitted at `now` is counted: `counted` requests
    before it, the oldest in second `oldest` (None: none). More frees when the oldest second's
    requests stop counting."""
    first = math.floor(now) if oldest is None else min(oldest, math.floor(now))
    return Left(window.limit - counted - 1, window.frees_at(first) - now)


def quota_left(claim: Claim, used: int, now: float) -> Left:
    """What a day's quota has left once `claim` is taken from the `used` before it."""
    return Left(claim.limit - used - claim.amount, seconds_to_next_day(now))


@dataclass
class UsageEntry:
    """What one request adds to the ledger: a row per day, key and model, summed field by field."""

    day: str
    key: str
    model: str
    counts: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Lease:
    """A request in flight of a limited key, held until settled, until it expires or until its
    holder (the process that admitted it, service/store/holders.py) is seen gone. It counts
    against the key's concurrency `limit` (0: none). A lease that ends unsettled was cut off
    by a crash: its `booking` goes to the ledger then, and the quota it took stays taken."""

    lease_id: str
    limit: int
    expires_at: float
    booking: UsageEntry | None = None
    holder: str = ""


@dataclass(frozen=True)
class UsageQuery:
    """Which ledger rows to read: an inclusive range of days, optionally one key and one model."""

    since: str
    until: str
    key: str | None = None
    model: str | None = None

    def days(self) -> list[str]:
        """Every day of the range, oldest first."""
        first, last = datetime.date.fromisoformat(self.since), datetime.date.fromisoformat(self.until)
        return [(first + datetime.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]

    def wants(self, key: str, model: str) -> bool:
        """Whether a row of this key and model is asked for."""
        return (self.key is None or key == self.key) and (self.model is None or model == self.model)


@dataclass(frozen=True)
class CacheLimits:
    """How long answers are kept and how much: entries and bytes (the oldest go first)."""

    ttl_seconds: float
    max_entries: int
    max_bytes: int


@dataclass(frozen=True)
class BreakerPolicy:
    """When a target's breaker opens: `failures` in a row, each within `window_seconds` of the
    first, from at least `callers` distinct callers (client keys); for how long it stays open.

    A failure of a named caller counts its name: the breaker opens once the row has both enough
    failures and enough callers, and, half-open, a failed probe reopens it only once probes of
    that many callers have failed (until then the next caller probes). A failure no caller is
    named for (an open service) is enough on its own, as is any failure when `callers` is 1."""

    failures: int
    open_seconds: float
    window_seconds: float
    callers: int = 1


@dataclass(frozen=True)
class BreakerState:
    """A target's breaker as the store holds it."""

    failures: int = 0
    opened_until: float | None = None  # open until then; after, one probe may go
    probe_until: float | None = None  # a probe is out until then
    callers: tuple = ()  # the callers whose failures count toward opening (or reopening) it
    # Closed: when its row of failures began. Open: when it opened, or a probe last failed.
    since: float | None = None

    def closed(self) -> bool:
        return self.opened_until is None


def breaker_after_failure(state: BreakerState, caller: str | None, now: float, policy: BreakerPolicy) -> BreakerState:
    """What one more failure makes of a breaker: the rule both backends keep (the Redis script
    is its Lua twin)."""
    failures, opened_until, callers = state.failures, state.opened_until, state.callers
    first = now if state.since is None else state.since
    if opened_until is None and now - first > policy.window_seconds:
        failures, first, callers = 0, now, ()  # the earlier failures are too old to count
    failures += 1
    if caller is not None and caller not in callers:
        callers = (*callers, caller)
    enough_callers = caller is None or len(callers) >= policy.callers
    if enough_callers and (opened_until is not None or failures >= policy.failures):
        # Open, or reopen after failed probes: the next opening needs its callers anew.
        opened_until, callers = now + policy.open_seconds, ()
    if opened_until is not None:
        first = now  # a failed probe that reopens nothing still says when its caller may probe again
    return BreakerState(failures, opened_until, None, callers, first)


def encode_booking(entry: UsageEntry | None) -> str | None:
    """A lease's booking as the store keeps it (the key is the lease's own)."""
    if entry is None:
        return None
    return json.dumps({"day": entry.day, "model": entry.model, "counts": entry.counts}, separators=(",", ":"))


def decode_booking(key: str, value: str | bytes | None) -> UsageEntry | None:
    """The row a lease books if its request is cut off; None for a lease without one."""
    if not value:
        return None
    document = json.loads(value)
    return UsageEntry(document["day"], key, document["model"], dict(document["counts"]))


@dataclass(frozen=True)
class Settlement:
    """What one request leaves to settle when it ends: its key's slot (`lease_id`, None when it
    holds none), the quota of `day` it gives back (a negative refund adds to it: the tokens
    booked once the answers said them), and its ledger rows."""

    key: str
    lease_id: str | None
    refunds: Sequence[Claim]
    day: str
    usage: Sequence[UsageEntry]


def nothing_to_confirm() -> None:
    """What confirms a settlement that is already confirmed (or never needed the store)."""


def utc_day(now: float) -> str:
    """The UTC day a moment falls on: quotas and the ledger count by it."""
    return datetime.datetime.fromtimestamp(now, datetime.UTC).date().isoformat()


def seconds_to_next_day(now: float) -> float:
    """Seconds until the next UTC midnight, when daily quotas start again."""
    return SECONDS_PER_DAY - (now % SECONDS_PER_DAY)


class Store(ABC):
    """One backend of the shared state. Every method may raise the backend's errors; the
    service calls it through `StoreGuard`, which fails open."""

    kind: str

    @abstractmethod
    def admit(
        self, key: str, window: Window | None, lease: Lease | None, claims: list[Claim], now: float
    ) -> Refusal | dict[str, Left]:
        """Atomically count the request in the window, take a concurrency slot and the claimed
        quota and say what each limit has left (by policy: "rpm", "concurrency", each claim's
        name; a lease without a limit has none), or take nothing at all and say why."""

    @abstractmethod
    def settle(self, settlement: Settlement, carried: Sequence[UsageEntry] = ()) -> None:
        """In one step: free the slot, give back unused quota of the settlement's day, add its
        usage to the ledger; all three only if the lease was still held (one already booked as cut
        off has counted the request). `carried` rows (kept from an outage) are written in any case."""

    def settle_later(self, settlement: Settlement, carried: Sequence[UsageEntry] = ()) -> Callable[[], None]:
        """Settle, taking effect now, but leave any wait for the store's confirmation to the
        returned function (called once the answer has gone to the caller). By default, all now."""
        self.settle(settlement, carried)
        return nothing_to_confirm

    @abstractmethod
    def sweep_leases(self, now: float) -> int:
        """Book every lease that ended unsettled (expired, or its holder gone); how many."""

    @abstractmethod
    def usage_rows(self, query: UsageQuery) -> list[UsageEntry]:
        """Read the ledger: one entry per day, key and model asked for."""

    @abstractmethod
    def cache_get(self, key: str, now: float) -> bytes | None:
        """A kept answer, None when there is none or it expired."""

    @abstractmethod
    def cache_put(self, key: str, value: bytes, now: float, limits: CacheLimits) -> None:
        """Keep an answer, dropping the oldest ones (and the expired) to stay within the limits."""

    @abstractmethod
    def claim(self, key: str, now: float, seconds: float) -> bool:
        """Take the right to make a call that others then wait for; False if someone holds it."""

    @abstractmethod
    def release(self, key: str) -> None:
        """Give a claim back."""

    @abstractmethod
    def breaker(self, target: str, now: float) -> BreakerState:
        """A target's breaker now."""

    @abstractmethod
    def breaker_outcome(
        self, target: str, succeeded: bool, now: float, policy: BreakerPolicy, caller: str | None = None
    ) -> BreakerState:
        """Record a call's outcome for `caller` (a client key's name, None on an open service): a
        success closes the breaker, a failure counts, and opens it (again, after failed probes)
        when the policy says so (`breaker_after_failure`)."""

    @abstractmethod
    def breaker_probe(self, target: str, now: float, seconds: float) -> bool:
        """Take the one probe of an open breaker whose time is up; False if it is not time or
        another request probes."""

    @abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot be used now."""

    @abstractmethod
    def close(self) -> None:
        """Let go of connections (a forked worker opens its own)."""
