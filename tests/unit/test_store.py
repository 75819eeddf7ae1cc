"""The shared store, on both real backends: SQLite in a temporary directory and a real redis-server."""

import math
import multiprocessing
import os
import stat
import threading
import time

import pytest

from service.store import open_store
from service.store.contract import (
    BreakerPolicy,
    BreakerState,
    CacheLimits,
    Claim,
    Lease,
    Refusal,
    Settlement,
    UsageEntry,
    UsageQuery,
    Window,
    seconds_to_next_day,
    utc_day,
)
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
    """Admit one request: its refusal, or None when it was admitted (what is left is tested in
    test_key_limits.py)."""
    outcome = store.admit(key, window, lease_, list(claims), now or time.time())
    return outcome if isinstance(outcome, Refusal) else None


def test_a_concurrency_limit_admits_exactly_that_many_until_one_is_settled(store):
    held = [lease(3) for _ in range(3)]
    assert [admit(store, "k", lease_=one, now=time.time()) for one in held] == [None, None, None]
    refusal = admit(store, "k", lease_=lease(3), now=time.time())
    assert (refusal.policy, refusal.retry_after) == ("concurrency", 1.0)
    store.settle(Settlement("k", held[0].lease_id, [], utc_day(time.time()), []))
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
    store.settle(Settlement("k", None, [claim], utc_day(NOON), []))
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
        Settlement(
            "k", None, [], day, [UsageEntry(day, "k", "m1", {"requests": 1, "results": 3, "upstream_seconds": 0.25})]
        )
    )
    store.settle(
        Settlement("k", None, [], day, [UsageEntry(day, "k", "m1", {"requests": 1, "errors.upstream_error": 1})])
    )
    store.settle(Settlement("k", None, [], day, [UsageEntry(day, "k", "m2", {"requests": 1})]))
    store.settle(Settlement("j", None, [], "2025-12-03", [UsageEntry("2025-12-03", "j", "m1", {"requests": 2})]))
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
            store.settle(Settlement(key, None, [], day, [UsageEntry(day, key, "m", {"requests": 1})]))
    rows = store.usage_rows(UsageQuery("2025-12-01", "2025-12-02", key="a"))
    assert [(row.day, row.key) for row in rows] == [("2025-12-01", "a"), ("2025-12-02", "a")]
    assert store.usage_rows(UsageQuery("2025-12-01", "2025-12-02", model="other")) == []


def test_settling_frees_the_slot_refunds_and_records_in_one_step(store):
    taken = lease(1)
    assert admit(store, "k", lease_=taken, claims=[Claim("results", 2, 2)], now=NOON) is None
    day = utc_day(NOON)
    store.settle(
        Settlement("k", taken.lease_id, [Claim("results", 2, 2)], day, [UsageEntry(day, "k", "m", {"requests": 1})])
    )
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


LIMITS = CacheLimits(ttl_seconds=100, max_entries=3, max_bytes=1000)


def test_the_cache_keeps_answers_until_they_expire(store):
    store.cache_put("a", b"answer \x00\xff bytes", NOON, LIMITS)
    assert store.cache_get("a", NOON + 1) == b"answer \x00\xff bytes"
    assert store.cache_get("missing", NOON) is None
    if store.kind == "sqlite":
        assert store.cache_get("a", NOON + 100) is None
    else:  # Redis expires entries by its own clock
        store.cache_put("short", b"kept a moment", NOON, CacheLimits(ttl_seconds=0.2, max_entries=3, max_bytes=1000))
        assert store.cache_get("short", NOON) == b"kept a moment"
        time.sleep(0.3)
        assert store.cache_get("short", NOON) is None


def test_the_cache_drops_the_oldest_entries_past_its_limits(store):
    for n, key in enumerate("abcd"):
        store.cache_put(key, b"x" * 10, NOON + n, LIMITS)
    assert store.cache_get("a", NOON + 5) is None  # four entries for three places: the oldest went
    assert all(store.cache_get(key, NOON + 5) == b"x" * 10 for key in "bcd")
    store.cache_put("big", b"y" * 990, NOON + 6, LIMITS)  # 1,020 bytes in all: the oldest go until it fits
    assert store.cache_get("big", NOON + 7) == b"y" * 990
    assert [store.cache_get(key, NOON + 7) for key in "bcd"] == [None, None, b"x" * 10]


