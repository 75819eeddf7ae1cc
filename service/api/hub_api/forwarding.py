"""The Hub's other tasks: the caller's body read as it came, to be forwarded to the hosted route.

A JSON body (`{"inputs", "parameters", "options"}`, whatever `inputs` holds for its task) is
checked to be one JSON object with `inputs`, and sent upstream byte for byte as
`application/json`. Any other body is a file's bytes (an image to classify, audio to
transcribe), sent with its Content-Type. Both are read within MAX_BODY_BYTES and
BODY_TIMEOUT_SECONDS, as every body is.
"""

from dataclasses import dataclass

from service.api.body import is_json_type, json_document, raw_body
from service.api.hub_api.parameters import cache_directives
from service.errors import InvalidRequest
from service.pipeline.context import CacheDirectives

JSON_TYPE = "application/json"


@dataclass(frozen=True)
class ForwardedBody:
    """What a forwarded call sends (its bytes and their Content-Type) and what it asks of the cache."""

    data: bytes
    content_type: str
    cache_directives: CacheDirectives

    def args(self) -> dict:
        """The pipeline's args of a forwarded call: one result, and the Content-Type to send."""
        return {"content_type": self.content_type, "num_sentences": 1}


def read_forwarded_body(media_type: str, cache_control: str | None) -> ForwardedBody:
    """Read the body: a JSON object with `inputs`, or a file's bytes under their media type."""
    data = raw_body()
    if is_json_type(media_type):
        document = json_body_of(data, media_type)
        if "inputs" not in document:
            raise InvalidRequest("inputs: Missing data for required field.", errors={"inputs": ["Missing data."]})
        options = document.get("options")
        return ForwardedBody(
            data, JSON_TYPE, cache_directives(cache_control, options if isinstance(options, dict) else {})
        )
    if not data:
        raise InvalidRequest(f"body: empty; send the {media_type} bytes, or a JSON object with `inputs`")
    return ForwardedBody(data, media_type.lower(), CacheDirectives.from_header(cache_control))


def json_body_of(data: bytes, media_type: str) -> dict:
    """The body as JSON; a body sent with no Content-Type that is no JSON was likely a file."""
    try:
        return json_document(data)
    except InvalidRequest as exc:
        if media_type:
            raise
        raise InvalidRequest(f"{exc.message}; a file's bytes go with their Content-Type (image/jpeg...)") from None
