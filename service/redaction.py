"""Keep secrets (the Hub token, client API keys) out of every text the service emits."""

REDACTED = "[REDACTED]"


def redact(text: str, secrets) -> str:
    """Replace every secret in `text`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def secrets_of(settings) -> tuple:
    """Return the secrets a settings object holds."""
    return tuple(secret for secret in (settings.hf_api_token, *settings.api_keys) if secret)
