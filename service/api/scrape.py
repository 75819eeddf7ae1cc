"""GET /metrics in Prometheus format (api/lifecycle.py counts the requests)."""

from flask import Blueprint, Response, request

from service.api.gateway import gateway
from service.telemetry import metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape():
    """Expose every worker's metrics."""
    gateway().files_on_disk.problem()  # refreshes the configuration gauge
    body, content_type = metrics.render(request.headers.get("Accept"))
    return Response(body, content_type=content_type)
