"""Optional client authentication: API keys for every /api/ call when configured."""

import hmac

from flask import current_app, request

from service.errors import Unauthorized


def presented_key() -> str:
    """Return the key from `Authorization: Bearer …` or `X-API-Key`, or ''."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("X-API-Key", "").strip()


def require_api_key() -> None:
    """Refuse /api/ calls without a configured key; health checks stay open."""
    keys = current_app.extensions["gateway"].settings.api_keys
    if not keys or not request.path.startswith("/api/"):
        return
    offered = presented_key().encode()
    # Compare against every key so timing says nothing about which one nearly matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(offered, key.encode())
    if not matched:
        raise Unauthorized("a valid API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`")
