"""The SQLite file of the embedded store: its tables, and one connection per process.

WAL mode lets the workers read while one writes; every write is one `BEGIN IMMEDIATE`
transaction, so the workers take turns on the write lock (waiting at most `timeout`).

Cached answers and usage are nobody else's business: the folder is 0700 and the database
0600 (SQLite gives its -wal and -shm files the database's mode), whatever the umask of
whoever starts the service.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import stat
import threading
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
SIDE_FILES = ("-wal", "-shm")
# Failures no retry can mend: a read-only mount, a folder the service may not write, a path
# that is a file, a file that is no database. Anything else (a lock, a full disk) may pass.
LASTING_OS_ERRORS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST, errno.EISDIR})
LASTING_SQLITE_ERRORS = frozenset(
    {
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_CORRUPT,
    }
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS window_counts (
    key TEXT NOT NULL, second INTEGER NOT NULL, requests INTEGER NOT NULL, PRIMARY KEY (key, second)
);
CREATE TABLE IF NOT EXISTS leases (
    key TEXT NOT NULL, lease TEXT NOT NULL, expires REAL NOT NULL, booking TEXT, holder TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (key, lease)
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
CREATE TABLE IF NOT EXISTS breaker_callers (target TEXT NOT NULL, caller TEXT NOT NULL, PRIMARY KEY (target, caller));
CREATE TABLE IF NOT EXISTS usage (
    day TEXT NOT NULL, key TEXT NOT NULL, model TEXT NOT NULL, field TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (day, key, model, field)
);
"""
# Columns added since the first release, for a database made by it: (table, column, definition).
ADDED_COLUMNS = (("leases", "booking", "TEXT"), ("leases", "holder", "TEXT NOT NULL DEFAULT ''"))
INDEXES = "CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases (expires);"


def lasting(exc: BaseException) -> bool:
    """Whether a failure to open the store will happen again however long one waits."""
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in LASTING_SQLITE_ERRORS
    return isinstance(exc, OSError) and exc.errno in LASTING_OS_ERRORS


def keep_private(directory: Path, created: bool) -> None:
    """Make the store's folder 0700: one it made, or one of its owner's that is no shared,
    sticky folder such as /tmp (whose mode is not the service's to change)."""
    info = directory.stat()
    shared = info.st_mode & stat.S_ISVTX or info.st_uid != os.geteuid()
    if stat.S_IMODE(info.st_mode) != DIRECTORY_MODE and (created or not shared):
        os.chmod(directory, DIRECTORY_MODE)


def private_file(path: Path) -> None:
    """Create the file 0600 if absent (before SQLite does, under the umask), and make it 0600."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE))
    for name in (path, *(path.with_name(path.name + suffix) for suffix in SIDE_FILES)):
        try:
            if stat.S_IMODE(name.stat().st_mode) != FILE_MODE:
                os.chmod(name, FILE_MODE)
        except FileNotFoundError:
            pass


class SqliteDatabase:
    """The connection of this process to the database file, opened on first use after a fork."""

    def __init__(self, path: Path, timeout: float):
        self.path = path
        self.timeout = timeout
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._prepared = False

    def prepare(self) -> None:
        """Make the folder, the file and the tables, and write once: raise if that fails.

        gunicorn's master builds the app to check it before the workers fork, so the tables and
        WAL mode exist before workers, which build their own app, prepare again at the same
        moment (then only no-ops, under the busy timeout)."""
        try:
            with self.transaction() as db:
                db.execute("UPDATE cache_totals SET entries = entries")
        finally:
            self.close()

    def _prepare_files(self) -> None:
        directory = self.path.parent
        created = not directory.exists()
        directory.mkdir(parents=True, exist_ok=True)
        keep_private(directory, created)
        private_file(self.path)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():
            if not self._prepared:
                self._prepare_files()
            connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            if not self._prepared:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(SCHEMA)
                self._add_missing_columns(connection)
                connection.executescript(INDEXES)
                private_file(self.path)  # the -wal and -shm files WAL mode has just made
                self._prepared = True
            connection.execute("PRAGMA synchronous=NORMAL")
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    @staticmethod
    def _add_missing_columns(connection: sqlite3.Connection) -> None:
        for table, column, definition in ADDED_COLUMNS:
            present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

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
