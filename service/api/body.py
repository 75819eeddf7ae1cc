"""Read a request's JSON body, whatever Content-Type curl chose to send."""

import json

from flask import request

from service.errors import GatewayError, InvalidRequest

# curl -d sends application/x-www-form-urlencoded; shell scripts send text/plain or nothing.
_ACCEPTED_TYPES = {"", "application/json", "application/x-www-form-urlencoded", "text/plain"}


class UnsupportedMediaType(GatewayError):
    """The body's declared type can never hold a JSON object (a file upload, XML...)."""

    status_code = 415
    error_type = "unsupported_media_type"


def json_body() -> dict:
    """Return the body as a JSON object, or raise a 400/413/415 in the documented shape."""
    _check_content_type()
    raw = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise InvalidRequest("body: the request body is not valid UTF-8") from None
    except RecursionError:
        raise InvalidRequest("body: the request body is nested too deeply") from None
    except ValueError as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise InvalidRequest(f"body: the request body is not valid JSON ({detail})") from None
    if not isinstance(document, dict):
        raise InvalidRequest('body: the request body must be a JSON object such as {"inputs": "..."}')
    return document


def _check_content_type() -> None:
    """Refuse only media types that cannot be a JSON document."""
    media_type = (request.mimetype or "").lower()
    if media_type in _ACCEPTED_TYPES or media_type.endswith("+json"):
        return
    raise UnsupportedMediaType(
        f"unsupported Content-Type {media_type!r}: send a JSON body (application/json)"
    )


def _reject_constant(name: str):
    """Refuse NaN and Infinity, which JSON does not have."""
    raise ValueError(f"{name} is not valid JSON")
