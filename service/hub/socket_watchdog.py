"""Cut a socket's blocked reads at a deadline, however slowly its peer trickles.

A socket timeout bounds each read, not an exchange: a peer that sends a byte now and then
restarts it on every byte. Whoever must finish by a deadline registers its socket here; one
thread per process (a greenlet under gevent) shuts the sockets down when their deadline
passes, which ends any blocked read at once with an end of file.
"""

import heapq
import itertools
import os
import socket
import threading
import time

# Released entries may stay in the heap until they come up; past this many, it is rebuilt.
COMPACT_AFTER = 1024


class Watchdog:
    """The sockets being watched, in a heap by the monotonic time they must be cut.

    Thousands of exchanges may be in flight: adding one wakes the watchdog only when it is
    due before everything already watched, and a released entry leaves the heap when it
    comes up (or when released ones outnumber the rest).
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._entries = {}  # key -> (expires_at, sock, how)
        self._heap = []  # (expires_at, key), released keys included
        self._keys = itertools.count()
        self._wake_at = None
        self._pid = None

    def watch(self, sock, expires_at: float, how: int = socket.SHUT_RDWR) -> int:
        """Shut `sock` down (`how`) at `expires_at` unless released before; return the key."""
        with self._cond:
            if self._pid != os.getpid():  # a forked worker has no watchdog thread yet
                self._entries, self._heap, self._wake_at = {}, [], None
                threading.Thread(target=self._run, name="deadline-watchdog", daemon=True).start()
                self._pid = os.getpid()
            key = next(self._keys)
            self._entries[key] = (expires_at, sock, how)
            heapq.heappush(self._heap, (expires_at, key))
            if self._wake_at is None or expires_at < self._wake_at:
                self._cond.notify()
            return key

    def release(self, key: int) -> bool:
        """Stop watching: the exchange ended. Return whether it ended in time (False: it was cut)."""
        with self._cond:
            in_time = self._entries.pop(key, None) is not None
            if len(self._heap) > 2 * len(self._entries) + COMPACT_AFTER:
                self._heap = [(expires_at, key) for key, (expires_at, _, _) in self._entries.items()]
                heapq.heapify(self._heap)
            return in_time

    def _run(self) -> None:
        """Shut down every socket whose deadline has passed; sleep until the next one is due."""
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][0] <= now or self._heap[0][1] not in self._entries):
                    _, key = heapq.heappop(self._heap)
                    entry = self._entries.pop(key, None)
                    if entry is not None:
                        shut_down(entry[1], entry[2])
                self._wake_at = self._heap[0][0] if self._heap else None
                self._cond.wait(None if self._wake_at is None else max(0.0, self._wake_at - now))


WATCHDOG = Watchdog()


def shut_down(sock, how: int = socket.SHUT_RDWR) -> None:
    """End the socket's blocked reads (and writes, with SHUT_RDWR); a closed socket is fine."""
    try:
        sock.shutdown(how)
    except OSError:
        pass
