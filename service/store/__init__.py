"""The shared store: per-key limits and the usage ledger (base.py says what it keeps).

`open_store` picks the backend from the settings: SQLite under DATA_DIR (the default, one
host), Redis at REDIS_URL (several hosts), or none (`STORE=off`). The service only ever
reaches it through the StoreGuard it returns, which fails open.
"""

from service.settings import Settings
from service.store.guard import FAILED, StoreGuard

SQLITE_FILE = "gateway.sqlite3"


def open_store(settings: Settings) -> StoreGuard | None:
    """Return the guarded store the settings ask for, None for STORE=off. Nothing connects yet."""
    if settings.store == "off":
        return None
    if settings.store == "redis":
        from service.store.redis_backend import RedisStore

        return StoreGuard(RedisStore(settings.redis_url, settings.store_timeout))
    from service.store.sqlite_backend import SqliteStore

    return StoreGuard(SqliteStore(settings.data_dir / SQLITE_FILE, settings.store_timeout))


__all__ = ["FAILED", "StoreGuard", "open_store"]
