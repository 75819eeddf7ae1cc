"""The Hub's API in the OpenAPI document: its three routes, its body, its answers and its errors."""

from service.api.hub_api.parameters import COMPLETION_BODY_NAMES, NAMES
from service.api.hub_api.routes import DEFAULT_MODEL, HUB_TASKS
from service.api.openapi_errors import LIMIT_HEADERS
from service.catalog.tasks import FORWARDED_HUB_TASKS

TAG = "hub"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
# The statuses these routes answer, and why; none is a 503 (see hub_api/error_shape.py).
ERRORS = {
    400: "`invalid_request`: a bad body, input, parameter or model; a parameter the gateway cannot pass "
    "says ``The following `model_kwargs` are not used by the model: [...]``.",
    401: "`unauthorized`: client keys are configured and the call has no valid key.",
    404: "`model_not_found` (the model is not on the Hub, or names no task there), `unknown_task`, `not_found`.",
    405: "`method_not_allowed`: another method than POST.",
    408: "`request_timeout`: the body did not arrive in time.",
    413: "`payload_too_large`: body over the limit.",
    415: "`unsupported_media_type`: a body type that cannot be JSON.",
    422: "`model_rejected_input`: the upstream rejected the input or parameters.",
    429: "`model_unavailable` (loading or overloaded at the deadline, its circuit breaker open, or its task "
    "not known in time: Retry-After says when to come back), `rate_limited`, `quota_exceeded`.",
    500: "`internal_error`: anything unexpected.",
    502: "`upstream_auth`, `upstream_error`, or the service not ready (`not_ready`, `store_unavailable`).",
    504: "`upstream_timeout`: the deadline passed while waiting for the upstream.",
}
RETRY_AFTER = (429,)
FORWARDED = (
    " The Hub's other tasks are forwarded to the hosted route as they came (a JSON body, or a file's "
    "bytes with their Content-Type) and answered as they came back."
)
ANY_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}


def add_hub_api(spec, catalog, keys_required: bool) -> None:
    """Add POST /models/{model}, /models/{model}/v1/completions and /pipeline/{task}/{model}."""
    spec.components.schema("HubError", component=_error_schema())
    spec.components.schema("HubRequest", component=_request_schema())
    spec.components.schema("HubForwardedRequest", component=_forwarded_request_schema())
    spec.components.schema("HubAnswer", component=_answer_schema())
    spec.components.schema("HubCompletionRequest", component=_completion_request_schema())
    spec.components.schema("HubCompletion", component=_completion_schema())
    security = [{"bearer": []}, {"apiKey": []}] if keys_required else None
    model = _model_parameter(
        "A Hub id (`org/name`), a configured key or alias, or a configured translation pair (`zh2en`)."
    )
    operations = {
        "/models/{model}": _operation(
            "hub_model",
            "Run a model on its own task, as the serverless Inference API does.",
            "The task is the catalog's where its chains place the model in one task, else the model's "
            "`pipeline_tag` on the Hub (translation, text-generation, text2text-generation, text-to-image)."
            + FORWARDED,
            [model],
            "HubRequest",
            _answers(),
            forwarded=True,
        ),
        "/pipeline/{task}/{model}": _operation(
            "hub_pipeline",
            "Run a task, naming it: a model, or the task's configured chain with its fallback.",
            f"`{DEFAULT_MODEL}` names the task's chain; for translation a configured pair names its chain." + FORWARDED,
            [
                {
                    "name": "task",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": [*HUB_TASKS, *FORWARDED_HUB_TASKS]},
                },
                _model_parameter(
                    f"A Hub id, a configured key or alias, `{DEFAULT_MODEL}`, or for translation a pair: "
                    + ", ".join(sorted(catalog.pairs))
                    + "."
                ),
            ],
            "HubRequest",
            _answers(),
            forwarded=True,
        ),
        "/models/{model}/v1/completions": _operation(
            "hub_model_completions",
            "OpenAI's completion of one model, as huggingface.js's textGeneration posts it.",
            "The body's `model` is ignored: the path names the model.",
            [model],
            "HubCompletionRequest",
            {"application/json": {"schema": {"$ref": "#/components/schemas/HubCompletion"}}},
        ),
    }
    for path, operation in operations.items():
        if security:
            operation["security"] = security
        spec.path(path=path, operations={"post": operation})


