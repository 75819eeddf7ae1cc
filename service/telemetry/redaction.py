"""Keep secrets (the Hub token, client API keys) out of every text the service emits.

A secret can reach a text whole, cut (an upstream message clipped mid-token) or without its
`hf_` prefix, so any run of FRAGMENT_CHARS or more characters of a secret is redacted, not
only the whole secret. Texts are redacted before anything cuts them.
"""

import re
from urllib.parse import urlsplit

REDACTED = "[REDACTED]"
# Long enough that ordinary words never match a random token; short enough that a clipped
# token leaves too little to be of use.
FRAGMENT_CHARS = 8


class Redactor:
    """Finds and replaces every long fragment of a set of secrets."""

    def __init__(self, secrets=()):
        self._secrets = tuple(sorted({secret for secret in secrets if secret}, key=len, reverse=True))
        self._fragments = {
            secret[start : start + FRAGMENT_CHARS]
            for secret in self._secrets
            if len(secret) >= FRAGMENT_CHARS
            for start in range(len(secret) - FRAGMENT_CHARS + 1)
        }
        # Only runs of characters that secrets are made of can hold a fragment: a pattern finds
        # those runs (in C), and only their windows are looked up.
        alphabet = "".join(sorted({character for secret in self._secrets for character in secret}))
        self._runs = re.compile(f"[{re.escape(alphabet)}]{{{FRAGMENT_CHARS},}}") if self._fragments else None

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __call__(self, text: str) -> str:
        """Return `text` with every secret, and every long fragment of one, replaced."""
        if not self._secrets or not text:
            return text
        for secret in self._secrets:  # whole secrets first, short ones included
            text = text.replace(secret, REDACTED)
        return self._without_fragments(text) if self._runs else text

    def _fragment_spans(self, text: str, start: int, stop: int) -> list:
        """Return the (start, end) of each stretch of secret fragments within text[start:stop]."""
        spans, window = [], FRAGMENT_CHARS
        while start + window <= stop:
            if text[start : start + window] not in self._fragments:
                start += 1
                continue
            end = start + window
            while end < stop and text[end - window + 1 : end + 1] in self._fragments:
                end += 1
            spans.append((start, end))
            start = end
        return spans

    def clip(self, text: str, limit: int) -> str:
        """Redact, then keep at most `limit` characters (an ellipsis marks the cut).

        Only the window that can reach the kept part is scanned: a secret starting before
        `limit` ends within the longest secret's length after it.
        """
        longest = len(self._secrets[0]) if self._secrets else 0
        text = self(text[: limit + longest + 1])
        if len(text) > limit:
            return text[: limit - 1] + "…"
        return text

    def _without_fragments(self, text: str) -> str:
        """Replace each stretch of text made of overlapping secret fragments."""
        spans = []
        for run in self._runs.finditer(text):
            spans.extend(self._fragment_spans(text, run.start(), run.end()))
        if not spans:
            return text
        pieces, previous = [], 0
        for start, end in spans:
            pieces += [text[previous:start], REDACTED]
            previous = end
        pieces.append(text[previous:])
        return "".join(pieces)


def secrets_of(settings, catalog=None) -> tuple:
    """Return the secrets the service holds: the Hub token, client keys, models' own tokens, the Redis password."""
    model_tokens = [settings.token(name) for name in catalog.token_variables()] if catalog is not None else []
    store_password = urlsplit(settings.redis_url).password if settings.redis_url else None
    secrets = (settings.hf_api_token, *settings.api_keys, *model_tokens, store_password)
    return tuple(secret for secret in secrets if secret)
