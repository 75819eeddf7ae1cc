"""Cut a socket's blocked reads at a deadline, however slowly its peer trickles.

A socket timeout bounds each read, not an exchange: a peer that sends a byte now and then
restarts it on every byte. Whoever must finish by a deadline registers its socket here; one
thread per process (a greenlet under gevent) shuts the sockets down when their deadline
passes, which ends any blocked read at once with an end of file.
"""

import itertools
import os
import socket
import threading
import time


class Watchdog:
    """The sockets being watched, by the monotonic time they must be cut."""

    def __init__(self):
        self._cond = threading.Condition()
        self._entries = {}
        self._keys = itertools.count()
        self._pid = None

    def watch(self, sock, expires_at: float, how: int = socket.SHUT_RDWR) -> int:
        """Shut `sock` down (`how`) at `expires_at` unless released before; return the key."""
        with self._cond:
            if self._pid != os.getpid():  # a forked worker has no watchdog thread yet
                self._entries.clear()
                threading.Thread(target=self._run, name="deadline-watchdog", daemon=True).start()
                self._pid = os.getpid()
            key = next(self._keys)
            self._entries[key] = (expires_at, sock, how)
            self._cond.notify()
            return key

    def release(self, key: int) -> None:
        """Stop watching: the exchange ended in time."""
        with self._cond:
            self._entries.pop(key, None)

    def _run(self) -> None:
        """Shut down every socket whose deadline has passed; sleep until the next one."""
        with self._cond:
            while True:
                now = time.monotonic()
                for key, (expires_at, sock, how) in list(self._entries.items()):
                    if expires_at <= now:
                        del self._entries[key]
                        shut_down(sock, how)
                soonest = min((entry[0] for entry in self._entries.values()), default=None)
                self._cond.wait(None if soonest is None else max(0.0, soonest - now))


WATCHDOG = Watchdog()


def shut_down(sock, how: int = socket.SHUT_RDWR) -> None:
    """End the socket's blocked reads (and writes, with SHUT_RDWR); a closed socket is fine."""
    try:
        sock.shutdown(how)
    except OSError:
        pass
