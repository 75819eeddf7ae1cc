"""Concurrency leases on both real stores (SQLite and redis-server): a lease lives exactly as
long as its own expiry says, whatever the deadlines of the key's other requests, and a lease
that expires unsettled (its worker died) is booked in the ledger, never lost."""

import multiprocessing
import time
import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.store import guard as guard_module
from service.store import holders, open_store
from service.store.contract import Claim, Lease, Refusal, Settlement, UsageEntry, UsageQuery, utc_day
from service.store.redis_backend import leases_key
from tests.support.app import make_settings

LIMIT = 4
DEADLINES = st.sampled_from([1.0, 5.0, 30.0, 95.0])
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("admit"), DEADLINES),
        st.tuples(st.just("admit"), DEADLINES),
        st.tuples(st.just("settle"), st.integers(0, 20)),
        st.tuples(st.just("wait"), st.sampled_from([0.5, 2.0, 10.0, 40.0])),
    ),
    min_size=1,
    max_size=30,
)


@pytest.fixture
def store(store_backend):
    guard = open_store(make_settings(**store_backend))
    yield guard.store
    guard.store.close()


def was_admitted(outcome) -> bool:
    """Whether an admission took its place: a refusal takes nothing."""
    return not isinstance(outcome, Refusal)


class SimulatedExpiry:
    """Lets simulated time pass on a store. Redis expires keys by its own clock, which a test
    cannot move: a key whose expiry the simulated clock has passed is deleted, as Redis would."""

    def __init__(self, store, key: str):
        self.store, self.key = store, key

    def reach(self, now: float) -> None:
        if self.store.kind != "redis":
            return
        name = leases_key(self.key)
        expires_ms = self.store.client.pexpiretime(name)
        if expires_ms > 0 and expires_ms <= now * 1000:
            self.store.client.delete(name)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
# Three long requests, then a short one: the short one's expiry must not end the long ones' leases.
@example(steps=[("admit", 95.0)] * 3 + [("admit", 1.0), ("wait", 10.0), ("admit", 1.0), ("admit", 1.0)])
def test_a_lease_lives_as_long_as_its_own_expiry_whatever_the_other_deadlines(store, steps):
    """Admitted exactly while fewer than LIMIT unsettled leases have not yet expired."""
    key, now = f"k-{uuid.uuid4().hex}", time.time() + 10
    expiry = SimulatedExpiry(store, key)
    held: dict[str, float] = {}  # lease id -> expiry, as the limit should see them
    for action, value in steps:
        if action == "wait":
            now += value
            expiry.reach(now)
        elif action == "settle" and held:
            lease_id = sorted(held)[value % len(held)]
            store.settle(Settlement(key, lease_id, [], utc_day(now), []))
            del held[lease_id]
        elif action == "admit":
            live = {lease_id for lease_id, until in held.items() if until > now}
            lease = Lease(uuid.uuid4().hex, LIMIT, now + value)
            admitted = was_admitted(store.admit(key, None, lease, [], now))
            assert admitted == (len(live) < LIMIT), (steps, held, now)
            if admitted:
                held[lease.lease_id] = lease.expires_at


def booking(key: str, day: str, model: str = "m", results: int = 1) -> UsageEntry:
    return UsageEntry(day, key, model, {"requests": 1, "results": results, "errors.interrupted": 1})


def ledger(store, day: str, key: str) -> dict:
    rows = store.usage_rows(UsageQuery(day, day, key=key))
    return {row.model: row.counts for row in rows}


NOON = 1_764_590_400.0  # 2025-12-01 12:00:00 UTC
DAY = utc_day(NOON)


