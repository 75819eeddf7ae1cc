"""The OpenAI request bodies the gateway takes, validated with the names OpenAI gives them.

A field the gateway cannot honour is refused (`Unknown field.`), never silently dropped;
`user` (an end user's id, for the provider's abuse monitoring) is taken and unused.
"""

import marshmallow as ma
from marshmallow import validate

from service.api.schemas import StrictBoolean, StrictFloat
from service.catalog.tasks import COMPLETION, MAX_SEED, TEXT_TO_IMAGE

MESSAGE_ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_STOP_SEQUENCES = 4
MAX_CHAT_CHOICES = 10
MAX_EMBEDDING_INPUTS = 2048
SIZE_PATTERN = r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$"


def _int(low=None, high=None, **kwargs):
    return ma.fields.Integer(strict=True, validate=validate.Range(min=low, max=high), **kwargs)


def _float(low=None, high=None, **kwargs):
    return StrictFloat(allow_nan=False, validate=validate.Range(min=low, max=high), **kwargs)


class MessageField(ma.fields.Field):
    """One chat message: a role, and content as a string, a list of parts, or null (a tool call)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ma.ValidationError("Must be an object with a role and content.")
        if value.get("role") not in MESSAGE_ROLES:
            raise ma.ValidationError(f"role must be one of: {', '.join(MESSAGE_ROLES)}.")
        if not isinstance(value.get("content"), (str, list, type(None))):
            raise ma.ValidationError("content must be a string, a list of parts, or null.")
        return value


class StopField(ma.fields.Field):
    """`stop`: one string, or a list of at most four."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return value
        if isinstance(value, list) and len(value) <= MAX_STOP_SEQUENCES and all(isinstance(s, str) for s in value):
            return value
        raise ma.ValidationError(f"Must be a string or a list of at most {MAX_STOP_SEQUENCES} strings.")


class PromptField(ma.fields.Field):
    """`prompt`: a string, or a list holding one (one prompt per request)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, str) or not value.strip():
            raise ma.ValidationError("Must be a non-empty string (one prompt per request).")
        return value


class _Body(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    model = ma.fields.Raw(metadata={"description": "A catalog key, an alias, a Hub id, or a task's chain."})
    user = ma.fields.String(metadata={"description": "Taken and unused."})


class StreamOptionsSchema(ma.Schema):
    """`stream_options`: whether a usage chunk ends the stream."""

    class Meta:
        unknown = ma.RAISE

    include_usage = StrictBoolean(load_default=False)


class ChatRequestSchema(_Body):
    """POST /v1/chat/completions."""

    messages = ma.fields.List(MessageField(), required=True, validate=validate.Length(min=1))
    max_tokens = _int(1)
    max_completion_tokens = _int(1)
    temperature = _float(0.0, 2.0)
    top_p = _float(0.0, 1.0)
    stop = StopField()
    seed = _int(0, MAX_SEED)
    n = _int(1, MAX_CHAT_CHOICES, load_default=1)
    stream = StrictBoolean(load_default=False)
    stream_options = ma.fields.Nested(StreamOptionsSchema, allow_none=True)
    frequency_penalty = _float(-2.0, 2.0)
    presence_penalty = _float(-2.0, 2.0)
    logprobs = StrictBoolean()
    top_logprobs = _int(0, 20)
    logit_bias = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float())
    response_format = ma.fields.Dict()
    tools = ma.fields.List(ma.fields.Dict())
    tool_choice = ma.fields.Raw()


class CompletionRequestSchema(_Body):
    """POST /v1/completions: the text-completion task."""

    prompt = PromptField(required=True)
    max_tokens = _int(1, 2048)
    temperature = _float(0.0, 2.0)
    top_p = StrictFloat(allow_nan=False, validate=validate.Range(min=0.0, max=1.0, min_inclusive=False))
    top_k = _int(1, 1_000_000)
    seed = _int(0, MAX_SEED)
    n = _int(1, COMPLETION.max_results, load_default=1)
    echo = StrictBoolean(load_default=False)
    stream = StrictBoolean(load_default=False)


class ImageRequestSchema(_Body):
    """POST /v1/images/generations: the text-to-image task."""

    prompt = ma.fields.String(required=True, validate=validate.Length(min=1))
    n = _int(1, TEXT_TO_IMAGE.max_results, load_default=1)
    size = ma.fields.String(validate=validate.Regexp(SIZE_PATTERN, error="Must be WIDTHxHEIGHT, such as 512x512."))
    response_format = ma.fields.String(load_default="b64_json")
    negative_prompt = ma.fields.String(validate=validate.Length(max=2000))
    guidance_scale = _float(0.0, 50.0)
    num_inference_steps = _int(1, 150)
    seed = _int(0, MAX_SEED)


class EmbeddingInputField(ma.fields.Field):
    """`input`: a text, or a list of texts (token arrays are not taken)."""

    def _deserialize(self, value, attr, data, **kwargs):
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not texts or not all(isinstance(text, str) and text for text in texts):
            raise ma.ValidationError("Must be a non-empty string or a list of them (token arrays are not taken).")
        if len(texts) > MAX_EMBEDDING_INPUTS:
            raise ma.ValidationError(f"At most {MAX_EMBEDDING_INPUTS} texts per request.")
        return tuple(texts)


class EmbeddingRequestSchema(_Body):
    """POST /v1/embeddings: the feature-extraction task."""

    input = EmbeddingInputField(required=True)
    encoding_format = ma.fields.String(
        validate=validate.OneOf(("float", "base64")),
        metadata={"description": "Taken; the vectors are always answered as floats, which the SDKs read either way."},
    )
