"""Cut an upstream exchange at its deadline: each attempt's socket is given to the watchdog.

An upstream that sends its headers or chunk lines a byte at a time would restart a socket
timeout on every byte. Each attempt registers its socket with the process's watchdog
(service/hub/socket_watchdog.py) when it first writes, so the exchange ends at the deadline however
slowly the upstream trickles.
"""

import threading
import time

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from service.hub.socket_watchdog import WATCHDOG

_attempt = threading.local()


def begin_attempt(seconds: float) -> None:
    """Mark this thread's next exchange as one to cut after `seconds`."""
    _attempt.expires_at, _attempt.key = time.monotonic() + seconds, None


def end_attempt() -> None:
    """Stop watching this thread's exchange (before its connection returns to the pool)."""
    key = getattr(_attempt, "key", None)
    if key is not None:
        WATCHDOG.release(key)
    _attempt.expires_at, _attempt.key = None, None


class _Watched:
    """Registers the connection's socket with the watchdog on the attempt's first write."""

    def send(self, data):
        super().send(data)
        if getattr(_attempt, "expires_at", None) is not None and _attempt.key is None and self.sock is not None:
            _attempt.key = WATCHDOG.watch(self.sock, _attempt.expires_at)


class WatchedHTTPConnection(_Watched, HTTPConnection):
    """An HTTP connection whose exchanges end at their deadline."""


class WatchedHTTPSConnection(_Watched, HTTPSConnection):
    """An HTTPS connection whose exchanges end at their deadline."""


def attempt_time_left() -> float | None:
    """Return the seconds left to this thread's attempt, None outside an attempt."""
    expires_at = getattr(_attempt, "expires_at", None)
    return None if expires_at is None else max(0.0, expires_at - time.monotonic())


class _WaitsWithinTheAttempt:
    """A blocking pool: when every connection is busy, wait for one until the attempt's deadline.

    urllib3 would wait for ever (requests passes no pool timeout); the wait ends in
    EmptyPoolError, which the transport reports as a timeout.
    """

    def _get_conn(self, timeout=None):
        return super()._get_conn(timeout if timeout is not None else attempt_time_left())


class WatchedHTTPConnectionPool(_WaitsWithinTheAttempt, HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSConnectionPool(_WaitsWithinTheAttempt, HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


WATCHED_POOL_CLASSES = {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}
