"""Marshmallow schemas of the service's answers, for the OpenAPI document."""

import marshmallow as ma
from marshmallow import validate

from service.catalog.tasks import Task
from service.errors import error_types


class ImageResultSchema(ma.Schema):
    """One image of a text-to-image answer."""

    image_base64 = ma.fields.String(
        required=True, metadata={"format": "byte", "description": "The image bytes, base64."}
    )
    content_type = ma.fields.String(
        required=True, metadata={"example": "image/jpeg", "description": "The type the upstream sent."}
    )


def success_schema(task: Task) -> ma.Schema:
    """Return the schema of one task's 200 answer: strings, or images for text-to-image."""
    item = ma.fields.Nested(ImageResultSchema) if task.makes_images else ma.fields.String()
    fields = {
        "code": ma.fields.Integer(required=True, validate=validate.OneOf([0])),
        "message": ma.fields.String(required=True, validate=validate.OneOf(["ok"])),
        "task_type": ma.fields.String(required=True, validate=validate.OneOf([task.name])),
        "model": ma.fields.String(required=True, metadata={"description": "The model that served the request."}),
        "request_id": ma.fields.String(required=True),
        "result": ma.fields.List(
            item,
            required=True,
            validate=validate.Length(min=1, max=task.max_results),
            metadata={"description": "Exactly `num_sentences` results."},
        ),
    }
    return ma.Schema.from_dict(fields, name=f"{task.name}-answer")()


class BreakerSchema(ma.Schema):
    """A target's circuit breaker."""

    state = ma.fields.String(required=True, metadata={"description": "closed, open (skipped), or half-open (probed)."})
    failures = ma.fields.Integer(required=True, metadata={"description": "Failures in a row so far."})
    retry_after = ma.fields.Float(metadata={"description": "Open: seconds until a probe may go."})


class TargetStatusSchema(ma.Schema):
    """One target of a route, and what the Hub says of it."""

    key = ma.fields.String(required=True, metadata={"description": "The configuration's name for it."})
    model = ma.fields.String(required=True, metadata={"description": "The Hub model id."})
    protocol = ma.fields.String(required=True)
    provider = ma.fields.String(required=True, metadata={"description": "`auto` when the router chooses."})
    status = ma.fields.String(
        required=True,
        metadata={
            "description": "live, staging, error, not_served, not_found, self-hosted; for a Space running, "
            "sleeping, building, error, paused or stopped; or why the Hub could not say."
        },
    )
    url = ma.fields.String(metadata={"description": "Self-hosted models: their server; Spaces: their host."})
    stage = ma.fields.String(metadata={"description": "Spaces: the runtime stage the Hub's Spaces API names."})
    providers = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "Provider -> status, from the Hub."},
    )
    breaker = ma.fields.Nested(BreakerSchema, required=True)


class RouteReportSchema(ma.Schema):
    """A task (or translation pair) and its targets in fallback order."""

    route = ma.fields.String(required=True, metadata={"example": "text-translation:zh2en"})
    targets = ma.fields.List(ma.fields.Nested(TargetStatusSchema), required=True)


class UsageCountsSchema(ma.Schema):
    """What requests cost: the fields of a ledger row, and of the totals."""

    requests = ma.fields.Integer(required=True)
    results = ma.fields.Integer(required=True, metadata={"description": "Results delivered (200 answers)."})
    images = ma.fields.Integer(required=True)
    errors = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Integer(), required=True, metadata={"description": "By error_type."}
    )
    upstream_attempts = ma.fields.Integer(required=True)
    upstream_seconds = ma.fields.Float(required=True)
    input_chars = ma.fields.Integer(required=True)
    prompt_tokens = ma.fields.Integer(required=True, metadata={"description": "As OpenAI-style answers report them."})
    completion_tokens = ma.fields.Integer(required=True)


class UsageRowSchema(UsageCountsSchema):
    """One day, key and model."""

    date = ma.fields.String(required=True, metadata={"example": "2026-12-01"})
    key = ma.fields.String(required=True, metadata={"description": "The key's name; `-` when no keys are configured."})
    model = ma.fields.String(required=True, metadata={"description": "The model that answered, or was tried last."})


class UsageReportSchema(ma.Schema):
    """The answer of GET /api/usage."""

    since = ma.fields.String(required=True)
    until = ma.fields.String(required=True)
    rows = ma.fields.List(ma.fields.Nested(UsageRowSchema), required=True)
    totals = ma.fields.Nested(UsageCountsSchema, required=True)


class ModelsReportSchema(ma.Schema):
    """The answer of GET /api/models."""

    routes = ma.fields.List(ma.fields.Nested(RouteReportSchema), required=True)
    default_pair = ma.fields.String(required=True, metadata={"example": "zh2en"})


class ErrorSchema(ma.Schema):
    """The one shape of every error."""

    code = ma.fields.Integer(required=True, metadata={"description": "The HTTP status, repeated."})
    error_type = ma.fields.String(required=True)
    message = ma.fields.String(required=True, metadata={"description": "What went wrong, for a human."})
    errors = ma.fields.Dict(metadata={"description": "Field by field messages, for invalid requests."})
    request_id = ma.fields.String(required=True, metadata={"description": "Equal to the X-Request-ID header."})

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Built per instance: error classes defined in other modules are known by now.
        self.fields["error_type"].validators = [validate.OneOf(error_types())]
