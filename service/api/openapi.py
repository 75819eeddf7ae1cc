"""The OpenAPI document, generated once per app from the schemas the service validates with."""

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from service.api.hub_api.document import add_hub_api
from service.api.openai_api.openai_document import add_openai_paths
from service.api.openapi_errors import HEADERS, INFERENCE_ERRORS, LIMIT_HEADERS, error_response
from service.api.responses import (
    ErrorSchema,
    ImageResultSchema,
    ModelsReportSchema,
    UsageReportSchema,
    success_schema,
)
from service.api.schemas import ARGS_SCHEMAS, InferRequestSchema, QuerySchema, UsageQuerySchema
from service.catalog import MODEL_NAME_PATTERN
from service.catalog.tasks import TASKS, Task

# Swagger UI 4, the version served at /docs, renders OpenAPI 3.0 (not 3.1).
OPENAPI_VERSION = "3.0.3"
API_VERSION = "1.0"


def build_openapi(settings, catalog, keyring) -> dict:
    """Return the OpenAPI document of the service as configured (limits, translation pairs, keys)."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="hf-gateway",
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={"description": "Hugging Face models behind one stable HTTP API."},
    )
    plugin.converter.add_attribute_function(_exclusive_bounds)
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema("ImageResult", schema=ImageResultSchema)
    _add_security_schemes(spec)
    for name, header in HEADERS.items():
        spec.components.header(name, header)
    for status, why in INFERENCE_ERRORS.items():
        spec.components.response(f"Error{status}", error_response(status, why))
    for task in TASKS.values():
        _add_task(spec, plugin, settings, catalog, task)
    _add_probes(spec)
    _add_operations(spec, plugin)
    add_hub_api(spec, catalog, keyring.required)
    document = spec.to_dict()
    add_openai_paths(document, catalog, keyring.required)
    if keyring.required:
        _ask_for_a_key(document)
    return document


def _exclusive_bounds(self, field, ret, **kwargs) -> dict:
    """Mark exclusive Range bounds (top_p > 0), which apispec leaves out, in OpenAPI 3.0's form."""
    bounds = {}
    for validator in field.validators:
        if getattr(validator, "min", None) is not None and getattr(validator, "min_inclusive", True) is False:
            bounds["exclusiveMinimum"] = True
        if getattr(validator, "max", None) is not None and getattr(validator, "max_inclusive", True) is False:
            bounds["exclusiveMaximum"] = True
    return bounds


def _add_security_schemes(spec) -> None:
    """Declare the two ways to present a client key."""
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})


def _ask_for_a_key(document: dict) -> None:
    """Mark every /api/ operation as needing a client key, as the service asks for one there."""
    for path, operations in document["paths"].items():
        if path.startswith("/api/"):
            for operation in operations.values():
                operation["security"] = [{"bearer": []}, {"apiKey": []}]


def _add_task(spec, plugin, settings, catalog, task: Task) -> None:
    """Add POST /api/infer/<task>: its query, body, answer and errors."""
    name = "".join(part.capitalize() for part in task.name.split("-"))
    spec.components.schema(f"{name}Args", schema=ARGS_SCHEMAS[task.name])
    spec.components.schema(f"{name}Request", component=_request_body(plugin, settings, task, f"{name}Args"))
    spec.components.schema(f"{name}Answer", schema=success_schema(task))
    operation = {
        "operationId": task.name.replace("-", "_"),
        "tags": ["inference"],
        "summary": task.summary,
        "description": task.summary,
        "parameters": _query_parameters(plugin, catalog, task),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}Request"}}},
        },
        "responses": {
            "200": {
                "description": "The results. A key with limits also gets them and what is left of them.",
                "headers": {"X-Request-ID": "RequestId", **LIMIT_HEADERS},
                "content": {"application/json": {"schema": f"{name}Answer"}},
            },
            **{str(status): f"Error{status}" for status in INFERENCE_ERRORS},
        },
    }
    spec.path(path=task.path, operations={"post": operation})


def _request_body(plugin, settings, task: Task, args_component: str) -> dict:
    """Return the body schema: `inputs`, and `args` as the task's object or a string holding one.

    `num_sentences` beside `inputs` (as the original service's documentation lists it) is
    accepted and said in the description, not as a property: a property would invite clients,
    and generators of test cases, to give two values that disagree.
    """
    body = plugin.converter.schema2jsonschema(InferRequestSchema(settings.max_input_chars))
    # The schema refuses blank inputs with a function, which apispec cannot see.
    body["properties"]["inputs"].update(minLength=1, pattern=r"\S")
    num_sentences = plugin.converter.field2property(ARGS_SCHEMAS[task.name].fields["num_sentences"])
    num_sentences.pop("default", None)
    body["properties"]["num_sentences"] = {
        **num_sentences,
        "deprecated": True,
        "description": "Accepted as the original service's documentation lists it; prefer args.num_sentences. "
        "Given in both places, the two must agree.",
    }
    args = body["properties"]["args"]
    body["properties"]["args"] = {
        "description": args.get("description", ""),
        "oneOf": [
            {"$ref": f"#/components/schemas/{args_component}"},
            {"type": "string", "description": "The same object as a JSON string.", "example": '{"num_sentences": 3}'},
        ],
    }
    return body


