"""HTTP surfaces, the only code that speaks Flask: the task endpoints, health, metrics, the docs and
the page, and the unknown-task catch-all."""

from flask import Blueprint, request
from werkzeug.exceptions import MethodNotAllowed

from service.api import docs, health, infer, models, openai_api, page, readiness, scrape, usage
from service.api.error_handlers import handle_gateway_error, handle_http_exception
from service.api.hub_api import bp as hub_api
from service.catalog.tasks import TASK_TYPES
from service.errors import UnknownTask

unknown_task = Blueprint("unknown_task", __name__)
_INFER_PREFIX = "/api/infer/"


@unknown_task.route(f"{_INFER_PREFIX}<path:task_type>", methods=["POST"])
def infer_unknown_task(task_type):
    """Answer 404 for a task the service does not serve, naming the valid ones."""
    raise UnknownTask(task_type, TASK_TYPES)


@unknown_task.app_errorhandler(MethodNotAllowed)
def unknown_task_whatever_the_method(exc: MethodNotAllowed):
    """GET /api/infer/nope is an unknown task too; a served task asked with GET stays a 405."""
    task_type = request.path.removeprefix(_INFER_PREFIX)
    if request.path.startswith(_INFER_PREFIX) and task_type.rstrip("/") not in TASK_TYPES:
        return handle_gateway_error(UnknownTask(task_type, TASK_TYPES))
    return handle_http_exception(exc)


def register_blueprints(app) -> None:
    """Attach every endpoint to the app."""
    for module in (
        infer,
        health,
        readiness,
        models,
        usage,
        scrape,
        docs,
        page,
        openai_api,
    ):
        app.register_blueprint(module.bp)
    app.register_blueprint(hub_api)
    app.register_blueprint(unknown_task)
