"""One JSON error shape for every error the service answers, 404/405/413/415/500 included."""

import logging

from flask import jsonify
from werkzeug.exceptions import HTTPException

from service.api.gateway import gateway
from service.api.lifecycle import current_context, current_request_id
from service.errors import GatewayError, PayloadTooLarge, http_error_type

log = logging.getLogger(__name__)

# Long enough for any upstream's explanation, short enough for a log line and a terminal.
MAX_MESSAGE_CHARS = 500


def error_response(status: int, error_type: str, message: str, errors=None, headers=None):
    """Build the documented error body and response."""
    # An upstream may echo what it was sent: redacted whole, before anything is cut.
    message = gateway().redactor.clip(message, MAX_MESSAGE_CHARS)
    body = {"code": status, "error_type": error_type, "message": message}
    if errors:
        body["errors"] = errors
    body["request_id"] = current_request_id()
    current = current_context()
    if current is not None:  # the ledger counts errors by type
        current.error_type = error_type
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
