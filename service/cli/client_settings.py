"""Where the command line finds the service, and with which key: an option, else the environment."""

import os

DEFAULT_URL = "http://127.0.0.1:8098"


def service_url(option: str | None) -> str:
    """--url, else HF_GATEWAY_URL, else the local service."""
    return (option or os.environ.get("HF_GATEWAY_URL") or DEFAULT_URL).rstrip("/")


def api_key(option: str | None) -> str | None:
    """--api-key, else HF_GATEWAY_API_KEY, else none."""
    return option or os.environ.get("HF_GATEWAY_API_KEY") or None