def test_a_lease_that_expires_unsettled_is_booked_at_the_next_admission_and_its_quota_stays(store):
    quota = Claim("results", 3, 4)
    lease = Lease("crashed", 1, NOON + 10, booking=booking("k", DAY, results=3))
    assert was_admitted(store.admit("k", None, lease, [quota], NOON))
    assert ledger(store, DAY, "k") == {}
    assert was_admitted(store.admit("k", None, Lease("next", 1, NOON + 30), [Claim("results", 1, 4)], NOON + 11))
    assert ledger(store, DAY, "k") == {"m": {"requests": 1, "results": 3, "errors.interrupted": 1}}
    # The booked results stay taken from the day's quota: 3 + 1 of 4.
    assert store.admit("k", None, None, [Claim("results", 1, 4)], NOON + 12).policy == "results"


def test_a_sweep_books_every_expired_lease_of_every_key_once(store):
    for key in ("a", "b"):
        assert was_admitted(
            store.admit(key, None, Lease(f"{key}-1", 0, NOON + 10, booking=booking(key, DAY)), [], NOON)
        )
    assert was_admitted(store.admit("a", None, Lease("a-live", 0, NOON + 100, booking=booking("a", DAY)), [], NOON))
    assert store.sweep_leases(NOON + 11) == 2
    assert store.sweep_leases(NOON + 12) == 0
    assert (
        ledger(store, DAY, "a")
        == ledger(store, DAY, "b")
        == {"m": {"requests": 1, "results": 1, "errors.interrupted": 1}}
    )


def test_a_late_settlement_of_a_booked_lease_counts_nothing_twice(store):
    lease = Lease("slow", 1, NOON + 10, booking=booking("k", DAY, results=2))
    assert was_admitted(store.admit("k", None, lease, [Claim("results", 2, 5)], NOON))
    store.sweep_leases(NOON + 11)
    carried = UsageEntry(DAY, "k", "kept-from-an-outage", {"requests": 1})
    store.settle(
        Settlement("k", "slow", [Claim("results", 2, 5)], DAY, [UsageEntry(DAY, "k", "m", {"requests": 1})]), [carried]
    )
    assert ledger(store, DAY, "k") == {
        "m": {"requests": 1, "results": 2, "errors.interrupted": 1},
        "kept-from-an-outage": {"requests": 1},  # rows carried from an outage are always written
    }
    # No refund either: the booking keeps the 2 results taken.
    assert store.admit("k", None, None, [Claim("results", 4, 5)], NOON + 12).policy == "results"


def test_a_settlement_of_a_held_lease_books_its_own_row_and_no_interruption(store):
    lease = Lease("fine", 1, NOON + 10, booking=booking("k", DAY))
    assert was_admitted(store.admit("k", None, lease, [], NOON))
    store.settle(Settlement("k", "fine", [], DAY, [UsageEntry(DAY, "k", "m", {"requests": 1, "results": 1})]))
    assert store.sweep_leases(NOON + 11) == 0
    assert ledger(store, DAY, "k") == {"m": {"requests": 1, "results": 1}}


def _identity_then_exit(pipe) -> None:
    pipe.send(holders.this_process())


def gone_holder() -> str:
    """The identity of a process that has exited."""
    reader, writer = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_identity_then_exit, args=(writer,))
    child.start()
    identity = reader.recv()
    child.join()
    return identity


def test_a_slot_held_by_a_process_that_died_frees_at_once_and_is_booked(store):
    now = time.time()
    dead = Lease("dead", 2, now + 3600, booking=booking("k", utc_day(now)), holder=gone_holder())
    alive = Lease("alive", 2, now + 3600, booking=booking("k", utc_day(now)), holder=holders.this_process())
    assert was_admitted(store.admit("k", None, dead, [], now))
    assert was_admitted(store.admit("k", None, alive, [], now))
    assert was_admitted(store.admit("k", None, Lease("third", 2, now + 3600, holder=holders.this_process()), [], now))
    assert ledger(store, utc_day(now), "k") == {"m": {"requests": 1, "results": 1, "errors.interrupted": 1}}
    assert store.admit("k", None, Lease("fourth", 2, now + 3600), [], now).policy == "concurrency"  # both alive


