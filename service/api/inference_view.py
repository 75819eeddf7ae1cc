"""The one flow every task endpoint follows: validate, route, run, answer."""

from flask import current_app, request

from service.api.answer import SplicedString, json_answer
from service.api.body import json_body
from service.api.schemas import ARGS_SCHEMAS, QuerySchema, load_or_raise
from service.catalog.tasks import Task
from service.hub.deadline import Deadline
from service.hub.images import Image
from service.pipeline import context
from service.pipeline.context import CacheDirectives

_QUERY_SCHEMA = QuerySchema()


def serve_inference(task: Task):
    """Validate the request for `task`, run it upstream, and shape the answer."""
    gateway = current_app.extensions["gateway"]
    current = context.current()
    current.task = task
    query = load_or_raise(_QUERY_SCHEMA, request.args)
    body = load_or_raise(current_app.extensions["gateway.body_schema"], json_body())
    args = load_or_raise(ARGS_SCHEMAS[task.name], body["args"], prefix="args")
    route = gateway.catalog.route(task.name, query.get("model_name"), query.get("model_type"))
    gateway.runner.check_serves(route)
    current.model = route.targets[0].id
    current.input_chars = len(body["inputs"])
    deadline_seconds = gateway.settings.deadline_for(task.name)
    current.ticket = gateway.admission.admit(current.client_key, task, args["num_sentences"], deadline_seconds)
    current.deadline = Deadline(deadline_seconds)
    current.cache_directives = CacheDirectives.from_header(request.headers.get("Cache-Control"))
    outcome = gateway.runner.run(route, body["inputs"], args, current)
    current.model = outcome.model
    current.results = len(outcome.results)
    answer = json_answer(
        {
            "code": 0,
            "message": "ok",
            "task_type": task.name,
            "model": outcome.model,
            "request_id": current.request_id,
            "result": [answer_item(result) for result in outcome.results],
        },
        spliced=task.makes_images,
    )
    answer.headers["X-Cache"] = current.cache.outcome
    return answer


def answer_item(result):
    """Shape one result as the API answers it: text as it is, an image as base64 and its type."""
    if isinstance(result, Image):
        return {"image_base64": SplicedString(result.base64_pieces), "content_type": result.content_type}
    return result
