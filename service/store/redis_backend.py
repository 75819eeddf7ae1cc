"""The store for several hosts: one Redis server (`REDIS_URL`), shared by every worker of every host.

Admitting a request is one Lua script and settling it another, so each is atomic on the
server whichever host runs it, and each costs one round trip. Windows and leases are timed
by the hosts' clocks, which must agree (NTP).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from service.store.base import (
    BreakerPolicy,
    BreakerState,
    CacheLimits,
    Claim,
    Lease,
    Refusal,
    Store,
    UsageEntry,
    UsageQuery,
    Window,
    seconds_to_next_day,
    utc_day,
)

PREFIX = "hf-gateway:"
# Quota counters outlive their day by one, so a request settled after midnight finds its own.
QUOTA_TTL_SECONDS = 2 * 86_400
# Connections one worker may have open to Redis; more callers wait for one within the timeout.
POOL_SIZE = 64
CONCURRENCY_RETRY_SECONDS = 1.0
SEPARATOR = "\x1f"

# KEYS: the key's window (requests per second of the clock), its lease set, then one quota counter per claim.
# ARGV: now, window limit (0: none), window seconds, lease id ('': none), lease limit,
#       lease expiry, quota ttl, then name, amount, limit per claim.
# Returns {} when admitted, else {policy, seconds until trying again can succeed}.
ADMIT = """
local now = tonumber(ARGV[1])
local window_limit = tonumber(ARGV[2])
local window_seconds = tonumber(ARGV[3])
local lease = ARGV[4]
if window_limit > 0 then
    local counts = redis.call('HGETALL', KEYS[1])
    local total, oldest = 0, nil
    for i = 1, #counts, 2 do
        local second = tonumber(counts[i])
        if second + window_seconds + 1 <= now then
            redis.call('HDEL', KEYS[1], counts[i])
        else
            total = total + tonumber(counts[i + 1])
            if oldest == nil or second < oldest then oldest = second end
        end
    end
    if total >= window_limit then
        return {'rpm', tostring(oldest + window_seconds + 1 - now)}
    end
end
if lease ~= '' then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
        return {'concurrency', ''}
    end
