"""The OpenAI routes in the service's OpenAPI document: their bodies, answers and errors."""

from copy import deepcopy

from service.catalog import MODEL_NAME_PATTERN

# A model name, or on chat a key or Hub id with a provider or policy after `:`.
CHAT_MODEL_PATTERN = MODEL_NAME_PATTERN.removesuffix("$") + "(:[a-z0-9][a-z0-9-]{0,63})?$"

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {
                    "type": "string",
                    "description": "OpenAI's family: invalid_request_error, rate_limit_error...",
                },
                "param": {"type": "string", "nullable": True, "description": "The field at fault, if one is."},
                "code": {"type": "string", "description": "The gateway's error_type."},
            },
        }
    },
}
# The shape of the surface registered for /models/ (the Hub's `{"error", "error_type"}`).
_HUB_ERROR = {"type": "object", "description": "The Hub's error shape, as the router answers on this route."}
_USAGE = {
    "type": "object",
    "properties": {name: {"type": "integer"} for name in ("prompt_tokens", "completion_tokens", "total_tokens")},
}
_MODEL = {"type": "string", "description": "A catalog key, an alias, a Hub id, or the task's name for its chain."}
_ERRORS = {
    "400": "Invalid body or model (OpenAI's invalid_request_error).",
    "401": "No valid key.",
    "404": "The model does not exist upstream.",
    "422": "The model refused the input.",
    "429": "The key's limits, with Retry-After.",
    "502": "The upstream failed, or the model is unavailable (with Retry-After).",
    "504": "The deadline passed.",
}

_CHAT_BODY = {
    "type": "object",
    "required": ["messages"],
    "properties": {
        "model": {
            **_MODEL,
            "description": _MODEL["description"]
            + " `:<provider>` or `:fastest`/`:cheapest`/`:preferred` may follow a Hub id.",
        },
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role"],
                "properties": {
                    "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
                    "content": {
                        "nullable": True,
                        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}],
                    },
                },
            },
        },
        "max_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
        "seed": {"type": "integer", "minimum": 0},
        "n": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
        "stream": {"type": "boolean", "enum": [False], "description": "Not streamed yet."},
    },
}
_CHAT_ANSWER = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices", "usage"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["chat.completion"]},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "message": {
                        "type": "object",
                        "properties": {"role": {"type": "string"}, "content": {"type": "string", "nullable": True}},
                    },
                    "finish_reason": {"type": "string"},
                },
            },
        },
        "usage": _USAGE,
    },
}
_COMPLETION_BODY = {
    "type": "object",
    "required": ["prompt"],
    "properties": {
        "model": _MODEL,
        "prompt": {"type": "string", "minLength": 1},
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": 2048},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1, "exclusiveMinimum": True},
        "seed": {"type": "integer", "minimum": 0},
        "n": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
        "echo": {"type": "boolean", "default": False},
    },
}
_COMPLETION_ANSWER = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices", "usage"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["text_completion"]},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {
            "type": "array",
            "items": {"type": "object", "properties": {"index": {"type": "integer"}, "text": {"type": "string"}}},
        },
        "usage": _USAGE,
    },
}
_IMAGE_BODY = {
    "type": "object",
    "required": ["prompt"],
    "properties": {
        "model": _MODEL,
        "prompt": {"type": "string", "minLength": 1},
        "n": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
        "size": {"type": "string", "pattern": r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$", "example": "512x512"},
        "response_format": {"type": "string", "enum": ["b64_json"], "default": "b64_json"},
    },
}
_IMAGE_ANSWER = {
    "type": "object",
    "required": ["created", "data"],
    "properties": {
        "created": {"type": "integer"},
        "data": {
            "type": "array",
            "items": {"type": "object", "properties": {"b64_json": {"type": "string", "format": "byte"}}},
        },
    },
}
_EMBEDDING_BODY = {
    "type": "object",
    "required": ["input"],
    "properties": {
        "model": _MODEL,
        "input": {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": 2048},
            ]
        },
        "encoding_format": {
            "type": "string",
            "enum": ["float", "base64"],
            "description": "Floats are always answered.",
        },
    },
}
_EMBEDDING_ANSWER = {
    "type": "object",
    "required": ["object", "data", "model", "usage"],
    "properties": {
        "object": {"type": "string", "enum": ["list"]},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "object": {"type": "string", "enum": ["embedding"]},
                    "index": {"type": "integer"},
                    "embedding": {"type": "array", "items": {"type": "number"}},
                },
            },
        },
        "model": {"type": "string"},
        "usage": _USAGE,
    },
}
_MODEL_ENTRY = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["model"]},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
    },
}
_MODEL_LIST = {
    "type": "object",
    "properties": {"object": {"type": "string", "enum": ["list"]}, "data": {"type": "array", "items": _MODEL_ENTRY}},
}