def _query_parameters(plugin, catalog, task: Task) -> list:
    """Return model_name, and model_type (with the configured pairs) for translation."""
    fields = ("model_name", "model_type") if task.language_pair else ("model_name",)
    parameters = plugin.converter.schema2parameters(QuerySchema(only=fields), location="query")
    for parameter in parameters:
        if parameter["name"] == "model_name":  # the catalog's rule, stricter than the schema's length
            parameter["schema"]["pattern"] = MODEL_NAME_PATTERN
        if parameter["name"] == "model_type":
            parameter["schema"]["enum"] = sorted(catalog.pairs)
            parameter["schema"]["default"] = catalog.default_pair
    return parameters


def _add_probes(spec) -> None:
    """Add GET /healthz and GET /readyz."""
    spec.path(
        path="/healthz",
        operations={
            "get": {
                "operationId": "healthz",
                "tags": ["probes"],
                "summary": "Say the worker is alive; never calls the upstream.",
                "responses": {"200": _probe_answer("Alive.", {"status": {"type": "string", "enum": ["ok"]}})},
            }
        },
    )
    spec.path(
        path="/readyz",
        operations={
            "get": {
                "operationId": "readyz",
                "tags": ["probes"],
                "summary": "Say whether the service can serve: configuration loaded, token set when needed.",
                "description": "Never calls the upstream.",
                "responses": {
                    "200": _probe_answer(
                        "Ready.",
                        {
                            "status": {"type": "string", "enum": ["ready", "degraded"]},
                            "checks": {"type": "object", "additionalProperties": {"type": "string"}},
                        },
                    ),
                    "503": {
                        "description": "`not_ready`: the message says what is missing and how to fix it.",
                        "headers": {"X-Request-ID": "RequestId"},
                        "content": {"application/json": {"schema": "Error"}},
                    },
                },
            }
        },
    )


def _probe_answer(description: str, properties: dict) -> dict:
    """Return a probe's 200 answer."""
    return {
        "description": description,
        "headers": {"X-Request-ID": "RequestId"},
        "content": {
            "application/json": {"schema": {"type": "object", "required": sorted(properties), "properties": properties}}
        },
    }


def _add_usage(spec, plugin) -> None:
    """Add GET /api/usage: the ledger, for admin keys."""
    spec.components.schema("UsageReport", schema=UsageReportSchema)
    usage = {
        "operationId": "read_usage",
        "tags": ["operations"],
        "summary": "Read the usage ledger: per UTC day, key and model, with totals.",
        "description": "Needs a key with `admin = true` when keys are configured.",
        "parameters": plugin.converter.schema2parameters(UsageQuerySchema, location="query"),
        "responses": {
            "200": {
                "description": "The rows and their totals.",
                "headers": {"X-Request-ID": "RequestId"},
                "content": {"application/json": {"schema": "UsageReport"}},
            },
            "400": "Error400",
            "401": "Error401",
            "403": error_response(403, "`forbidden`: the key is valid but not an admin key."),
            "503": error_response(503, "`store_unavailable`: the store cannot be read now, or STORE=off."),
        },
    }
    spec.path(path="/api/usage", operations={"get": usage})


def _add_operations(spec, plugin) -> None:
    """Add GET /api/models (the configured routes and their liveness) and GET /metrics."""
    spec.components.schema("ModelsReport", schema=ModelsReportSchema)
    models = {
        "operationId": "list_models",
        "tags": ["operations"],
        "summary": "List every route's targets in fallback order, with what the Hub says of each.",
        "description": "Liveness comes from the Hub's model API, cached for LIVENESS_CACHE_SECONDS.",
        "responses": {
            "200": {
                "description": "The routes.",
                "headers": {"X-Request-ID": "RequestId"},
                "content": {"application/json": {"schema": "ModelsReport"}},
            },
            "401": "Error401",
        },
    }
    spec.path(path="/api/models", operations={"get": models})
    _add_usage(spec, plugin)
    metrics = {
        "operationId": "metrics",
        "tags": ["operations"],
        "summary": "Expose every worker's metrics in the Prometheus text format.",
        "responses": {
            "200": {"description": "The metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}}
        },
    }
    spec.path(path="/metrics", operations={"get": metrics})
