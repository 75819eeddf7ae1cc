"""The pipeline's results written in the Hub's shapes, and in OpenAI's completion shape."""

import binascii

from flask import current_app

from service.api.answer import json_answer, limit_headers
from service.catalog.tasks import TRANSLATION, Task
from service.pipeline.context import RequestContext
from service.pipeline.inference import InferenceResult

# Why a completion stopped is not something the gateway learns from every provider.


def hub_answer(task: Task, outcome: InferenceResult, context: RequestContext):
    """translation `[{"translation_text"}]`, text generation `[{"generated_text"}]` (one per
    result), text-to-image the first image's own bytes under the type they prove."""
    if task.makes_images:
        response = image_answer(outcome.results[0])
    else:
        field = "translation_text" if task.name == TRANSLATION.name else "generated_text"
        response = json_answer([{field: text} for text in outcome.results])
    response.headers["X-Cache"] = context.cache.outcome
    return response


def image_answer(image):
    """The image as raw bytes, as the Hub answers it: `InferenceClient.text_to_image` opens them
    with PIL, huggingface.js makes a Blob of them with their Content-Type."""
    data = binascii.a2b_base64(b"".join(image.base64_pieces))
    response = current_app.response_class(data, mimetype=image.content_type)
    response.headers.update(limit_headers())
    return response


def forwarded_answer(outcome: InferenceResult, context: RequestContext):
    """A forwarded task's answer as it came back: its bytes under its own Content-Type."""
    answer = outcome.results[0]
    response = current_app.response_class(answer.data, content_type=answer.content_type)
    response.headers.update(limit_headers())
    response.headers["X-Cache"] = context.cache.outcome
    return response