def add_openai_paths(document: dict, catalog, key_required: bool) -> None:
    """Add the OpenAI routes to an OpenAPI document, asking for a key where the service does;
    `model` is required where the catalog configures no chain to fall back on."""
    paths = document["paths"]
    chat_body = _with_model(_CHAT_BODY, CHAT_MODEL_PATTERN, required=not catalog.chat_targets)
    embedding_body = _with_model(_EMBEDDING_BODY, MODEL_NAME_PATTERN, required=not catalog.embedding_targets)
    completion_body = _with_model(_COMPLETION_BODY, MODEL_NAME_PATTERN, required=False)
    image_body = _with_model(_IMAGE_BODY, MODEL_NAME_PATTERN, required=False)
    paths["/v1/chat/completions"] = {
        "post": _post("openai_chat_completions", "A chat completion.", chat_body, _CHAT_ANSWER)
    }
    paths["/models/{model}/v1/chat/completions"] = {"post": _per_model_chat()}
    paths["/v1/completions"] = {
        "post": _post("openai_completions", "A text completion.", completion_body, _COMPLETION_ANSWER)
    }
    paths["/v1/images/generations"] = {"post": _post("openai_images", "Images as base64.", image_body, _IMAGE_ANSWER)}
    paths["/v1/embeddings"] = {
        "post": _post("openai_embeddings", "One vector per text.", embedding_body, _EMBEDDING_ANSWER)
    }
    paths["/v1/models"] = {"get": _get("openai_models", "The names `model` may take.", _MODEL_LIST)}
    paths["/v1/models/{model}"] = {
        "get": {
            **_get("openai_model", "One of them, or 404.", _MODEL_ENTRY),
            "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
        }
    }
    if key_required:
        for path, operations in paths.items():
            if path.startswith(("/v1/", "/models/")):
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}, {"apiKey": []}]


def _with_model(body: dict, pattern: str, required: bool) -> dict:
    """A body schema whose `model` follows the catalog's rule for names, required or not."""
    body = deepcopy(body)
    body["properties"]["model"] = {**body["properties"]["model"], "type": "string", "pattern": pattern}
    if required:
        body["required"] = [*body["required"], "model"]
    return body


def _per_model_chat() -> dict:
    """The router's per-model chat route: the model in the path, errors in the Hub's shape."""
    operation = _post(
        "per_model_chat_completions",
        "A chat completion of the model in the path (the body's `model` is ignored).",
        _CHAT_BODY,
        _CHAT_ANSWER,
    )
    operation["parameters"] = [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}]
    for status, response in operation["responses"].items():
        if status != "200":
            response["content"]["application/json"]["schema"] = _HUB_ERROR
    return operation


def _post(operation_id: str, summary: str, body: dict, answer: dict) -> dict:
    return {
        "operationId": operation_id,
        "tags": ["openai"],
        "summary": summary,
        "requestBody": {"required": True, "content": {"application/json": {"schema": deepcopy(body)}}},
        "responses": {"200": _answer(answer), **_errors()},
    }


def _get(operation_id: str, summary: str, answer: dict) -> dict:
    return {
        "operationId": operation_id,
        "tags": ["openai"],
        "summary": summary,
        "responses": {"200": _answer(answer), "401": _error("No valid key."), "404": _error("Not found.")},
    }


def _answer(schema: dict) -> dict:
    return {
        "description": "The answer, in OpenAI's shape.",
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
        "content": {"application/json": {"schema": deepcopy(schema)}},
    }


def _errors() -> dict:
    return {status: _error(why) for status, why in _ERRORS.items()}


def _error(why: str) -> dict:
    return {
        "description": why,
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
        "content": {"application/json": {"schema": deepcopy(_ERROR)}},
    }
