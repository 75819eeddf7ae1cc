"""Fail open: a store that fails (Redis down, disk full, a locked database) never fails a request.

Every call to the store goes through the guard, one method per operation of the store's
contract (service/store/contract.py). When one fails, the request goes on
as if the store had nothing to say (no limit applies, the cache misses), the failure is
logged at most once a minute per worker, counted in a metric and shown by /readyz. For the
next second the store is not asked at all, so a hung server costs one timeout a second, not
one per request; then it is tried again, and used as soon as it answers. Ledger entries
that could not be written are kept in memory (summed per day, key and model) and written
with the next entry that can be. A settlement of a request that holds a lease is kept whole
and made again later instead: the lease would otherwise end unsettled and be booked as cut
off besides (one kept too many is dropped: its lease is booked in the end, counted once).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass

import redis

from service.clock import SYSTEM_CLOCK, Clock
from service.store.contract import (
    BreakerPolicy,
    BreakerState,
    CacheLimits,
    Claim,
    Lease,
    Left,
    Refusal,
    Settlement,
    Store,
    UsageEntry,
    UsageQuery,
    Window,
    nothing_to_confirm,
)
from service.telemetry import metrics

log = logging.getLogger(__name__)

STORE_ERRORS = (sqlite3.Error, redis.RedisError, OSError)
RETRY_SECONDS = 1.0
LOG_EVERY_SECONDS = 60.0
# Ledger rows kept while the store is away; past this, more are counted as lost and logged.
MAX_PENDING_ROWS = 10_000
# Settlements kept from an outage that one request makes again before its own: enough to drain
# a backlog over the next requests, few enough that no request waits long on the backlog.
REPLAYS_PER_SETTLEMENT = 20


class Failed:
    """What the guard returns when the store could not be asked (and the NullStore, which
    has nothing to ask)."""

    def __repr__(self) -> str:
        return "FAILED"


FAILED = Failed()


@dataclass(frozen=True)
class StoreStatus:
    """What /readyz says of the store."""

    kind: str
    available: bool
    error: str | None = None
    down_seconds: float | None = None
    pending_rows: int = 0


class StoreGuard:
    """The one way the service calls its store."""

    enabled = True  # keeps limits, cache and ledger (the NullStore of STORE=off keeps nothing)

    def __init__(self, store: Store, clock: Clock = SYSTEM_CLOCK):
        self.store = store
        self._clock = clock.monotonic
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._last_logged: float | None = None
        self._last_error: str | None = None
        self._pending: dict[tuple, UsageEntry] = {}
        self._unsettled: list[Settlement] = []
        self._announced = False

    @property
    def kind(self) -> str:
        return self.store.kind

    def admit(
        self, key: str, window: Window | None, lease: Lease | None, claims: list[Claim], now: float
    ) -> Refusal | dict[str, Left] | Failed:
        return self._call("admit", self.store.admit, key, window, lease, claims, now)

    def sweep_leases(self, now: float) -> int | Failed:
        return self._call("sweep", self.store.sweep_leases, now)

    def usage_rows(self, query: UsageQuery) -> list[UsageEntry] | Failed:
        return self._call("usage", self.store.usage_rows, query)

    def cache_get(self, key: str, now: float) -> bytes | None | Failed:
        return self._call("cache", self.store.cache_get, key, now)

    def cache_put(self, key: str, value: bytes, now: float, limits: CacheLimits) -> None | Failed:
        return self._call("cache", self.store.cache_put, key, value, now, limits)

    def claim(self, key: str, now: float, seconds: float) -> bool | Failed:
        return self._call("cache", self.store.claim, key, now, seconds)

    def release(self, key: str) -> None | Failed:
        return self._call("cache", self.store.release, key)

    def breaker(self, target: str, now: float) -> BreakerState | Failed:
        return self._call("breaker", self.store.breaker, target, now)

    def breaker_outcome(
        self, target: str, succeeded: bool, now: float, policy: BreakerPolicy, caller: str | None = None
    ) -> BreakerState | Failed:
        return self._call("breaker", self.store.breaker_outcome, target, succeeded, now, policy, caller)

    def breaker_probe(self, target: str, now: float, seconds: float) -> bool | Failed:
        return self._call("breaker", self.store.breaker_probe, target, now, seconds)

    def _call(self, operation: str, function: Callable, *args):
        """Run one store operation; FAILED (and logged, counted) if the store fails or is resting."""
        if self._down_since is not None and self._clock() < self._retry_at:
            metrics.count_store_skip(operation)
            return FAILED
        try:
            result = function(*args)
        except STORE_ERRORS as exc:
            self._failed(operation, exc)
            return FAILED
        if self._down_since is not None:
            self._recovered()
        elif not self._announced:  # the gauge starts at 0: say once that this worker has a store
            self._announced = True
            metrics.set_store_available(True)
        return result

    def settle(self, settlement: Settlement) -> Callable[[], None]:
        """Settle one request, writing any ledger rows kept from an outage with it. Return what
        confirms it, to call once the answer has gone (rows it fails to confirm are kept)."""
        with self._lock:
            waiting, self._pending = list(self._pending.values()), {}
            unsettled = self._unsettled[:REPLAYS_PER_SETTLEMENT]
            del self._unsettled[:REPLAYS_PER_SETTLEMENT]
        for kept in unsettled:
            if self._call("settle", self.store.settle, kept) is FAILED:
                self._hold(kept)
        confirm = self._call("settle", self.store.settle_later, settlement, waiting)
        if confirm is FAILED:
            self._missed(settlement, waiting)
            return nothing_to_confirm

        def confirmed() -> None:
            if self._call("settle", confirm) is FAILED:
                self._missed(settlement, waiting)

        return confirmed

    def _missed(self, settlement: Settlement, waiting: list[UsageEntry]) -> None:
        """Keep what a settlement the store missed must still write: the settlement itself when
        it frees a lease (made again whole, once the store answers), else its rows."""
        self._keep(waiting)
        if settlement.lease_id is None:
            self._keep(settlement.usage)
        else:
            self._hold(settlement)

    def _hold(self, settlement: Settlement) -> None:
        with self._lock:
            if len(self._unsettled) < MAX_PENDING_ROWS:
                self._unsettled.append(settlement)

    def status(self) -> StoreStatus:
        """Ask the store now, and say whether it answers."""
        self._call("ping", self.store.ping)
        down = self._down_since
        return StoreStatus(
            kind=self.store.kind,
            available=down is None,
            error=self._last_error if down is not None else None,
            down_seconds=round(self._clock() - down, 1) if down is not None else None,
            pending_rows=len(self._pending) + len(self._unsettled),
        )

    def _keep(self, rows: list[UsageEntry]) -> None:
        with self._lock:
            for row in rows:
                slot = (row.day, row.key, row.model)
                if slot not in self._pending and len(self._pending) >= MAX_PENDING_ROWS:
                    metrics.count_ledger_rows_lost()
                    continue
                kept = self._pending.setdefault(slot, UsageEntry(row.day, row.key, row.model))
                for name, value in row.counts.items():
                    kept.counts[name] = kept.counts.get(name, 0) + value

    def _failed(self, operation: str, exc: BaseException) -> None:
        now = self._clock()
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = now
            self._retry_at = now + RETRY_SECONDS
            self._last_error = f"{type(exc).__name__}: {exc}"
            due = self._last_logged is None or now - self._last_logged >= LOG_EVERY_SECONDS
            if due:
                self._last_logged = now
        metrics.count_store_error(operation)
        metrics.set_store_available(False)
        if due:
            log.error(
                "store unavailable (%s, %s failed: %s); serving without per-key limits, %d ledger rows kept "
                "in memory until it returns; next report in a minute",
                self.store.kind,
                operation,
                self._last_error,
                len(self._pending),
            )

    def _recovered(self) -> None:
        with self._lock:
            down = self._clock() - (self._down_since or self._clock())
            self._down_since, self._last_logged = None, None
        metrics.set_store_available(True)
        log.warning("store available again (%s) after %.1f s", self.store.kind, down)
