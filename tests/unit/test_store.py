"""The shared store, on both real backends: SQLite in a temporary directory and a real redis-server."""

import math
import multiprocessing
import threading
import time

import pytest

from service.store import open_store
from service.store.base import Claim, Lease, UsageEntry, UsageQuery, Window, seconds_to_next_day, utc_day
from tests.support.app import make_settings

NOON = 1_764_590_400.0  # 2025-12-01 12:00:00 UTC


@pytest.fixture
def store(store_backend):
    guard = open_store(make_settings(**store_backend))
    yield guard.store
    guard.store.close()


def lease(limit: int, seconds: float = 60.0) -> Lease:
    return Lease(lease_id=f"lease-{time.monotonic_ns()}", limit=limit, expires_at=time.time() + seconds)


def admit(store, key, window=None, lease_=None, claims=(), now=None):
    """Admit one request."""
    return store.admit(key, window, lease_, list(claims), now or time.time())


def test_a_concurrency_limit_admits_exactly_that_many_until_one_is_settled(store):
    held = [lease(3) for _ in range(3)]
    assert [admit(store, "k", lease_=one, now=time.time()) for one in held] == [None, None, None]
    refusal = admit(store, "k", lease_=lease(3), now=time.time())
    assert (refusal.policy, refusal.retry_after) == ("concurrency", 1.0)
    store.settle("k", held[0].lease_id, [], utc_day(time.time()), [])
    assert admit(store, "k", lease_=lease(3), now=time.time()) is None
    assert admit(store, "other-key", lease_=lease(3), now=time.time()) is None


def test_an_expired_slot_frees_itself(store):
    assert admit(store, "k", lease_=Lease("dead-worker", 1, time.time() + 0.2), now=time.time()) is None
    assert admit(store, "k", lease_=lease(1), now=time.time()).policy == "concurrency"
    assert admit(store, "k", lease_=lease(1), now=time.time() + 0.3) is None


def test_a_daily_quota_counts_amounts_and_says_when_it_starts_again(store):
    assert admit(store, "k", claims=[Claim("results", 7, 10)], now=NOON) is None
    refusal = admit(store, "k", claims=[Claim("results", 4, 10)], now=NOON)
    assert refusal.policy == "results"
    assert refusal.retry_after == pytest.approx(12 * 3600) == seconds_to_next_day(NOON)
    assert admit(store, "k", claims=[Claim("results", 3, 10)], now=NOON) is None
    assert admit(store, "k", claims=[Claim("results", 1, 10)], now=NOON).policy == "results"
    assert admit(store, "k", claims=[Claim("results", 10, 10)], now=NOON + 12 * 3600) is None  # the next UTC day


def test_a_refusal_takes_nothing_at_all(store):
    claims = [Claim("results", 2, 10), Claim("images", 2, 3)]
    assert admit(store, "k", lease_=lease(5), claims=claims, now=NOON) is None
    assert admit(store, "k", lease_=lease(5), claims=claims, now=NOON).policy == "images"
    # The refused request took neither its results nor a slot: 8 results and 4 slots are left.
    assert admit(store, "k", claims=[Claim("results", 8, 10)], now=NOON) is None
    assert all(admit(store, "k", lease_=lease(5), now=NOON) is None for _ in range(4))


def test_a_refund_gives_back_the_quota_of_a_request_that_delivered_nothing(store):
    claim = Claim("images", 4, 4)
    assert admit(store, "k", claims=[claim], now=NOON) is None
    assert admit(store, "k", claims=[Claim("images", 1, 4)], now=NOON).policy == "images"
    store.settle("k", None, [claim], utc_day(NOON), [])
    assert admit(store, "k", claims=[claim], now=NOON) is None


def test_the_moving_window_allows_exactly_the_limit_and_says_when_a_slot_frees(store):
    window = Window(5, 60)
    second = math.floor(time.time())
    outcomes = [admit(store, "k", window, now=second + 0.25 + n) for n in range(7)]
    assert outcomes[:5] == [None] * 5
    assert [refusal.policy for refusal in outcomes[5:]] == ["rpm", "rpm"]
    # The first request's second stops counting 61 s after it began: a request counts 60 to 61 s.
    assert outcomes[5].retry_after == pytest.approx(55.75) and outcomes[6].retry_after == pytest.approx(54.75)
    assert admit(store, "k", window, now=second + 60.9).policy == "rpm"  # not before
    assert admit(store, "k", window, now=second + 61.0) is None  # the first left the window
    assert admit(store, "k", window, now=second + 61.1).policy == "rpm"
    assert admit(store, "another-key", window, now=second + 6) is None


