"""The configuration a worker boots from: the one gunicorn's master last accepted, never whatever
happens to be on disk when a worker starts.

The master reads the settings, the model catalog and the key file at start and at every reload
it accepts (service/serving/hooks.py). Workers fork from the master and inherit that snapshot,
so a typo saved after it (a refused reload, or none at all) cannot stop a worker from booting
after a crash, an OOM kill or a MAX_REQUESTS recycle. The files on disk are watched instead: a
broken one is logged, shown in /readyz and counted in a metric until it is mended.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from service.catalog import Catalog
from service.hub.providers import Providers
from service.keys.keyring import KeyRing
from service.settings import DOTENV_FILE, Settings, environ_with_dotenv
from service.telemetry import metrics

log = logging.getLogger("service.configuration")


@dataclass(frozen=True)
class Configuration:
    """Everything a worker is built from that an operator edits in files."""

    settings: Settings
    catalog: Catalog
    keyring: KeyRing


def read_configuration(environ=None) -> Configuration:
    """Read and check the settings, the model catalog and the key file as they are on disk now."""
    settings = Settings.from_env(environ)
    catalog = Catalog.from_file(settings.models_config)
    Providers.from_settings(settings).check(catalog)
    return Configuration(settings, catalog, KeyRing.from_settings(settings))


# (the pid of the process that accepted it, the configuration)
_accepted: tuple[int, Configuration] | None = None


def accept(configuration: Configuration) -> None:
    """Make `configuration` the one every worker forked from now on boots from."""
    global _accepted
    _accepted = (os.getpid(), configuration)


def accepted() -> Configuration | None:
    """The configuration this process accepted last (gunicorn's master), None if it never did."""
    return _accepted[1] if _accepted else None


def inherited() -> Configuration | None:
    """In a worker, the configuration its master accepted last; None in any process that did not
    fork from one (the master itself, tests, commands: they read their files)."""
    if _accepted is None or _accepted[0] == os.getpid():
        return None
    return _accepted[1]


def watched_files(settings: Settings) -> list[Path]:
    """The files the configuration is read from: `.env`, the model catalog and the key file."""
    files = [DOTENV_FILE, settings.models_config]
    if settings.api_keys_file is not None:
        files.append(settings.api_keys_file)
    return files


def read_files(running: Settings) -> Settings:
    """Read the configuration files as a fresh start would, raising what it would; return the
    settings they make (`.env` may name other model and key files than the running ones)."""
    settings = running
    if DOTENV_FILE.exists():
        settings = Settings.from_env(environ_with_dotenv(os.environ)[0])  # this process's environment stays
    Providers.from_settings(settings).check(Catalog.from_file(settings.models_config))
    KeyRing.from_settings(settings)
    return settings


def _stamp(path: Path) -> tuple | None:
    """What changes when a file is saved, None while it is missing."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino)


class FilesOnDisk:
    """Whether the files of the running configuration still load; read again only when one changed."""

    def __init__(self, settings: Settings, reader=None):
        self._files = watched_files(settings)
        self._reader = reader or (lambda: read_files(settings))
        self._lock = threading.Lock()
        self._stamps: list | None = None
        self._problem: str | None = None

    def problem(self) -> str | None:
        """Why the files on disk cannot be loaded now, None while they can."""
        with self._lock:
            stamps = [_stamp(path) for path in self._files]
            if stamps != self._stamps:
                problem, read = self._try_reading()
                if read is not None:  # watch the files the configuration on disk names now
                    self._files = watched_files(read)
                    stamps = [_stamp(path) for path in self._files]
                self._stamps = stamps
                self._report(problem)
            problem = self._problem
        metrics.set_configuration_broken(problem is not None)
        return problem

    def _try_reading(self) -> tuple[str | None, Settings | None]:
        try:
            read = self._reader()
        except Exception as exc:  # whatever would stop a fresh start: the service keeps serving
            return f"{type(exc).__name__}: {exc}", None
        return None, read if isinstance(read, Settings) else None

    def _report(self, problem: str | None) -> None:
        if problem and problem != self._problem:
            log.error(
                "the configuration on disk cannot be loaded; serving the one accepted at start or at the "
                "last reload until it is mended: %s",
                problem,
            )
        elif self._problem and not problem:
            log.info("the configuration on disk loads again; a reload (HUP) brings it in")
        self._problem = problem
