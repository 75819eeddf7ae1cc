"""The SQLite file of the embedded store: its tables, and one connection per process.

WAL mode lets the workers read while one writes; every write is one `BEGIN IMMEDIATE`
transaction, so the workers take turns on the write lock (waiting at most `timeout`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS window_counts (
    key TEXT NOT NULL, second INTEGER NOT NULL, requests INTEGER NOT NULL, PRIMARY KEY (key, second)
);
CREATE TABLE IF NOT EXISTS leases (
    key TEXT NOT NULL, lease TEXT NOT NULL, expires REAL NOT NULL, PRIMARY KEY (key, lease)
);
CREATE TABLE IF NOT EXISTS quotas (
    key TEXT NOT NULL, name TEXT NOT NULL, day TEXT NOT NULL, used INTEGER NOT NULL,
    PRIMARY KEY (key, name, day)
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, size INTEGER NOT NULL, expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_by_expiry ON cache (expires);
CREATE TABLE IF NOT EXISTS cache_totals (one INTEGER PRIMARY KEY CHECK (one = 1), entries INTEGER, bytes INTEGER);
INSERT OR IGNORE INTO cache_totals VALUES (1, 0, 0);
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS breakers (
    target TEXT PRIMARY KEY, failures INTEGER NOT NULL, first_failure REAL NOT NULL,
    opened_until REAL, probe_until REAL
);
CREATE TABLE IF NOT EXISTS usage (
    day TEXT NOT NULL, key TEXT NOT NULL, model TEXT NOT NULL, field TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (day, key, model, field)
);
"""


class SqliteDatabase:
    """The connection of this process to the database file, opened on first use after a fork."""

    def __init__(self, path: Path, timeout: float):
        self.path = path
        self.timeout = timeout
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._prepared = False
        # Prepared at once: gunicorn's master builds the app to check it before the workers
        # fork, so the tables and WAL mode exist before workers, which build their own app,
        # prepare again at the same moment (then only no-ops, under the busy timeout). A
        # failure is left for the first request, where the guard fails open.
        try:
            self._connect()
        except (sqlite3.Error, OSError):
            pass
        self.close()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():
            if not self._prepared:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            if not self._prepared:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(SCHEMA)
                self._prepared = True
            connection.execute("PRAGMA synchronous=NORMAL")
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    @contextmanager
    def transaction(self):
        """One write transaction: the workers of the host take turns on it."""
        with self._lock:
            connection = self._connect()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def read(self, sql: str, parameters: tuple) -> list:
        """Run one query outside any write transaction."""
        with self._lock:
            return self._connect().execute(sql, parameters).fetchall()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None
