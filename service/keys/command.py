"""`hf-infer keys add NAME ...` and `hf-infer keys list`: the key file, without ever storing a secret."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dotenv import dotenv_values

from service.keys.keyfile import LIMIT_NAMES, KeyFileError, Limits, append_key, read_key_file
from service.settings import PROJECT_ROOT
from service.text_table import text_table

DEFAULT_KEY_FILE = PROJECT_ROOT / "config" / "keys.toml"
EXIT_FAILED = 1


def key_file_path(options: argparse.Namespace) -> Path:
    """--file, else API_KEYS_FILE as the service reads it (the environment, else the project's
    .env; a relative path from the project, where start.sh runs it), else config/keys.toml."""
    if options.file is not None:
        return options.file
    configured = os.environ.get("API_KEYS_FILE") or dotenv_values(PROJECT_ROOT / ".env").get("API_KEYS_FILE")
    return PROJECT_ROOT / configured if configured else DEFAULT_KEY_FILE


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
        f"hf-infer: added key {options.name} to {path}. The secret above is shown once: hand it to its caller. "
        "Reload the service (kill -HUP, systemctl reload hf-gateway) to use it.",
        file=sys.stderr,
    )
    return 0


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