end
local claims = (#ARGV - 7) / 3
for i = 1, claims do
    local used = tonumber(redis.call('GET', KEYS[2 + i]) or '0')
    if used + tonumber(ARGV[7 + 3 * i - 1]) > tonumber(ARGV[7 + 3 * i]) then
        return {ARGV[7 + 3 * i - 2], ''}
    end
end
if window_limit > 0 then
    redis.call('HINCRBY', KEYS[1], math.floor(now), 1)
    redis.call('EXPIRE', KEYS[1], window_seconds + 2)
end
if lease ~= '' then
    redis.call('ZADD', KEYS[2], tonumber(ARGV[6]), lease)
    redis.call('EXPIREAT', KEYS[2], math.ceil(tonumber(ARGV[6])) + 1)
end
for i = 1, claims do
    redis.call('INCRBY', KEYS[2 + i], tonumber(ARGV[7 + 3 * i - 1]))
    redis.call('EXPIRE', KEYS[2 + i], tonumber(ARGV[7]))
end
return {}
"""
# KEYS: the key's lease set, then one quota counter per refund, then one ledger hash per row.
# ARGV: lease id ('': none), refunds, rows, then an amount per refund, then per row its
#       number of fields and field, value pairs. A refund never takes a counter below zero.
SETTLE = """
if ARGV[1] ~= '' then
    redis.call('ZREM', KEYS[1], ARGV[1])
end
local refunds, rows = tonumber(ARGV[2]), tonumber(ARGV[3])
local at = 4
for i = 1, refunds do
    if redis.call('DECRBY', KEYS[1 + i], tonumber(ARGV[at])) < 0 then
        redis.call('SET', KEYS[1 + i], 0, 'KEEPTTL')
    end
    at = at + 1
end
for row = 1, rows do
    local fields = tonumber(ARGV[at])
    at = at + 1
    for f = 1, fields do
        redis.call('HINCRBYFLOAT', KEYS[1 + refunds + row], ARGV[at], ARGV[at + 1])
        at = at + 2
    end
end
return 1
"""


# KEYS: the entry, the index (member -> expiry), the sizes (member -> bytes), the byte total.
# ARGV: member, value, now, ttl seconds, max entries, max bytes, the entries' key prefix.
CACHE_PUT = """
local member, value, now, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local max_entries, max_bytes, prefix = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local function drop(m)
    local size = tonumber(redis.call('HGET', KEYS[3], m) or '0')
    redis.call('HDEL', KEYS[3], m)
    redis.call('ZREM', KEYS[2], m)
    redis.call('DEL', prefix .. m)
    redis.call('DECRBY', KEYS[4], size)
end
drop(member)
redis.call('SET', KEYS[1], value, 'PX', math.floor(ttl * 1000))
redis.call('ZADD', KEYS[2], now + ttl, member)
redis.call('HSET', KEYS[3], member, #value)
redis.call('INCRBY', KEYS[4], #value)
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do drop(m) end
while redis.call('ZCARD', KEYS[2]) > max_entries or tonumber(redis.call('GET', KEYS[4]) or '0') > max_bytes do
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
    if not oldest then break end
    drop(oldest)
end
return 1
"""
# KEYS: the breaker. ARGV: succeeded (1/0), now, failures to open, open seconds, window seconds.
# Returns {failures, opened_until or '', probe_until or ''}.
BREAKER_OUTCOME = """
if ARGV[1] == '1' then
    redis.call('DEL', KEYS[1])
    return {0, '', ''}
end
local now, threshold = tonumber(ARGV[2]), tonumber(ARGV[3])
local open_seconds, window = tonumber(ARGV[4]), tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'failures', 'first', 'opened')
local failures, first, opened = tonumber(state[1] or '0'), tonumber(state[2] or ARGV[2]), state[3]
if now - first > window and not opened then
    failures, first = 0, now
end
failures = failures + 1
if opened or failures >= threshold then
    opened = tostring(now + open_seconds)
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'failures', failures, 'first', first)
if opened then redis.call('HSET', KEYS[1], 'opened', opened) end
redis.call('EXPIRE', KEYS[1], math.ceil(window + open_seconds) + 60)
return {failures, opened or '', ''}
"""
# KEYS: the breaker. ARGV: now, probe seconds. Returns 1 when this caller may probe.
BREAKER_PROBE = """
local now = tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'opened', 'probe')
if not state[1] or tonumber(state[1]) > now then return 0 end
if state[2] and tonumber(state[2]) > now then return 0 end
redis.call('HSET', KEYS[1], 'probe', tostring(now + tonumber(ARGV[2])))
return 1
"""


def settle_arguments(key: str, lease_id: str | None, refunds: list[Claim], day: str, usage: list[UsageEntry]):
    """KEYS and ARGV of the SETTLE script."""
    keys = [leases_key(key), *(quota_key(key, refund.name, day) for refund in refunds)]
    keys += [usage_key(entry.day) for entry in usage]
    arguments: list = [lease_id or "", len(refunds), len(usage), *(refund.amount for refund in refunds)]
    for entry in usage:
        arguments.append(len(entry.counts))
        for name, value in entry.counts.items():
            arguments += [SEPARATOR.join((entry.key, entry.model, name)), value]
    return keys, arguments


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


def window_key(key: str) -> str:
    return f"{PREFIX}window:{key}"


def leases_key(key: str) -> str:
    return f"{PREFIX}leases:{key}"


def quota_key(key: str, name: str, day: str) -> str:
    return f"{PREFIX}quota:{key}:{name}:{day}"


def usage_key(day: str) -> str:
    return f"{PREFIX}usage:{day}"


class ScriptRunner:
    """Runs the two scripts of every request on connections of its own.

    redis-py's pool checks, measures and locks on every borrow, which under gevent costs more
    than the round trip itself; these connections are borrowed from a plain list, at most
    POOL_SIZE at once. The connections are redis-py's own (protocol, auth, TLS, reconnects).
    """

    def __init__(self, pool: redis.ConnectionPool, client: redis.Redis, timeout: float):
        self._make = lambda: pool.connection_class(**pool.connection_kwargs)
        self._client = client
        self._timeout = timeout
        self._idle: list = []
        self._slots = threading.BoundedSemaphore(POOL_SIZE)
        self._pid = os.getpid()

    def send(self, script, keys: list, arguments: list):
        """Send EVALSHA on a borrowed connection; return it, to `receive` on."""
        if self._pid != os.getpid():  # a forked worker never shares its parent's sockets
            self._idle, self._pid = [], os.getpid()
        if not self._slots.acquire(timeout=self._timeout):
            raise redis.ConnectionError(f"no Redis connection free within {self._timeout} s")
        connection = self._idle.pop() if self._idle else self._make()
        command = ("EVALSHA", script.sha, len(keys), *keys, *arguments)
        try:
            try:
                connection.send_command(*command)
            except redis.ConnectionError:
                connection.disconnect()  # left stale by a Redis restart: one fresh try
                connection.send_command(*command)
        except BaseException:
            self._give_back(connection, broken=True)
            raise
        return connection

    def receive(self, connection, script, keys: list, arguments: list):
        """Read the script's reply; run it again in full if Redis did not run it (a restarted
        Redis has no scripts, or the command went into a connection that had died)."""
        try:
            reply = connection.read_response()
        except (redis.exceptions.NoScriptError, redis.ConnectionError):
            self._give_back(connection, broken=True)
            return script(keys=keys, args=arguments, client=self._client)
        except BaseException:
            self._give_back(connection, broken=True)
            raise
        self._give_back(connection)
        return reply

    def run(self, script, keys: list, arguments: list):
        """Send and wait for the reply."""
        return self.receive(self.send(script, keys, arguments), script, keys, arguments)

    def _give_back(self, connection, broken: bool = False) -> None:
        if broken:
            connection.disconnect()
        self._idle.append(connection)
        self._slots.release()

    def close(self) -> None:
        for connection in self._idle:
            connection.disconnect()
        self._idle = []


class RedisStore(Store):
    """The shared state on one Redis server."""

    kind = "redis"

    def __init__(self, url: str, timeout: float):
        self.url = url
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
        self._admit = self.client.register_script(ADMIT)
        self._settle = self.client.register_script(SETTLE)
        self._scripts = ScriptRunner(self.pool, self.client, timeout)
        self._cache_put = self.client.register_script(CACHE_PUT)
        self._breaker_outcome = self.client.register_script(BREAKER_OUTCOME)
        self._breaker_probe = self.client.register_script(BREAKER_PROBE)

    def admit(
        self, key: str, window: Window | None, lease: Lease | None, claims: list[Claim], now: float
    ) -> Refusal | None:
        day = utc_day(now)
        arguments = [now, 0, 0, "", 0, 0, QUOTA_TTL_SECONDS]
        if window is not None:
            arguments[1:3] = [window.limit, window.seconds]
        if lease is not None:
            arguments[3:6] = [lease.lease_id, lease.limit, lease.expires_at]
        for claim in claims:
            arguments += [claim.name, claim.amount, claim.limit]
        keys = [window_key(key), leases_key(key), *(quota_key(key, claim.name, day) for claim in claims)]
        refused = self._scripts.run(self._admit, keys, arguments)
        if not refused:
            return None
        policy, seconds = (part.decode() if isinstance(part, bytes) else part for part in refused)
        if policy == "rpm":
            return Refusal(policy, float(seconds))
        if policy == "concurrency":
            return Refusal(policy, CONCURRENCY_RETRY_SECONDS)
        return Refusal(policy, seconds_to_next_day(now))

    def settle(self, key: str, lease_id: str | None, refunds: list[Claim], day: str, usage: list[UsageEntry]) -> None:
        keys, arguments = settle_arguments(key, lease_id, refunds, day, usage)
        self._settle(keys=keys, args=arguments)

    def settle_later(
        self, key: str, lease_id: str | None, refunds: list[Claim], day: str, usage: list[UsageEntry]
    ) -> Callable[[], None]:
        """Send the settlement now (Redis runs it as soon as it arrives, so the slot is free before
        the caller has its answer) and read Redis' reply later, off the caller's time."""
        keys, arguments = settle_arguments(key, lease_id, refunds, day, usage)
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
        failures, opened, probe = self.client.hmget(breaker_key(target), "failures", "opened", "probe")
        return BreakerState(int(failures or 0), optional_float(opened), optional_float(probe))

    def breaker_outcome(self, target: str, succeeded: bool, now: float, policy: BreakerPolicy) -> BreakerState:
        arguments = [1 if succeeded else 0, now, policy.failures, policy.open_seconds, policy.window_seconds]
        failures, opened, probe = self._scripts.run(self._breaker_outcome, [breaker_key(target)], arguments)
        return BreakerState(int(failures), optional_float(opened), optional_float(probe))

    def breaker_probe(self, target: str, now: float, seconds: float) -> bool:
        return self._scripts.run(self._breaker_probe, [breaker_key(target)], [now, seconds]) == 1

    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self._scripts.close()
        self.pool.disconnect()