def test_putting_an_entry_again_replaces_it_and_counts_it_once(store):
    for _ in range(5):
        store.cache_put("same", b"z" * 400, NOON, LIMITS)
    store.cache_put("other", b"o" * 400, NOON, LIMITS)
    assert store.cache_get("same", NOON) == b"z" * 400 and store.cache_get("other", NOON) == b"o" * 400


def test_a_claim_is_held_by_one_until_released_or_expired(store):
    assert store.claim("call", NOON, 5)
    assert not store.claim("call", NOON + 1, 5)
    store.release("call")
    assert store.claim("call", NOON + 1, 0.2)
    if store.kind == "redis":  # Redis expires the claim by its own clock
        time.sleep(0.3)
    assert store.claim("call", NOON + 2, 5)  # the first holder's time ran out


POLICY = BreakerPolicy(failures=3, open_seconds=30, window_seconds=60)


def test_a_breaker_opens_after_failures_in_a_row_and_a_success_closes_it(store):
    assert store.breaker("t", NOON).closed()
    assert store.breaker_outcome("t", False, NOON, POLICY).closed()
    assert store.breaker_outcome("t", False, NOON + 1, POLICY).closed()
    opened = store.breaker_outcome("t", False, NOON + 2, POLICY)
    assert opened.opened_until == NOON + 32 and store.breaker("t", NOON + 3).opened_until == NOON + 32
    assert not store.breaker_probe("t", NOON + 31, 5)  # still open
    assert store.breaker_probe("t", NOON + 32, 5)  # time is up: one probe...
    assert not store.breaker_probe("t", NOON + 33, 5)  # ...and only one
    assert store.breaker_outcome("t", True, NOON + 34, POLICY).closed()
    assert store.breaker("t", NOON + 34) == BreakerState()


def test_a_failed_probe_reopens_the_breaker_at_once(store):
    for n in range(3):
        store.breaker_outcome("t", False, NOON + n, POLICY)
    assert store.breaker_probe("t", NOON + 40, 5)
    reopened = store.breaker_outcome("t", False, NOON + 41, POLICY)
    assert reopened.opened_until == NOON + 71
    assert not store.breaker_probe("t", NOON + 50, 5)


def test_failures_too_far_apart_never_open_a_breaker(store):
    for n in range(6):
        assert store.breaker_outcome("t", False, NOON + n * 61, POLICY).closed()


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o277])
def test_the_store_is_private_to_its_user_whatever_the_umask(tmp_path, umask):
    data = tmp_path / "made" / "data"
    previous = os.umask(umask)
    try:
        store = open_store(make_settings(store="sqlite", data_dir=data)).store
        admit(store, "k", lease_=lease(3))  # a write: the -wal and -shm files exist while connected
        files = {path.name: mode_of(path) for path in data.iterdir()}
    finally:
        os.umask(previous)
        store.close()
    assert mode_of(data) == 0o700
    assert files == {"gateway.sqlite3": 0o600, "gateway.sqlite3-wal": 0o600, "gateway.sqlite3-shm": 0o600}


def test_a_store_made_readable_by_an_earlier_version_is_made_private(tmp_path):
    data = tmp_path / "data"
    open_store(make_settings(store="sqlite", data_dir=data)).store.close()
    os.chmod(data, 0o755)
    os.chmod(data / "gateway.sqlite3", 0o644)
    store = open_store(make_settings(store="sqlite", data_dir=data)).store
    admit(store, "k", lease_=lease(3))
    assert mode_of(data) == 0o700
    assert {path.name: mode_of(path) for path in data.iterdir()} == dict.fromkeys(
        ("gateway.sqlite3", "gateway.sqlite3-wal", "gateway.sqlite3-shm"), 0o600
    )
    store.close()


def test_a_shared_folder_keeps_its_mode_and_the_files_in_it_are_private(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # a /tmp-like folder: not the service's to close
    store = open_store(make_settings(store="sqlite", data_dir=shared)).store
    admit(store, "k", lease_=lease(3))
    assert mode_of(shared) == 0o1777
    assert mode_of(shared / "gateway.sqlite3") == 0o600
    store.close()
