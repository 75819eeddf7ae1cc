"""POST /api/infer/<task>: one endpoint per task of the registry (catalog/tasks.py), each a thin
translation of the documented request into the pipeline's `Ask` and of its result into the
documented answer."""

from flask import Blueprint, request

from service.api.answer import SplicedString, json_answer
from service.api.body import json_body
from service.api.gateway import gateway
from service.api.lifecycle import current_context
from service.api.schemas import ARGS_SCHEMAS, QuerySchema, load_or_raise
from service.catalog.tasks import TASKS, Task
from service.hub.images import Image
from service.pipeline.context import CacheDirectives
from service.pipeline.entry import Ask

bp = Blueprint("infer", __name__)
_QUERY_SCHEMA = QuerySchema()


def serve_task(task_name: str):
    """Validate the request for the task, run it through the pipeline, and shape the answer."""
    task = TASKS[task_name]
    context = current_context()
    context.task = task  # an invalid request is still counted under its task
    query = load_or_raise(_QUERY_SCHEMA, request.args)
    body = load_or_raise(gateway().body_schema, json_body())
    args = load_or_raise(ARGS_SCHEMAS[task.name], body["args"], prefix="args")
    context.cache_directives = CacheDirectives.from_header(request.headers.get("Cache-Control"))
    ask = Ask(task, body["inputs"], args, query.get("model_name"), query.get("model_type"))
    outcome = gateway().pipeline.infer(ask, context)
    answer = json_answer(documented_answer(task, outcome, context.request_id), spliced=task.makes_images)
    answer.headers["X-Cache"] = context.cache.outcome
    return answer


def documented_answer(task: Task, outcome, request_id: str) -> dict:
    """The answer's body, as the API documents it."""
    return {
        "code": 0,
        "message": "ok",
        "task_type": task.name,
        "model": outcome.model,
        "request_id": request_id,
        "result": [answer_item(result) for result in outcome.results],
    }


def answer_item(result):
    """Shape one result as the API answers it: text as it is, an image as base64 and its type."""
    if isinstance(result, Image):
        return {"image_base64": SplicedString(result.base64_pieces), "content_type": result.content_type}
    return result


for _task in TASKS.values():
    bp.add_url_rule(
        _task.path,
        endpoint=_task.name,
        view_func=serve_task,
        methods=["POST"],
        strict_slashes=False,
        defaults={"task_name": _task.name},
    )
