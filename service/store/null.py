"""The store of `STORE=off`: nothing is kept, so nothing is asked.

It answers every operation of the guard as a store that has nothing to say: no limit
applies (limits with STORE=off are refused at start), breakers read closed and record
nothing, the cache is off, settlements need no confirmation, and the ledger cannot be read.
Unlike a guarded store that fails, it is never down: nothing is logged or counted, and
/readyz says `off`.
"""

from __future__ import annotations

from collections.abc import Callable

from service.errors import StoreUnavailable
from service.store.contract import Settlement, nothing_to_confirm
from service.store.guard import FAILED, Failed, StoreStatus

OFF = "off"


class NullStore:
    """What the service calls instead of a StoreGuard when no store is kept."""

    kind = OFF
    enabled = False  # keeps nothing: no limits, no cache, no ledger

    def admit(self, key, window, lease, claims, now) -> Failed:
        return FAILED  # takes nothing, as a guarded store that cannot be asked

    def settle(self, settlement: Settlement) -> Callable[[], None]:
        return nothing_to_confirm

    def sweep_leases(self, now: float) -> int:
        return 0

    def usage_rows(self, query):
        raise StoreUnavailable("STORE=off: no ledger is kept")

    def cache_get(self, key: str, now: float) -> None:
        return None

    def cache_put(self, key, value, now, limits) -> Failed:
        return FAILED  # kept nowhere

    def claim(self, key: str, now: float, seconds: float) -> bool:
        return True  # no other worker can be seen making the call: make it

    def release(self, key: str) -> None:
        return None

    def breaker(self, target: str, now: float) -> Failed:
        return FAILED  # read as closed

    def breaker_outcome(self, target, succeeded, now, policy, caller=None) -> Failed:
        return FAILED  # recorded nowhere

    def breaker_probe(self, target: str, now: float, seconds: float) -> Failed:
        return FAILED  # never reached: a breaker read as closed is never probed

    def status(self) -> StoreStatus:
        return StoreStatus(kind=OFF, available=True)
