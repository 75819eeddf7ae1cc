"""The shared store: per-key limits and the usage ledger (base.py says what it keeps).

`open_store` picks the backend from the settings: SQLite under DATA_DIR (the default, one
host), Redis at REDIS_URL (several hosts), or none (`STORE=off`, the NullStore that keeps
nothing). The service only ever reaches a store through the StoreGuard it returns, which fails open: a store that fails while
the service runs never fails a request. A store that can never work is another matter: a
DATA_DIR on a read-only mount or one the service may not write would mean no limits and no
ledger from the first request on, so the service refuses to start (STORE=off says so).
"""

from service.clock import SYSTEM_CLOCK, Clock
from service.settings import Settings, SettingsError
from service.store.guard import FAILED, STORE_ERRORS, StoreGuard
from service.store.null import NullStore

SQLITE_FILE = "gateway.sqlite3"


def open_store(settings: Settings, refuse_unusable: bool = True, clock: Clock = SYSTEM_CLOCK) -> StoreGuard | NullStore:
    """Return the guarded store the settings ask for, the NullStore for STORE=off. The SQLite file is made
    now: SettingsError if it never can be, unless `refuse_unusable` is off (a worker booting from
    a configuration its master accepted, whose store broke since: it fails open, like a store that
    breaks under a running worker). Redis is not asked until the first request."""
    if settings.store == "off":
        return NullStore()
    if settings.store == "redis":
        from service.store.redis_backend import RedisStore

        return StoreGuard(RedisStore(settings.redis_url, settings.store_timeout), clock)
    from service.store.sqlite_backend import SqliteStore
    from service.store.sqlite_database import lasting

    store = SqliteStore(settings.data_dir / SQLITE_FILE, settings.store_timeout)
    try:
        store.prepare()
    except STORE_ERRORS as exc:
        if lasting(exc) and refuse_unusable:
            raise SettingsError(
                f"DATA_DIR={settings.data_dir}: the store cannot keep its database there ({exc}), so no "
                "per-key limit and no ledger would hold; make the folder writable by the service's user, "
                "set DATA_DIR to one that is, or set STORE=off to serve without limits and ledger"
            ) from None
    return StoreGuard(store, clock)


__all__ = ["FAILED", "NullStore", "StoreGuard", "open_store"]
