"""What every OpenAI route shares: reading the body, naming the model, running the pipeline,
and writing the answer with the usage the upstream reported."""

import time

import marshmallow as ma
from flask import request

from service.api.answer import json_answer
from service.api.body import json_body
from service.api.gateway import gateway
from service.api.lifecycle import current_context
from service.api.schemas import load_or_raise
from service.catalog.tasks import CHAT_COMPLETION, Task
from service.errors import InvalidRequest
from service.pipeline.context import CacheDirectives, RequestContext
from service.pipeline.entry import Ask
from service.pipeline.inference import InferenceResult


def begin(task: Task) -> RequestContext:
    """This request's context, counted under `task` from the start (an invalid request too)."""
    context = current_context()
    context.task = task
    context.cache_directives = CacheDirectives.from_header(request.headers.get("Cache-Control"))
    return context


def read_body(schema: ma.Schema, streams: bool = False) -> dict:
    """The JSON body, validated: a 400 names the first field at fault. `stream: true` is
    taken where the route `streams`, refused elsewhere."""
    body = load_or_raise(schema, json_body())
    if body.get("stream") and not streams:
        raise InvalidRequest(
            "stream: answers of this route are not streamed; leave stream out or false",
            errors={"stream": ["Streaming is not supported here."]},
        )
    if body.get("stream_options") is not None and not body.get("stream"):
        raise InvalidRequest(
            "stream_options: taken only with stream: true",
            errors={"stream_options": ["Only with stream: true."]},
        )
    return body


def model_name_for(task: Task, model) -> str | None:
    """The model an Ask names: None for the task's own chain (`model` left out, or the task's
    name), else a catalog key, an alias or a Hub id; `:<provider>` or `:<policy>` on chat only."""
    if model is None or model == "" or model == task.name:
        return None
    if not isinstance(model, str):
        raise InvalidRequest("model: must be a string", errors={"model": ["Not a valid string."]})
    if model.startswith(("http://", "https://")):
        raise InvalidRequest(
            "model: a URL names no model here; name a catalog key, an alias, a Hub id or a task's chain "
            "(GET /v1/models lists them), or post to /models/<model>/v1/chat/completions",
            errors={"model": ["Not a model name."]},
        )
    if ":" in model and task is not CHAT_COMPLETION:
        raise InvalidRequest(
            "model: a provider or policy after `:` is taken by /v1/chat/completions only (the router's chat route)",
            errors={"model": ["No provider may be named here."]},
        )
    return model


def check_length(chars: int, field: str) -> None:
    """Refuse inputs over MAX_INPUT_CHARS, as the native surface does."""
    limit = gateway().settings.max_input_chars
    if chars > limit:
        raise InvalidRequest(
            f"{field}: the text sent is {chars} characters, over the {limit} the service accepts",
            errors={field: [f"Must be at most {limit} characters."]},
        )


def run(ask: Ask, context: RequestContext) -> InferenceResult:
    """Run the ask through the pipeline, with every control it applies."""
    return gateway().pipeline.infer(ask, context)


def usage_of(context: RequestContext) -> dict:
    """The tokens the upstream said this request used (none for an answer from the cache)."""
    prompt, completion = context.usage.prompt_tokens, context.usage.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def created() -> int:
    """`created`: the answer's time, in whole Unix seconds."""
    return int(time.time())


def openai_document(kind: str, id_prefix: str, outcome, context: RequestContext, choices: list) -> dict:
    """An OpenAI answer of `kind` (`chat.completion`, `text_completion`): its id, time, model,
    choices and the tokens used."""
    return {
        "id": f"{id_prefix}-{context.request_id}",
        "object": kind,
        "created": created(),
        "model": outcome.model,
        "choices": choices,
        "usage": usage_of(context),
    }


def completion_answer(outcome, context: RequestContext):
    """OpenAI's `text_completion`, one choice per result (`finish_reason` is always `stop`: not
    every provider says why a model stopped)."""
    choices = [
        {"index": index, "text": text, "logprobs": None, "finish_reason": "stop"}
        for index, text in enumerate(outcome.results)
    ]
    return answered(openai_document("text_completion", "cmpl", outcome, context, choices), context)


def answered(document: dict, context: RequestContext, spliced: bool = False):
    """The answer as JSON, with the key's limit headers and X-Cache."""
    answer = json_answer(document, spliced=spliced)
    answer.headers["X-Cache"] = context.cache.outcome
    return answer
