"""Who is calling: the configured client keys, and the key a request presents.

Keys come from API_KEYS (plain secrets, comma separated), from a plain API_KEYS_FILE (one
secret per line) and from a TOML API_KEYS_FILE (named keys, limits, admin; keyfile.py).
Plain keys are named `key-<first 8 hex digits of their SHA-256>` and take the key file's
default limits. A presented key is hashed and compared with every configured digest in
constant time, so timing says nothing about which key nearly matched.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from service.keys.keyfile import KeyEntry, KeyFileError, Limits, digest_of, read_key_file
from service.settings import Settings

# Without configured keys the service is open: every caller is this one, unlimited.
OPEN_ACCESS_NAME = "-"
# No configured secret is this long (new ones are 47 characters): longer is refused unhashed.
MAX_KEY_CHARS = 512
UNAUTHORIZED_MESSAGE = "a valid API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"


@dataclass(frozen=True)
class ClientKey:
    """A caller the service knows: its name (for limits and the ledger), limits and rights."""

    name: str
    limits: Limits
    admin: bool


OPEN_ACCESS = ClientKey(OPEN_ACCESS_NAME, Limits(), admin=True)


class KeyRing:
    """The configured keys, by the digest of their secret."""

    def __init__(self, entries: list[KeyEntry], defaults: Limits | None = None):
        defaults = defaults or Limits()
        self._keys = [
            (bytes.fromhex(entry.digest), ClientKey(entry.name, entry.limits.over(defaults), entry.admin))
            for entry in entries
        ]

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """Read every configured key; a bad key file raises KeyFileError naming its line."""
        defaults, entries = Limits(), []
        if settings.api_keys_file is not None and settings.api_keys_file.suffix == ".toml":
            key_file = read_key_file(settings.api_keys_file)
            defaults, entries = key_file.defaults, list(key_file.keys)
        entries += [KeyEntry(f"key-{digest_of(secret)[:8]}", digest_of(secret)) for secret in sorted(settings.api_keys)]
        if settings.api_keys_file is not None and not entries:
            # An operator who names a key file means to close the service: never open it silently.
            raise KeyFileError(
                f"{settings.api_keys_file}: holds no key, so every caller would be let in; "
                "add one with `hf-infer keys add NAME`, or unset API_KEYS_FILE"
            )
        return cls(entries, defaults)

    @property
    def required(self) -> bool:
        """Whether every /api/ call needs a key."""
        return bool(self._keys)

    @property
    def keys(self) -> list[ClientKey]:
        return [key for _, key in self._keys]

    def identify(self, presented: str) -> ClientKey | None:
        """Return the key whose secret this is, None if none; the same time whichever."""
        if not presented or len(presented) > MAX_KEY_CHARS:
            return None
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found = None
        for candidate, key in self._keys:
            if hmac.compare_digest(digest, candidate):
                found = key
        return found


def presented_key(headers) -> str:
    """The key of `Authorization: Bearer …` or `X-API-Key`; '' when absent or when the two disagree."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else ""
    header = headers.get("X-API-Key", "").strip()
    if bearer and header and bearer != header:
        return ""
    return bearer or header
