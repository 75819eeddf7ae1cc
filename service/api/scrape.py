"""GET /metrics in Prometheus format, and the request hooks that feed it."""

from flask import Blueprint, Response, current_app, g, request

from service.catalog.tasks import TASKS
from service.pipeline import context
from service.telemetry import metrics

bp = Blueprint("metrics", __name__)

INFERENCE_PREFIX = "/api/"
UNKNOWN_TASK_BLUEPRINT = "unknown_task"
TASKS_BY_PATH = {task.path: name for name, task in TASKS.items()}


@bp.get("/metrics")
def scrape():
    """Expose every worker's metrics."""
    current_app.extensions["gateway"].files_on_disk.problem()  # refreshes the configuration gauge
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
        # A request its key's limits refused took no ticket and called no model, whatever it asked for.
        called = current.model if current.ticket is not None else None
        model = metrics.model_label(called, current_app.extensions["gateway"].catalog)
        metrics.record_request(task_label(current), model, response.status_code, current.seconds)
    return response


def task_label(current) -> str:
    """The task, else the endpoint's own path (/api/models, /api/usage), else `unknown`: an unknown
    task or path, whose name a caller chose and which must not become a label."""
    if current.task is not None:
        return current.task.name
    rule = request.url_rule
    if rule is None:  # no route matched: a served task asked with another method (405) is still that task
        return TASKS_BY_PATH.get(request.path.rstrip("/"), metrics.UNKNOWN)
    if rule.endpoint.startswith(UNKNOWN_TASK_BLUEPRINT + "."):
        return metrics.UNKNOWN
    return rule.rule


@bp.teardown_app_request
def leave_in_flight(exc=None):
    """Stop counting the request as in flight, however it ended."""
    if g.pop("counted_in_flight", False):
        metrics.request_finished()
