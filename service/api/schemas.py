"""Marshmallow schemas for request bodies, args per task, and query strings."""

import datetime

import marshmallow as ma
from marshmallow import validate

from service.api import strict_json
from service.catalog.tasks import COMPLETION, MAX_SEED, TEXT_TO_IMAGE, TEXT_TO_TEXT, TRANSLATION
from service.errors import InvalidRequest


class ArgsField(ma.fields.Field):
    """`args` as a JSON object, or as a string holding one ("" means {})."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                value = strict_json.loads(value)
            except strict_json.StrictJSONError as exc:
                raise ma.ValidationError(f"Must be a JSON object, or a string holding one: {exc}.") from None
            except (ValueError, RecursionError):
                raise ma.ValidationError("Must be a JSON object, or a string holding one.") from None
        if not isinstance(value, dict):
            raise ma.ValidationError("Must be a JSON object, or a string holding one.")
        return value


class StrictFloat(ma.fields.Float):
    """A float given as a JSON number: "0.5" and booleans are refused."""

    def _validated(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        return super()._validated(value)


class StrictBoolean(ma.fields.Boolean):
    """A boolean given as JSON true or false: "yes", 1 and "true" are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _int(default=None, low=None, high=None, **kwargs):
    """An integer arg with bounds."""
    options = {"load_default": default} if default is not None else {}
    return ma.fields.Integer(strict=True, validate=validate.Range(min=low, max=high), **options, **kwargs)


def _float(default=None, low=None, high=None, min_inclusive=True, **kwargs):
    """A finite float arg with bounds."""
    options = {"load_default": default} if default is not None else {}
    return StrictFloat(
        allow_nan=False,
        validate=validate.Range(min=low, max=high, min_inclusive=min_inclusive),
        **options,
        **kwargs,
    )


class _Args(ma.Schema):
    """Args every task takes; unknown keys are an error, never silently ignored."""

    class Meta:
        unknown = ma.RAISE

    num_sentences = _int(1, 1, TRANSLATION.max_results, metadata={"description": "How many results to return."})
    seed = _int(
        low=0, high=MAX_SEED, metadata={"description": "Seed of the first result; the next ones use seed+1, seed+2..."}
    )


class _SamplingArgs(_Args):
    """Sampling args of the text tasks."""

    do_sample = StrictBoolean(
        load_default=True, metadata={"description": "Sample; false gives the same answer every time."}
    )
    top_k = _int(30, 1, 1_000_000)
    top_p = _float(1.0, 0.0, 1.0, min_inclusive=False)
    temperature = _float(low=0.0, high=100.0, min_inclusive=False)
    max_new_tokens = _int(128, 1, 2048, metadata={"description": "Longest answer, in tokens."})


class TranslationArgsSchema(_SamplingArgs):
    """Args of text-translation."""


class TextToTextArgsSchema(_SamplingArgs):
    """Args of text-to-text."""


class CompletionArgsSchema(_SamplingArgs):
    """Args of text-completion."""

    return_full_text = StrictBoolean(load_default=False, metadata={"description": "Start each result with the prompt."})


class TextToImageArgsSchema(_Args):
    """Args of text-to-image."""

    num_sentences = _int(1, 1, TEXT_TO_IMAGE.max_results, metadata={"description": "How many images to return."})
    negative_prompt = ma.fields.String(validate=validate.Length(max=2000))
    guidance_scale = _float(low=0.0, high=50.0)
    num_inference_steps = _int(low=1, high=150)
    width = _int(low=64, high=2048)
    height = _int(low=64, high=2048)


ARGS_SCHEMAS = {
    TRANSLATION.name: TranslationArgsSchema(),
    COMPLETION.name: CompletionArgsSchema(),
    TEXT_TO_TEXT.name: TextToTextArgsSchema(),
    TEXT_TO_IMAGE.name: TextToImageArgsSchema(),
}