def _operation(operation_id, summary, description, parameters, request_schema, answers, forwarded=False) -> dict:
    """One operation; a `forwarded` one also takes the forwarded tasks' bodies and answers."""
    body = {"schema": {"$ref": f"#/components/schemas/{request_schema}"}}
    if forwarded:
        schemas = [body["schema"], {"$ref": "#/components/schemas/HubForwardedRequest"}]
        body, answers = {"schema": {"anyOf": schemas}}, {**answers, **ANY_BYTES}
    return {
        "operationId": operation_id,
        "tags": [TAG],
        "summary": summary,
        "description": description,
        "parameters": parameters,
        "requestBody": {
            "required": True,
            "content": {"application/json": body, **(ANY_BYTES if forwarded else {})},
        },
        "responses": {
            "200": {
                "description": "The answer, in the Hub's shape.",
                "headers": {"X-Request-ID": "RequestId", **LIMIT_HEADERS},
                "content": answers,
            },
            **{str(status): _error(status, why) for status, why in ERRORS.items()},
        },
    }


def _model_parameter(description: str) -> dict:
    return {
        "name": "model",
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "example": "Helsinki-NLP/opus-mt-zh-en"},
    }


def _answers() -> dict:
    """A JSON list for the text tasks; the image's own bytes for text-to-image."""
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/HubAnswer"}}}
    content.update({kind: {"schema": {"type": "string", "format": "binary"}} for kind in IMAGE_TYPES})
    return content


def _error(status: int, why: str) -> dict:
    headers = {"X-Request-ID": "RequestId"}
    if status in RETRY_AFTER:
        headers["Retry-After"] = "RetryAfter"
        headers.update(LIMIT_HEADERS)
    if status == 405:
        headers["Allow"] = "Allow"
    return {
        "description": why,
        "headers": headers,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HubError"}}},
    }


def _error_schema() -> dict:
    return {
        "type": "object",
        "required": ["error", "error_type"],
        "properties": {
            "error": {"type": "string", "description": "What went wrong, for a human."},
            "error_type": {"type": "string", "description": "The gateway's name for it."},
        },
    }


def _request_schema() -> dict:
    names = sorted({name for names in NAMES.values() for name in names} | {"src_lang", "tgt_lang"})
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "inputs": {"type": "string", "minLength": 1, "pattern": r"\S", "description": "The text, or the prompt."},
            "parameters": {
                "type": "object",
                "description": "The clients' names: " + ", ".join(names) + "; `generate_parameters` nests the "
                "generation ones for translation and text2text-generation. Any other is a 400.",
            },
            "options": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "use_cache": {"type": "boolean", "description": "false: the answer cache is not read."},
                    "wait_for_model": {"type": "boolean", "description": "Always so, within the deadline."},
                },
            },
            "stream": {"type": "boolean", "enum": [False], "description": "Answers are not streamed."},
        },
        "additionalProperties": False,
    }


def _forwarded_request_schema() -> dict:
    return {
        "type": "object",
        "required": ["inputs"],
        "description": "A forwarded task's body, sent upstream byte for byte: `inputs` as that task takes it.",
        "properties": {"inputs": {}, "parameters": {"type": "object"}, "options": {"type": "object"}},
    }


def _answer_schema() -> dict:
    return {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "description": "`translation_text` for translation, `generated_text` for text generation.",
            "properties": {"translation_text": {"type": "string"}, "generated_text": {"type": "string"}},
        },
    }


def _completion_request_schema() -> dict:
    return {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string", "minLength": 1, "pattern": r"\S"},
            "model": {"description": "Ignored: the path names the model."},
            "stream": {"type": "boolean", "enum": [False]},
        },
        "description": "Also: " + ", ".join(sorted(COMPLETION_BODY_NAMES)) + ". Any other is a 400.",
    }


def _completion_schema() -> dict:
    choice = {
        "type": "object",
        "required": ["index", "text", "finish_reason"],
        "properties": {
            "index": {"type": "integer"},
            "text": {"type": "string"},
            "logprobs": {"nullable": True},
            "finish_reason": {"type": "string"},
        },
    }
    usage = {
        "type": "object",
        "properties": {name: {"type": "integer"} for name in ("prompt_tokens", "completion_tokens", "total_tokens")},
    }
    return {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["text_completion"]},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {"type": "array", "items": choice},
            "usage": usage,
        },
    }