def test_a_sweep_books_the_leases_of_processes_that_died(store):
    now = time.time()
    dead = Lease("dead", 0, now + 3600, booking=booking("k", DAY), holder=gone_holder())
    assert was_admitted(store.admit("k", None, dead, [], now))
    lease = Lease("alive", 0, now + 3600, booking=booking("k", DAY), holder=holders.this_process())
    assert was_admitted(store.admit("k", None, lease, [], now))
    assert store.sweep_leases(now) == 1
    assert ledger(store, DAY, "k") == {"m": {"requests": 1, "results": 1, "errors.interrupted": 1}}


def test_a_holder_of_another_machine_or_namespace_is_never_taken_for_dead():
    assert not holders.is_gone(holders.this_process())
    assert not holders.is_gone("another-machine:1:1")
    assert not holders.is_gone("")
    assert holders.is_gone(gone_holder())


def test_a_settlement_the_store_missed_is_made_later_and_the_request_counts_once(store_backend, monkeypatch):
    monkeypatch.setattr(guard_module, "RETRY_SECONDS", 0.0)
    guard = open_store(make_settings(**store_backend))
    store = guard.store
    lease = Lease("missed", 1, NOON + 10, booking=booking("k", DAY))
    assert was_admitted(store.admit("k", None, lease, [Claim("results", 1, 5)], NOON))
    real_settle_later = store.settle_later

    def store_away(*args):
        raise ConnectionError("the store went away")

    monkeypatch.setattr(store, "settle_later", store_away)
    guard.settle(Settlement("k", "missed", [], DAY, [UsageEntry(DAY, "k", "m", {"requests": 1, "results": 1})]))()
    monkeypatch.setattr(store, "settle_later", real_settle_later)  # back
    guard.settle(Settlement("k", None, [], DAY, [UsageEntry(DAY, "k", "n", {"requests": 1})]))()
    store.sweep_leases(NOON + 11)  # the lease was settled late, not left to be booked as cut off
    assert ledger(store, DAY, "k") == {"m": {"requests": 1, "results": 1}, "n": {"requests": 1}}
    store.close()


def test_a_backlog_of_missed_settlements_is_made_again_a_few_per_request(store_backend, monkeypatch):
    monkeypatch.setattr(guard_module, "RETRY_SECONDS", 0.0)
    guard = open_store(make_settings(**store_backend))
    store = guard.store
    backlog = guard_module.REPLAYS_PER_SETTLEMENT * 2 + 5
    for number in range(backlog):
        lease = Lease(f"missed-{number}", 0, NOON + 10, booking=booking("k", DAY))
        assert was_admitted(store.admit("k", None, lease, [], NOON))
    real_settle_later, real_settle = store.settle_later, store.settle

    def store_away(*args):
        raise ConnectionError("the store went away")

    monkeypatch.setattr(store, "settle_later", store_away)
    monkeypatch.setattr(store, "settle", store_away)
    for number in range(backlog):
        guard.settle(Settlement("k", f"missed-{number}", [], DAY, [UsageEntry(DAY, "k", "m", {"requests": 1})]))()
    monkeypatch.setattr(store, "settle_later", real_settle_later)  # back
    replayed = []
    monkeypatch.setattr(store, "settle", lambda *args: replayed.append(args[0].lease_id) or real_settle(*args))

    def replays() -> int:
        return sum(1 for lease_id in replayed if lease_id and lease_id.startswith("missed-"))

    guard.settle(Settlement("k", None, [], DAY, [UsageEntry(DAY, "k", "n", {"requests": 1})]))()
    assert replays() == guard_module.REPLAYS_PER_SETTLEMENT  # this request waits on a few only
    for _ in range(2):
        guard.settle(Settlement("k", None, [], DAY, [UsageEntry(DAY, "k", "n", {"requests": 1})]))()
    assert replays() == backlog  # the next requests drain the rest
    assert ledger(store, DAY, "k") == {"m": {"requests": backlog}, "n": {"requests": 3}}
    store.close()
