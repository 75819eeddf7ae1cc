"""HTTP endpoints: one blueprint per task, plus health, metrics and the unknown-task catch-all."""

from flask import Blueprint

from service.api import completion, docs, health, metrics, models, readiness, text_to_image, text_to_text, translation
from service.catalog import TASK_TYPES
from service.errors import UnknownTask

unknown_task = Blueprint("unknown_task", __name__)


@unknown_task.route("/api/infer/<path:task_type>", methods=["POST"])
def infer_unknown_task(task_type):
    """Answer 404 for a task the service does not serve, naming the valid ones."""
    raise UnknownTask(task_type, TASK_TYPES)


def register_blueprints(app) -> None:
    """Attach every endpoint to the app."""
    for module in (translation, completion, text_to_text, text_to_image, health, readiness, models, metrics, docs):
        app.register_blueprint(module.bp)
    app.register_blueprint(unknown_task)
