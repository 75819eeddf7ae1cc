"""Liveness: answers without touching the upstream."""

from flask import Blueprint

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Say the worker is alive."""
    return {"status": "ok"}
