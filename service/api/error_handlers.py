"""One JSON error shape for every error the service answers, 404/405/413/415/500 included."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask import jsonify, request
from werkzeug.exceptions import HTTPException

from service.api.gateway import gateway
from service.api.lifecycle import current_context, current_request_id
from service.errors import GatewayError, PayloadTooLarge, http_error_type

log = logging.getLogger(__name__)

# Long enough for any upstream's explanation, short enough for a log line and a terminal.
MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True)
class ErrorAnswer:
    """An error as every surface has it, before a surface writes it in its own shape."""

    status: int
    error_type: str
    message: str  # redacted and clipped
    errors: dict | None
    request_id: str | None


def documented_shape(error: ErrorAnswer) -> tuple[int, dict]:
    """The gateway's own error body: `{"code", "error_type", "message", "errors", "request_id"}`."""
    body = {"code": error.status, "error_type": error.error_type, "message": error.message}
    if error.errors:
        body["errors"] = error.errors
    body["request_id"] = error.request_id
    return error.status, body


# Surfaces that speak another API's error shape (the Hub's, OpenAI's), by the path they serve:
# a request under one of these prefixes gets its errors in that shape, a 404 and 405 included.
_SHAPES_BY_PREFIX: dict[str, Callable[[ErrorAnswer], tuple[int, dict]]] = {}


def register_error_shape(prefix: str, shape: Callable[[ErrorAnswer], tuple[int, dict]]) -> None:
    """Answer errors of requests under `prefix` in `shape` (which may also change the status)."""
    _SHAPES_BY_PREFIX[prefix] = shape


def shape_for(path: str) -> Callable[[ErrorAnswer], tuple[int, dict]]:
    """The error shape of the surface serving `path`: the longest registered prefix, else the gateway's own."""
    matches = [prefix for prefix in _SHAPES_BY_PREFIX if path.startswith(prefix)]
    return _SHAPES_BY_PREFIX[max(matches, key=len)] if matches else documented_shape


def error_response(status: int, error_type: str, message: str, errors=None, headers=None):
    """Build the error body, in the shape of the surface the request came to, and its response."""
    # An upstream may echo what it was sent: redacted whole, before anything is cut.
    message = gateway().redactor.clip(message, MAX_MESSAGE_CHARS)
    current = current_context()
    if current is not None:  # the ledger counts errors by type
        current.error_type = error_type
    answer = ErrorAnswer(status, error_type, message, errors, current_request_id())
    status, body = shape_for(request.path)(answer)
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def handle_gateway_error(exc: GatewayError):
    """Answer one of the service's own errors."""
    return error_response(exc.status_code, exc.error_type, exc.message, exc.errors, exc.headers())


def handle_http_exception(exc: HTTPException):
    """Answer Werkzeug's routing and limit errors in the same shape."""
    status = exc.code or 500
    message = exc.description or exc.name
    if status == 413:
        message = PayloadTooLarge.over(gateway().settings.max_body_bytes).message
    headers = {"Allow": ", ".join(exc.valid_methods)} if getattr(exc, "valid_methods", None) else None
    return error_response(status, http_error_type(status), message, headers=headers)


def handle_unexpected(exc: Exception):
    """Log a traceback and answer 500 without revealing anything of it."""
    log.exception("unhandled error request_id=%s", current_request_id())
    return error_response(500, "internal_error", "internal error; quote the request_id when reporting it")


def register_error_handlers(app) -> None:
    """Route every exception to the JSON error shape."""
    app.register_error_handler(GatewayError, handle_gateway_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
