"""Cut an upstream exchange at its deadline, however slowly the upstream trickles.

A socket timeout bounds each read, not the exchange: an upstream that sends its headers
or chunk-size lines a byte at a time restarts it on every byte. Each attempt registers
its socket here when it first writes; one thread per process shuts down the sockets
still registered when their deadline passes, which ends any blocked read at once.
"""

import itertools
import os
import socket
import threading
import time

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_attempt = threading.local()


class _Watchdog:
    """The sockets of attempts in flight, by the monotonic time they must end."""

    def __init__(self):
        self._cond = threading.Condition()
        self._entries = {}
        self._keys = itertools.count()
        self._pid = None

    def watch(self, sock, expires_at: float) -> int:
        """Start watching a socket; return the key that stops it."""
        with self._cond:
            if self._pid != os.getpid():  # a forked worker has no watchdog thread yet
                self._entries.clear()
                threading.Thread(target=self._run, name="deadline-watchdog", daemon=True).start()
                self._pid = os.getpid()
            key = next(self._keys)
            self._entries[key] = (expires_at, sock)
            self._cond.notify()
            return key

    def release(self, key: int) -> None:
        """Stop watching; the socket may go back to the pool."""
        with self._cond:
            self._entries.pop(key, None)

    def _run(self) -> None:
        """Shut down every socket whose deadline has passed; sleep until the next one."""
        with self._cond:
            while True:
                now = time.monotonic()
                for key, (expires_at, sock) in list(self._entries.items()):
                    if expires_at <= now:
                        del self._entries[key]
                        _shut_down(sock)
                soonest = min((expires_at for expires_at, _ in self._entries.values()), default=None)
                self._cond.wait(None if soonest is None else max(0.0, soonest - now))


WATCHDOG = _Watchdog()


def _shut_down(sock) -> None:
    """End the socket's blocked reads; the pool discards it afterwards."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


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


class WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


WATCHED_POOL_CLASSES = {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}
