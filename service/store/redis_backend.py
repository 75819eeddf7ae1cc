"""The store for several hosts: one Redis server (`REDIS_URL`), shared by every worker of every host.

Admitting a request is one Lua script and settling it another, so each is atomic on the
server whichever host runs it, and each costs one round trip. Windows and leases are timed
by the hosts' clocks, which must agree (NTP).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from service.store import holders
from service.store.contract import (
    CONCURRENCY_RETRY_SECONDS,
    SECONDS_PER_DAY,
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
    encode_booking,
    quota_left,
    seconds_to_next_day,
    utc_day,
    window_left,
)
from service.store.redis_scripts import POOL_SIZE, ScriptRunner, lua_script

PREFIX = "hf-gateway:"
# Quota counters outlive their day by one, so a request settled after midnight finds its own.
QUOTA_TTL_SECONDS = 2 * SECONDS_PER_DAY
SEPARATOR = "\x1f"


def settle_arguments(settlement: Settlement, carried: Sequence[UsageEntry] = ()):
    """KEYS and ARGV of the SETTLE script."""
    key, lease_id, refunds, day, usage = (
        settlement.key,
        settlement.lease_id,
        settlement.refunds,
        settlement.day,
        settlement.usage,
    )
    rows = [*carried, *usage]
    keys = [leases_key(key), LEASE_EXPIRIES, LEASE_RECORDS, *(quota_key(key, refund.name, day) for refund in refunds)]
    keys += [usage_key(entry.day) for entry in rows]
    member = lease_member(key, lease_id) if lease_id else ""
    arguments: list = [lease_id or "", member, len(refunds), len(carried), len(usage)]
    arguments += [refund.amount for refund in refunds]
    for entry in rows:
        arguments.append(len(entry.counts))
        for name, value in entry.counts.items():
            arguments += [SEPARATOR.join((entry.key, entry.model, name)), value]
    return keys, arguments


# Every lease in flight, of every key: its expiry, and its record (holder, and the row it books).
LEASE_EXPIRIES, LEASE_RECORDS = f"{PREFIX}lease-expiries", f"{PREFIX}lease-records"
# Leases of any key an admission books when their time is up: a few, so it stays cheap.
BOOK_AT_ADMISSION = 10
BOOK_AT_SWEEP = 1000


def lease_member(key: str, lease_id: str) -> str:
    return f"{key}{SEPARATOR}{lease_id}"


def lease_record(lease: Lease) -> str:
    """What the store keeps of a lease in flight: its holder and the row it books if cut off."""
    booking = encode_booking(lease.booking)
    record = {"holder": lease.holder, **(json.loads(booking) if booking else {})}
    return json.dumps(record, separators=(",", ":"))


def holder_of(record: bytes | None) -> str:
    return json.loads(record).get("holder", "") if record else ""


def cache_key(key: str) -> str:
    return f"{PREFIX}cache:{key}"


CACHE_INDEX, CACHE_SIZES, CACHE_BYTES = (f"{PREFIX}cache-index", f"{PREFIX}cache-sizes", f"{PREFIX}cache-bytes")


def claim_key(key: str) -> str:
    return f"{PREFIX}claim:{key}"


def breaker_key(target: str) -> str:
    return f"{PREFIX}breaker:{target}"


def optional_float(value) -> float | None:
    """A Lua reply field: '' or nil is None."""
    if value in (None, b"", ""):
        return None
    return float(value)


def breaker_state(failures, opened, probe, callers, since) -> BreakerState:
    """A breaker from its hash's fields (or the script's reply); callers are joined by ',' (key
    names hold none)."""
    text = callers.decode() if isinstance(callers, bytes) else callers or ""
    names = tuple(sorted(name for name in text.split(",") if name))
    return BreakerState(int(failures or 0), optional_float(opened), optional_float(probe), names, optional_float(since))


def window_key(key: str) -> str:
    return f"{PREFIX}window:{key}"


def leases_key(key: str) -> str:
    return f"{PREFIX}leases:{key}"


def quota_key(key: str, name: str, day: str) -> str:
    return f"{PREFIX}quota:{key}:{name}:{day}"


def usage_key(day: str) -> str:
    return f"{PREFIX}usage:{day}"


def admitted_left(
    window: Window | None, lease: Lease | None, claims: list[Claim], counted: list[str], now: float
) -> dict[str, Left]:
    """What each limit has left, from what the admit script counted before the request: requests
    in the window and its oldest second, leases held, and each claim's used ('' where none)."""
    requests, oldest, held, *used = counted
    left: dict[str, Left] = {}
    if window is not None:
        left["rpm"] = window_left(window, int(requests), float(oldest) if oldest else None, now)
    if lease is not None and lease.limit:
        left["concurrency"] = Left(lease.limit - int(held) - 1)
    for claim, amount in zip(claims, used, strict=True):
        left[claim.name] = quota_left(claim, int(amount), now)
    return left


