"""`hf-infer keys add NAME ...` and `hf-infer keys list`: the key file, without ever storing a secret."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from service.cli.text_table import text_table
from service.keys.keyfile import LIMIT_NAMES, KeyFileError, Limits, append_key, read_key_file
from service.settings import PROJECT_ROOT

DEFAULT_KEY_FILE = PROJECT_ROOT / "config" / "keys.toml"
DOTENV_FILE = PROJECT_ROOT / ".env"
EXIT_FAILED = 1


@dataclass(frozen=True)
class ServiceKeyFile:
    """The key file the service reads (None: it reads none) and where that is configured."""

    path: Path | None
    source: str


def service_key_file() -> ServiceKeyFile:
    """API_KEYS_FILE as the service reads it: the environment, else the project's .env; a
    relative path from the project, where start.sh runs it."""
    if configured := os.environ.get("API_KEYS_FILE"):
        return ServiceKeyFile(PROJECT_ROOT / configured, "API_KEYS_FILE in the environment")
    if DOTENV_FILE.exists() and (configured := dotenv_values(DOTENV_FILE).get("API_KEYS_FILE")):
        return ServiceKeyFile(PROJECT_ROOT / configured, f"API_KEYS_FILE in {DOTENV_FILE}")
    return ServiceKeyFile(None, "")


def key_file_path(options: argparse.Namespace) -> Path:
    """--file, else the key file the service reads, else config/keys.toml."""
    if options.file is not None:
        return options.file
    return service_key_file().path or DEFAULT_KEY_FILE


def run_keys_command(options: argparse.Namespace) -> int:
    """Add or list keys; a bad key file or name exits with 1 and says why."""
    path = key_file_path(options)
    try:
        if options.action == "add":
            return add_key(options, path)
        return list_keys(path)
    except KeyFileError as exc:
        print(f"hf-infer: {exc}", file=sys.stderr)
        return EXIT_FAILED


def add_key(options: argparse.Namespace, path: Path) -> int:
    """Create the key; its secret goes to stdout, once, and nowhere else."""
    if path.suffix != ".toml":
        raise KeyFileError(f"{path}: named keys live in a .toml key file")
    limits = Limits(**{name: getattr(options, name) for name in LIMIT_NAMES})
    secret = append_key(path, options.name, limits, options.admin)
    print(secret)
    print(
        f"hf-infer: added key {options.name} to {path}. The secret above is shown once: hand it to its caller.",
        file=sys.stderr,
    )
    print(f"hf-infer: {whether_the_service_reads(path)}", file=sys.stderr)
    return 0


RELOAD = "reload the service (systemctl reload hf-gateway, or kill -HUP its master: docs/keys.md)"


def whether_the_service_reads(path: Path) -> str:
    """Say whether the service reads `path`, and what to do for it to use the key."""
    served = service_key_file()
    if served.path is None:
        return (
            f"warning: API_KEYS_FILE is not set, in the environment or in {DOTENV_FILE}, so the service "
            f"reads no key file and stays open to everyone: set API_KEYS_FILE={path} in {DOTENV_FILE}, "
            f"then {RELOAD}"
        )
    if served.path.resolve() != path.resolve():
        return (
            f"warning: the service reads {served.path} ({served.source}), not {path}: this key works only "
            "once that is the service's key file"
        )
    return f"{path} is the key file the service reads ({served.source}): {RELOAD} to use the key"


def list_keys(path: Path) -> int:
    """Print the keys with their limits and the start of their digest."""
    key_file = read_key_file(path)
    header = ("name", "admin", *LIMIT_NAMES, "sha256")
    rows = [("[defaults]", "", *(shown(getattr(key_file.defaults, name)) for name in LIMIT_NAMES), "")]
    for entry in key_file.keys:
        limits = entry.limits.over(key_file.defaults)
        rows.append(
            (
                entry.name,
                "yes" if entry.admin else "no",
                *(shown(getattr(limits, n)) for n in LIMIT_NAMES),
                entry.digest[:12],
            )
        )
    sys.stdout.write(text_table([header, *rows]))
    return 0


def shown(limit: int | None) -> str:
    return "-" if limit is None else str(limit)
