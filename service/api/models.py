"""GET /api/models: the configured tasks, pairs and targets with their live status."""

from flask import Blueprint, current_app

bp = Blueprint("models", __name__)


@bp.get("/api/models")
def list_models():
    """List every route's targets in fallback order, with what the Hub says about them."""
    gateway = current_app.extensions["gateway"]
    return {"routes": gateway.liveness.report(), "default_pair": gateway.catalog.default_pair}