class RedisStore(Store):
    """The shared state on one Redis server."""

    kind = "redis"

    def __init__(self, url: str, timeout: float):
        self.pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=POOL_SIZE,
            timeout=timeout,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            # One retry on a dropped connection: after a Redis restart, pooled connections are
            # stale and the retry reconnects. A timeout is not retried: it already cost `timeout`.
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )
        self.client = redis.Redis(connection_pool=self.pool)
        self._admit = self.client.register_script(lua_script("book_lease") + lua_script("admit"))
        self._settle = self.client.register_script(lua_script("settle"))
        self._sweep_script = self.client.register_script(lua_script("book_lease") + lua_script("sweep"))
        self._scripts = ScriptRunner(self.pool, self.client, timeout)
        self._cache_put = self.client.register_script(lua_script("cache_put"))
        self._breaker_outcome = self.client.register_script(lua_script("breaker_outcome"))
        self._breaker_probe = self.client.register_script(lua_script("breaker_probe"))

    def admit(
        self, key: str, window: Window | None, lease: Lease | None, claims: list[Claim], now: float
    ) -> Refusal | dict[str, Left]:
        outcome = self._try_admit(key, window, lease, claims, now)
        if isinstance(outcome, Refusal) and outcome.policy == "concurrency" and self._book_gone_holders(key, now):
            outcome = self._try_admit(key, window, lease, claims, now)
        return outcome

    def _try_admit(
        self, key: str, window: Window | None, lease: Lease | None, claims: list[Claim], now: float
    ) -> Refusal | dict[str, Left]:
        day = utc_day(now)
        arguments = [now, 0, 0, "", 0, 0, QUOTA_TTL_SECONDS, PREFIX, "", "", BOOK_AT_ADMISSION]
        if window is not None:
            arguments[1:3] = [window.limit, window.seconds]
        if lease is not None:
            arguments[3:6] = [lease.lease_id, lease.limit, lease.expires_at]
            arguments[8:10] = [lease_member(key, lease.lease_id), lease_record(lease)]
        for claim in claims:
            arguments += [claim.name, claim.amount, claim.limit]
        keys = [window_key(key), leases_key(key), LEASE_EXPIRIES, LEASE_RECORDS]
        keys += [quota_key(key, claim.name, day) for claim in claims]
        reply = [
            part.decode() if isinstance(part, bytes) else part
            for part in self._scripts.run(self._admit, keys, arguments)
        ]
        if not reply[0]:
            return admitted_left(window, lease, claims, reply[1:], now)
        policy, seconds, used = reply
        if policy == "rpm":
            return Refusal(policy, float(seconds))
        if policy == "concurrency":
            return Refusal(policy, CONCURRENCY_RETRY_SECONDS)
        return Refusal(policy, seconds_to_next_day(now), int(used))

    def _book_gone_holders(self, key: str, now: float) -> int:
        """Book the key's leases whose holder is seen gone (its worker was killed); how many."""
        leases = [lease.decode() for lease in self.client.zrange(leases_key(key), 0, -1)]
        members = [lease_member(key, lease) for lease in leases]
        records = self.client.hmget(LEASE_RECORDS, members) if members else []
        gone = [member for member, record in zip(members, records, strict=True) if holders.is_gone(holder_of(record))]
        return self._sweep(now, gone, limit=0) if gone else 0

    def sweep_leases(self, now: float) -> int:
        gone = [
            member.decode()
            for member, record in self.client.hgetall(LEASE_RECORDS).items()
            if holders.is_gone(holder_of(record))
        ]
        return self._sweep(now, gone, limit=BOOK_AT_SWEEP)

    def _sweep(self, now: float, gone: list[str], limit: int) -> int:
        return int(self._scripts.run(self._sweep_script, [LEASE_EXPIRIES, LEASE_RECORDS], [now, PREFIX, limit, *gone]))

    def settle(self, settlement: Settlement, carried: Sequence[UsageEntry] = ()) -> None:
        keys, arguments = settle_arguments(settlement, carried)
        self._settle(keys=keys, args=arguments)

    def settle_later(self, settlement: Settlement, carried: Sequence[UsageEntry] = ()) -> Callable[[], None]:
        """Send the settlement now (Redis runs it as soon as it arrives, so the slot is free before
        the caller has its answer) and read Redis' reply later, off the caller's time."""
        keys, arguments = settle_arguments(settlement, carried)
        connection = self._scripts.send(self._settle, keys, arguments)
        return lambda: self._scripts.receive(connection, self._settle, keys, arguments)

    def usage_rows(self, query: UsageQuery) -> list[UsageEntry]:
        days = query.days()
        pipe = self.client.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(usage_key(day))
        entries: dict[tuple, UsageEntry] = {}
        for day, fields in zip(days, pipe.execute(), strict=True):
            for field, value in sorted(fields.items()):
                key, model, name = field.decode().split(SEPARATOR)
                if query.wants(key, model):
                    entry = entries.setdefault((day, key, model), UsageEntry(day, key, model))
                    entry.counts[name] = float(value)
        return list(entries.values())

    def cache_get(self, key: str, now: float) -> bytes | None:
        return self.client.get(cache_key(key))

    def cache_put(self, key: str, value: bytes, now: float, limits: CacheLimits) -> None:
        keys = [cache_key(key), CACHE_INDEX, CACHE_SIZES, CACHE_BYTES]
        arguments = [key, value, now, limits.ttl_seconds, limits.max_entries, limits.max_bytes, cache_key("")]
        self._scripts.run(self._cache_put, keys, arguments)

    def claim(self, key: str, now: float, seconds: float) -> bool:
        return bool(self.client.set(claim_key(key), now, nx=True, px=max(1, int(seconds * 1000))))

    def release(self, key: str) -> None:
        self.client.delete(claim_key(key))

    def breaker(self, target: str, now: float) -> BreakerState:
        fields = self.client.hmget(breaker_key(target), "failures", "opened", "probe", "callers", "first")
        return breaker_state(*fields)

    def breaker_outcome(
        self, target: str, succeeded: bool, now: float, policy: BreakerPolicy, caller: str | None = None
    ) -> BreakerState:
        arguments = [1 if succeeded else 0, now, policy.failures, policy.open_seconds, policy.window_seconds]
        arguments += [policy.callers, caller or ""]
        return breaker_state(*self._scripts.run(self._breaker_outcome, [breaker_key(target)], arguments))

    def breaker_probe(self, target: str, now: float, seconds: float) -> bool:
        return self._scripts.run(self._breaker_probe, [breaker_key(target)], [now, seconds]) == 1

    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self._scripts.close()
        self.pool.disconnect()
