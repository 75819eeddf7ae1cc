"""The one flow every task endpoint follows: validate, route, run, answer."""

from flask import current_app, g, request

from service.api.answer import SplicedString, json_answer
from service.api.body import json_body
from service.hub.client import CallStats
from service.hub.protocols.images import Image
from service.schemas import ARGS_SCHEMAS, QuerySchema, load_or_raise

_QUERY_SCHEMA = QuerySchema()


def serve_inference(task_type: str):
    """Validate the request for `task_type`, run it upstream, and shape the answer."""
    g.task_type = task_type
    query = load_or_raise(_QUERY_SCHEMA, request.args)
    body = load_or_raise(current_app.extensions["gateway.body_schema"], json_body())
    args = load_or_raise(ARGS_SCHEMAS[task_type], body["args"], prefix="args")
    gateway = current_app.extensions["gateway"]
    route = gateway.catalog.route(task_type, query.get("model_name"), query.get("model_type"))
    gateway.runner.check_serves(route)
    g.model = route.targets[0].id
    g.call_stats = CallStats()
    outcome = gateway.runner.run(route, body["inputs"], args, g.call_stats, g.request_id)
    g.model = outcome.model
    return json_answer(
        {
            "code": 0,
            "message": "ok",
            "task_type": task_type,
            "model": outcome.model,
            "request_id": g.request_id,
            "result": [answer_item(result) for result in outcome.results],
        },
        spliced=task_type == "text-to-image",
    )


def answer_item(result):
    """Shape one result as the API answers it: text as it is, an image as base64 and its type."""
    if isinstance(result, Image):
        return {"image_base64": SplicedString(result.base64_pieces), "content_type": result.content_type}
    return result
