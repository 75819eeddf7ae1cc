"""GET /metrics in Prometheus format, and the request hooks that feed it."""

from functools import lru_cache

from flask import Blueprint, Response, current_app, g, request

from service import context, metrics

bp = Blueprint("metrics", __name__)

INFERENCE_PREFIX = "/api/"
# A caller's model_name may be any Hub id: one series per id would grow without bound.
OTHER_MODEL = "other"


@bp.get("/metrics")
def scrape():
    """Expose every worker's metrics."""
    body, content_type = metrics.render(request.headers.get("Accept"))
    return Response(body, content_type=content_type)


@bp.before_app_request
def count_in_flight():
    """Count an inference request as in flight until its teardown."""
    if request.path.startswith(INFERENCE_PREFIX):
        metrics.request_started()
        g.counted_in_flight = True


@bp.after_app_request
def record_request(response):
    """Count the answered inference request by task, model and status, and time it."""
    current = context.current()
    if request.path.startswith(INFERENCE_PREFIX) and current is not None:
        model = model_label(current.model, current_app.extensions["gateway"].catalog)
        task = current.task.name if current.task else None
        metrics.record_request(task, model, response.status_code, current.seconds)
    return response


@bp.teardown_app_request
def leave_in_flight(exc=None):
    """Stop counting the request as in flight, however it ended."""
    if g.pop("counted_in_flight", False):
        metrics.request_finished()


def model_label(model: str | None, catalog) -> str | None:
    """Name a configured model as itself, and any other model a caller asked for as 'other'."""
    if model is None or model in configured_model_ids(catalog):
        return model
    return OTHER_MODEL


@lru_cache(maxsize=8)
def configured_model_ids(catalog) -> frozenset:
    """Return the Hub ids of every model the configuration names."""
    chains = [*catalog.task_targets.values(), *catalog.pairs.values()]
    return frozenset(target.id for chain in chains for target in chain) | {m.id for m in catalog.models.values()}
