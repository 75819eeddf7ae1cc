"""GET /api/models: the configured tasks, pairs and targets with their live status and breakers."""

from flask import Blueprint

from service.api.gateway import gateway as gateway_objects

bp = Blueprint("models", __name__)


@bp.get("/api/models")
def list_models():
    """List every route's targets in fallback order, with what the Hub says about them."""
    gateway = gateway_objects()
    routes = gateway.liveness.report()
    for (_, targets), route in zip(gateway.catalog.all_routes(), routes, strict=True):
        for target, entry in zip(targets, route["targets"], strict=True):
            entry["breaker"] = gateway.breakers.describe(target)
    return {"routes": routes, "default_pair": gateway.catalog.default_pair}
