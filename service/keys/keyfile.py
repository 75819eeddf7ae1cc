"""The key file (`API_KEYS_FILE`, TOML): named client keys, their limits, and who may read usage.

The file holds SHA-256 digests, never secrets, so it can live in an operations repository:

    [defaults]              # limits of every key that sets none of its own
    rpm = 60
    concurrency = 8

    [keys.nightly-batch]
    sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    results_per_day = 100000
    admin = false

Any mistake stops the start with a message naming the line.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DIGEST = re.compile(r"[0-9a-f]{64}")
LIMIT_NAMES = ("rpm", "concurrency", "results_per_day", "images_per_day", "tokens_per_day")
KEY_FIELDS = ("sha256", "admin", *LIMIT_NAMES)
SECRET_PREFIX = "hfg_"
NEW_FILE_HEADER = """\
# hf-gateway client keys (API_KEYS_FILE). Only SHA-256 digests of the secrets are kept here.
# Add one with `hf-infer keys add NAME`; limits: rpm, concurrency, results_per_day, images_per_day,
# tokens_per_day.
"""


class KeyFileError(ValueError):
    """The key file cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class Limits:
    """A key's limits; None means unlimited."""

    rpm: int | None = None
    concurrency: int | None = None
    results_per_day: int | None = None
    images_per_day: int | None = None
    tokens_per_day: int | None = None

    def over(self, defaults: Limits) -> Limits:
        """These limits, with `defaults` filling in the ones not set."""
        return Limits(
            **{
                name: getattr(self, name) if getattr(self, name) is not None else getattr(defaults, name)
                for name in LIMIT_NAMES
            }
        )

    def any(self) -> bool:
        return any(getattr(self, name) is not None for name in LIMIT_NAMES)


@dataclass(frozen=True)
class KeyEntry:
    """One named key: the digest of its secret, its limits, whether it may read usage."""

    name: str
    digest: str
    limits: Limits = field(default_factory=Limits)
    admin: bool = False


@dataclass(frozen=True)
class KeyFile:
    """What a key file says."""

    defaults: Limits
    keys: tuple[KeyEntry, ...]


def digest_of(secret: str) -> str:
    """The SHA-256 of a secret, as the key file writes it."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """A fresh secret: 256 random bits, recognisable by its prefix."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def line_of(text: str, table: str, key: str | None = None) -> int | None:
    """The line (from 1) of `[table]`, or of `key = …` inside it; None if not found."""
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$", line)
        if header:
            current = re.sub(r"\s*\.\s*", ".", header.group(1)).replace('"', "").replace("'", "")
            if current == table and key is None:
                return number
        elif current == table and key is not None and re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return None


def read_key_file(path: Path) -> KeyFile:
    """Read and check a key file; raise KeyFileError naming the line of the first mistake."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise KeyFileError(f"{path}: cannot read it: {reason}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KeyFileError(f"{path}: not valid TOML: {exc}") from None
    return parse_key_file(document, text, path)


def parse_key_file(document: dict, text: str, path: Path) -> KeyFile:
    """Check what a key file's TOML holds."""

    def fail(message: str, table: str, key: str | None = None):
        line = line_of(text, table, key) or (line_of(text, table) if key else None)
        where = f"{path}, line {line}" if line else str(path)
        raise KeyFileError(f"{where}: {message}")

    for section in document:
        if section not in ("defaults", "keys"):
            fail(f"unknown section [{section}]: the file has [defaults] and [keys.<name>] tables", section)
    defaults = read_limits(document.get("defaults", {}), "defaults", fail, allowed=LIMIT_NAMES)
    keys, seen = [], {}
    for name, entry in document.get("keys", {}).items():
        table = f"keys.{name}"
        if not NAME.fullmatch(name):
            fail(f"key name {name!r}: use 1-64 letters, digits, '.', '_' or '-'", table)
        if not isinstance(entry, dict):
            fail(f"keys.{name} must be a table: [keys.{name}]", "keys", name)
        digest = entry.get("sha256")
        if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
            fail(f"key {name}: sha256 must be 64 lowercase hex digits, the SHA-256 of the secret", table, "sha256")
        if digest in seen:
            fail(f"key {name} has the same secret as key {seen[digest]}", table, "sha256")
        seen[digest] = name
        admin = entry.get("admin", False)
        if not isinstance(admin, bool):
            fail(f"key {name}: admin must be true or false", table, "admin")
        limits = read_limits(entry, table, fail, allowed=KEY_FIELDS)
        keys.append(KeyEntry(name, digest, limits, admin))
    return KeyFile(defaults, tuple(keys))


def read_limits(table: dict, where: str, fail, allowed: tuple) -> Limits:
    """Read the limits of one table: positive integers of known names."""
    for name in table:
        if name not in allowed:
            fail(f"{where}: unknown setting {name!r}; known: {', '.join(allowed)}", where, name)
    values = {}
    for name in LIMIT_NAMES:
        value = table.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail(f"{where}: {name} must be a whole number of at least 1, not {value!r}", where, name)
        values[name] = value
    return Limits(**values)


def append_key(path: Path, name: str, limits: Limits, admin: bool) -> str:
    """Add a named key to the file (created if missing); return its secret, which is kept nowhere."""
    if not NAME.fullmatch(name):
        raise KeyFileError(f"key name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    current = read_key_file(path) if path.exists() else None
    existing = path.read_text(encoding="utf-8") if current else NEW_FILE_HEADER
    if current and any(entry.name == name for entry in current.keys):
        raise KeyFileError(f"{path}: a key named {name} already exists")
    secret = new_secret()
    lines = ["", f"[keys.{name}]", f'sha256 = "{digest_of(secret)}"']
    lines += [f"{limit} = {getattr(limits, limit)}" for limit in LIMIT_NAMES if getattr(limits, limit) is not None]
    if admin:
        lines.append("admin = true")
    updated = existing.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    parse_key_file(tomllib.loads(updated), updated, path)  # never write a file the service would refuse
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(updated, encoding="utf-8")
    return secret