def test_no_sixty_seconds_ever_hold_more_than_the_limit(store):
    window, second = Window(3, 60), math.floor(time.time())
    moments = [second + step * 0.7 for step in range(200)]  # 140 s of attempts, 0.7 s apart
    admitted = [moment for moment in moments if admit(store, "k", window, now=moment) is None]
    assert len(admitted) >= 6  # a fresh window at least twice over 140 s
    for moment in admitted:
        assert sum(moment <= other < moment + 60 for other in admitted) <= 3


def test_a_request_refused_by_another_limit_takes_no_place_in_the_window(store):
    window, now = Window(2, 60), time.time()
    assert admit(store, "k", window, claims=[Claim("results", 5, 5)], now=now) is None
    assert admit(store, "k", window, claims=[Claim("results", 1, 5)], now=now).policy == "results"
    assert admit(store, "k", window, now=now) is None  # the refused request did not count
    assert admit(store, "k", window, now=now).policy == "rpm"


def test_workers_racing_for_the_last_slots_never_take_more(store):
    admitted = []
    barrier = threading.Barrier(12)

    def take():
        barrier.wait()
        if admit(store, "race", lease_=lease(5), claims=[Claim("results", 1, 8)], now=time.time()) is None:
            admitted.append(1)

    threads = [threading.Thread(target=take) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 5


def test_the_ledger_sums_rows_per_day_key_and_model(store):
    day = "2025-12-01"
    store.settle(
        "k", None, [], day, [UsageEntry(day, "k", "m1", {"requests": 1, "results": 3, "upstream_seconds": 0.25})]
    )
    store.settle("k", None, [], day, [UsageEntry(day, "k", "m1", {"requests": 1, "errors.upstream_error": 1})])
    store.settle("k", None, [], day, [UsageEntry(day, "k", "m2", {"requests": 1})])
    store.settle("j", None, [], "2025-12-03", [UsageEntry("2025-12-03", "j", "m1", {"requests": 2})])
    rows = store.usage_rows(UsageQuery("2025-12-01", "2025-12-03"))
    by_slot = {(row.day, row.key, row.model): row.counts for row in rows}
    assert by_slot[(day, "k", "m1")] == {
        "requests": 2,
        "results": 3,
        "upstream_seconds": pytest.approx(0.25),
        "errors.upstream_error": 1,
    }
    assert by_slot[(day, "k", "m2")] == {"requests": 1}
    assert by_slot[("2025-12-03", "j", "m1")] == {"requests": 2}
    assert len(rows) == 3


def test_the_ledger_filters_by_key_model_and_days(store):
    for day in ("2025-11-30", "2025-12-01", "2025-12-02"):
        for key in ("a", "b"):
            store.settle(key, None, [], day, [UsageEntry(day, key, "m", {"requests": 1})])
    rows = store.usage_rows(UsageQuery("2025-12-01", "2025-12-02", key="a"))
    assert [(row.day, row.key) for row in rows] == [("2025-12-01", "a"), ("2025-12-02", "a")]
    assert store.usage_rows(UsageQuery("2025-12-01", "2025-12-02", model="other")) == []


def test_settling_frees_the_slot_refunds_and_records_in_one_step(store):
    taken = lease(1)
    assert admit(store, "k", lease_=taken, claims=[Claim("results", 2, 2)], now=NOON) is None
    day = utc_day(NOON)
    store.settle("k", taken.lease_id, [Claim("results", 2, 2)], day, [UsageEntry(day, "k", "m", {"requests": 1})])
    assert admit(store, "k", lease_=lease(1), claims=[Claim("results", 2, 2)], now=NOON) is None
    assert store.usage_rows(UsageQuery(day, day))[0].counts == {"requests": 1}


def _admit_five(settings_overrides: dict) -> int:
    """In a forked process: try five admissions, return how many got in."""
    guard = open_store(make_settings(**settings_overrides))
    return sum(admit(guard.store, "shared", lease_=lease(7)) is None for _ in range(5))


def test_processes_racing_on_one_store_never_take_more(store_backend):
    open_store(make_settings(**store_backend)).store.close()  # made once, as gunicorn's master does
    with multiprocessing.get_context("fork").Pool(4) as pool:
        admitted = pool.map(_admit_five, [store_backend] * 4)
    assert sum(admitted) == 7
