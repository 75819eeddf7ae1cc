"""The embedded store: one SQLite database in WAL mode, shared by the workers of one host.

Each worker opens its own connection (after the fork) and every operation is one
`BEGIN IMMEDIATE` transaction, so workers take turns on the write lock and never both take
the last slot. Transactions are a few statements on indexed rows, so the lock is held for
microseconds; a worker that finds it taken waits at most `timeout` seconds. WAL with
`synchronous=NORMAL` keeps every committed count through a crash of any process; only a
power loss can cost the last commits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from service.store import holders
from service.store.contract import (
    CONCURRENCY_RETRY_SECONDS,
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
    breaker_after_failure,
    decode_booking,
    encode_booking,
    quota_left,
    seconds_to_next_day,
    utc_day,
    window_left,
)
from service.store.sqlite_database import SqliteDatabase


def add_to_ledger(db, usage: Iterable[UsageEntry]) -> None:
    """Add rows to the ledger, field by field."""
    db.executemany(
        "INSERT INTO usage (day, key, model, field, value) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (day, key, model, field) DO UPDATE SET value = value + excluded.value",
        [(entry.day, entry.key, entry.model, name, value) for entry in usage for name, value in entry.counts.items()],
    )


def book_ended(db, where: str, parameters: tuple) -> int:
    """Delete the leases `where` selects, booking each in the ledger as its request cut off."""
    rows = db.execute(f"SELECT key, booking FROM leases WHERE {where}", parameters).fetchall()
    if rows:
        db.execute(f"DELETE FROM leases WHERE {where}", parameters)
        add_to_ledger(db, [entry for key, booking in rows if (entry := decode_booking(key, booking))])
    return len(rows)


class SqliteStore(Store):
    """The shared state in one SQLite file under the data directory."""

    kind = "sqlite"

    def __init__(self, path: Path, timeout: float):
        self.database = SqliteDatabase(path, timeout)

    def prepare(self) -> None:
        """Make the database now, raising what stops it (open_store tells lasting from passing)."""
        self.database.prepare()

    def admit(
        self, key: str, window: Window | None, lease: Lease | None, claims: list[Claim], now: float
    ) -> Refusal | dict[str, Left]:
        day = utc_day(now)
        left: dict[str, Left] = {}
        with self.database.transaction() as db:
            if window is not None:
                db.execute("DELETE FROM window_counts WHERE key = ? AND second <= ?", (key, window.oldest_second(now)))
                count, oldest = db.execute(
                    "SELECT SUM(requests), MIN(second) FROM window_counts WHERE key = ?", (key,)
                ).fetchone()
                if (count or 0) >= window.limit:
                    return Refusal("rpm", window.frees_at(oldest) - now)
                left["rpm"] = window_left(window, count or 0, oldest, now)
            if lease is not None:
                book_ended(db, "key = ? AND expires <= ?", (key, now))
                if lease.limit:
                    held = self._slots_held(db, key, lease.limit)
                    if held >= lease.limit:
                        return Refusal("concurrency", CONCURRENCY_RETRY_SECONDS)
                    left["concurrency"] = Left(lease.limit - held - 1)
            for claim in claims:
                row = db.execute(
                    "SELECT used FROM quotas WHERE key = ? AND name = ? AND day = ?", (key, claim.name, day)
                ).fetchone()
                used = row[0] if row else 0
                if used + claim.amount > claim.limit:
                    return Refusal(claim.name, seconds_to_next_day(now), used)
                left[claim.name] = quota_left(claim, used, now)
            if window is not None:
                db.execute(
                    "INSERT INTO window_counts (key, second, requests) VALUES (?, ?, 1) "
                    "ON CONFLICT (key, second) DO UPDATE SET requests = requests + 1",
                    (key, math.floor(now)),
                )
            if lease is not None:
                db.execute(
                    "INSERT INTO leases (key, lease, expires, booking, holder) VALUES (?, ?, ?, ?, ?)",
                    (key, lease.lease_id, lease.expires_at, encode_booking(lease.booking), lease.holder),
                )
            for claim in claims:
                db.execute("DELETE FROM quotas WHERE key = ? AND name = ? AND day < ?", (key, claim.name, day))
                db.execute(
                    "INSERT INTO quotas (key, name, day, used) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (key, name, day) DO UPDATE SET used = used + excluded.used",
                    (key, claim.name, day, claim.amount),
                )
        return left

    @staticmethod
    def _slots_held(db, key: str, limit: int) -> int:
        """How many leases the key holds; when that is `limit` or more, once those of processes
        seen gone (a worker killed with its requests in flight) are booked."""
        (held,) = db.execute("SELECT COUNT(*) FROM leases WHERE key = ?", (key,)).fetchone()
        if held < limit:
            return held
        gone = [
            lease
            for lease, holder in db.execute("SELECT lease, holder FROM leases WHERE key = ?", (key,))
            if holders.is_gone(holder)
        ]
        for lease in gone:
            book_ended(db, "key = ? AND lease = ?", (key, lease))
        return held - len(gone)

    def settle(self, settlement: Settlement, carried: Sequence[UsageEntry] = ()) -> None:
        key, lease_id = settlement.key, settlement.lease_id
        with self.database.transaction() as db:
            held = (
                lease_id is None
                or db.execute("DELETE FROM leases WHERE key = ? AND lease = ?", (key, lease_id)).rowcount == 1
            )
            if held:
                for refund in settlement.refunds:
                    db.execute(
                        "UPDATE quotas SET used = MAX(0, used - ?) WHERE key = ? AND name = ? AND day = ?",
                        (refund.amount, key, refund.name, settlement.day),
                    )
            add_to_ledger(db, [*carried, *(settlement.usage if held else ())])

    def sweep_leases(self, now: float) -> int:
        with self.database.transaction() as db:
            booked = book_ended(db, "expires <= ?", (now,))
            rows = db.execute("SELECT key, lease, holder FROM leases WHERE holder != ''").fetchall()
            for key, lease, holder in rows:
                if holders.is_gone(holder):
                    booked += book_ended(db, "key = ? AND lease = ?", (key, lease))
            return booked

    def usage_rows(self, query: UsageQuery) -> list[UsageEntry]:
        rows = self.database.read(
            "SELECT day, key, model, field, value FROM usage WHERE day >= ? AND day <= ? "
            "AND (? IS NULL OR key = ?) AND (? IS NULL OR model = ?) ORDER BY day, key, model",
            (query.since, query.until, query.key, query.key, query.model, query.model),
        )
        entries: dict[tuple, UsageEntry] = {}
        for day, key, model, name, value in rows:
            entry = entries.setdefault((day, key, model), UsageEntry(day, key, model))
            entry.counts[name] = value
        return list(entries.values())

    def cache_get(self, key: str, now: float) -> bytes | None:
        rows = self.database.read("SELECT value FROM cache WHERE key = ? AND expires > ?", (key, now))
        return bytes(rows[0][0]) if rows else None

    def cache_put(self, key: str, value: bytes, now: float, limits: CacheLimits) -> None:
        with self.database.transaction() as db:
            self._drop_cached(db, "key = ?", (key,))
            db.execute(
                "INSERT INTO cache (key, value, size, expires) VALUES (?, ?, ?, ?)",
                (key, value, len(value), now + limits.ttl_seconds),
            )
            db.execute("UPDATE cache_totals SET entries = entries + 1, bytes = bytes + ?", (len(value),))
            self._drop_cached(db, "expires <= ?", (now,))
            while True:
                entries, total = db.execute("SELECT entries, bytes FROM cache_totals").fetchone()
                if entries <= limits.max_entries and total <= limits.max_bytes:
                    break
                over = max(entries - limits.max_entries, 1)
                self._drop_cached(db, "key IN (SELECT key FROM cache ORDER BY expires LIMIT ?)", (over,))

    @staticmethod
    def _drop_cached(db, where: str, parameters: tuple) -> None:
        """Delete cache rows and keep the totals right."""
        dropped, size = db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM cache WHERE {where}", parameters
        ).fetchone()
        if dropped:
            db.execute(f"DELETE FROM cache WHERE {where}", parameters)
            db.execute("UPDATE cache_totals SET entries = entries - ?, bytes = bytes - ?", (dropped, size))

    def claim(self, key: str, now: float, seconds: float) -> bool:
        with self.database.transaction() as db:
            db.execute("DELETE FROM claims WHERE key = ? AND expires <= ?", (key, now))
            inserted = db.execute(
                "INSERT INTO claims (key, expires) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, now + seconds)
            )
            return inserted.rowcount == 1

    def release(self, key: str) -> None:
        with self.database.transaction() as db:
            db.execute("DELETE FROM claims WHERE key = ?", (key,))

    def breaker(self, target: str, now: float) -> BreakerState:
        rows = self.database.read(
            "SELECT b.failures, b.opened_until, b.probe_until, group_concat(c.caller, ','), b.first_failure "
            "FROM breakers b LEFT JOIN breaker_callers c ON c.target = b.target WHERE b.target = ? GROUP BY b.target",
            (target,),
        )
        if not rows:
            return BreakerState()
        failures, opened_until, probe_until, callers, since = rows[0]
        names = tuple(sorted(callers.split(",") if callers else ()))
        return BreakerState(failures, opened_until, probe_until, names, since)

    def breaker_outcome(
        self, target: str, succeeded: bool, now: float, policy: BreakerPolicy, caller: str | None = None
    ) -> BreakerState:
        with self.database.transaction() as db:
            if succeeded:
                db.execute("DELETE FROM breakers WHERE target = ?", (target,))
                db.execute("DELETE FROM breaker_callers WHERE target = ?", (target,))
                return BreakerState()
            row = db.execute(
                "SELECT failures, first_failure, opened_until FROM breakers WHERE target = ?", (target,)
            ).fetchone()
            failures, first, opened_until = row if row else (0, None, None)
            callers = tuple(
                name for (name,) in db.execute("SELECT caller FROM breaker_callers WHERE target = ?", (target,))
            )
            known = BreakerState(failures, opened_until, None, callers, first)
            state = breaker_after_failure(known, caller, now, policy)
            db.execute(
                "INSERT OR REPLACE INTO breakers (target, failures, first_failure, opened_until, probe_until) "
                "VALUES (?, ?, ?, ?, NULL)",
                (target, state.failures, state.since, state.opened_until),
            )
            db.execute("DELETE FROM breaker_callers WHERE target = ?", (target,))
            db.executemany(
                "INSERT INTO breaker_callers (target, caller) VALUES (?, ?)", [(target, name) for name in state.callers]
            )
            return replace(state, callers=tuple(sorted(state.callers)))

    def breaker_probe(self, target: str, now: float, seconds: float) -> bool:
        with self.database.transaction() as db:
            taken = db.execute(
                "UPDATE breakers SET probe_until = ? WHERE target = ? AND opened_until <= ? "
                "AND (probe_until IS NULL OR probe_until <= ?)",
                (now + seconds, target, now, now),
            )
            return taken.rowcount == 1

    def ping(self) -> None:
        self.database.read("SELECT 1", ())

    def close(self) -> None:
        self.database.close()