class InferRequestSchema(ma.Schema):
    """The request body: `inputs` and optional `args`."""

    class Meta:
        unknown = ma.RAISE

    inputs = ma.fields.String(required=True, metadata={"description": "The text to work on (a prompt for images)."})
    args = ArgsField(
        load_default=dict,
        metadata={"description": 'Task arguments: a JSON object, or a string holding one ("" means {}).'},
    )
    # The original service's documentation lists num_sentences beside inputs; its examples put
    # it in args. Both work; the two disagreeing is an error.
    num_sentences = ma.fields.Raw(metadata={"description": "Also accepted here: the same as args.num_sentences."})

    def __init__(self, max_input_chars: int, **kwargs):
        super().__init__(**kwargs)
        self.fields["inputs"].validators = [
            _not_blank,
            validate.Length(max=max_input_chars, error="Must be at most {max} characters."),
        ]

    @ma.post_load
    def _num_sentences_into_args(self, data: dict, **kwargs) -> dict:
        """Move a top-level num_sentences into args, where the task's schema validates it."""
        if "num_sentences" in data:
            value = data.pop("num_sentences")
            if "num_sentences" in data["args"] and data["args"]["num_sentences"] != value:
                raise ma.ValidationError(
                    "Given twice with different values: once here, once in args.", field_name="num_sentences"
                )
            data["args"] = {**data["args"], "num_sentences": value}
        return data


def _not_blank(value: str) -> None:
    """Refuse empty inputs and inputs made only of whitespace."""
    if not value.strip():
        raise ma.ValidationError("Must be a non-empty string.")


class QuerySchema(ma.Schema):
    """The query string: model_name and model_type (both optional)."""

    class Meta:
        unknown = ma.EXCLUDE

    model_name = ma.fields.String(
        validate=validate.Length(min=1, max=128),
        metadata={
            "description": "A Hub model id (`name` or `org/name`) or a configured key or alias; bypasses the fallback chain."
        },
    )
    model_type = ma.fields.String(
        validate=validate.Regexp(r"^[a-z]{2,3}2[a-z]{2,3}$", error="Must look like zh2en."),
        metadata={"description": "Translation only: the direction `<src>2<tgt>`, default zh2en."},
    )


# How far back one /api/usage call may read.
MAX_USAGE_DAYS = 366
DEFAULT_USAGE_DAYS = 7


class UsageQuerySchema(ma.Schema):
    """The query string of GET /api/usage: a range of UTC days, optionally one key and one model."""

    class Meta:
        unknown = ma.RAISE

    key = ma.fields.String(
        validate=validate.Regexp(r"^[A-Za-z0-9-][A-Za-z0-9._-]{0,63}$", error="Must be a key name."),
        metadata={"description": "Only this key's rows (`-` is the open service's caller)."},
    )
    model = ma.fields.String(
        validate=validate.Length(min=1, max=128), metadata={"description": "Only this model's rows."}
    )
    since = ma.fields.Date(metadata={"description": "First UTC day, `YYYY-MM-DD`; default six days before `until`."})
    until = ma.fields.Date(metadata={"description": "Last UTC day, `YYYY-MM-DD`; default today."})

    @ma.validates_schema
    def _range(self, data, **kwargs):
        since, until = usage_range(data.get("since"), data.get("until"))
        if since > until:
            raise ma.ValidationError("Must not be after until.", "since")
        if (until - since).days >= MAX_USAGE_DAYS:
            raise ma.ValidationError(f"The range may span at most {MAX_USAGE_DAYS} days.", "since")

    @ma.post_load
    def _defaults(self, data, **kwargs):
        data["since"], data["until"] = usage_range(data.get("since"), data.get("until"))
        return data


def usage_range(since: datetime.date | None, until: datetime.date | None) -> tuple[datetime.date, datetime.date]:
    """The days a usage query covers, its defaults filled in: the last week, today (UTC) included."""
    until = until or datetime.datetime.now(datetime.UTC).date()
    return since or until - datetime.timedelta(days=DEFAULT_USAGE_DAYS - 1), until


def load_or_raise(schema: ma.Schema, data, prefix: str = "") -> dict:
    """Load `data` with `schema`, turning validation errors into one 400 with every field named."""
    try:
        return schema.load(data)
    except ma.ValidationError as exc:
        errors = {prefix: exc.messages} if prefix else exc.messages
        raise InvalidRequest(_first_message(errors), errors=errors) from None


def _first_message(errors, path: str = "") -> str:
    """Render the first error as `field.sub: message` for the top-level message."""
    if isinstance(errors, dict):
        key = sorted(errors, key=str)[0]
        return _first_message(errors[key], f"{path}.{key}" if path else str(key))
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, (dict, list)):
            return _first_message(first, path)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"{path}: {first}{more}"
    return f"{path}: {errors}"
