"""Errors in OpenAI's shape, and advice to the OpenAI SDK on whether to send a request again.

`{"error": {"message", "type", "param", "code"}}`: `type` is OpenAI's family for the status,
`code` the gateway's own error_type (`rate_limited`, `model_not_found`...), `param` the first
field the error names. A model's being unavailable (503 elsewhere) is answered 502 here, with
the same Retry-After: huggingface.js sends a 503 again at once, without end, and reaches
these routes too; every OpenAI client retries a 502 as it would a 503.
"""

from flask import Response

from service.api.error_handlers import ErrorAnswer

# OpenAI's error types, by status; any other 4xx is an invalid request.
_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
_QUOTA_TYPE = "insufficient_quota"
# Where the gateway's own names differ from the OpenAI API's.
_PARAM_NAMES = {"model_name": "model"}
UNAVAILABLE = 503
UNAVAILABLE_HERE = 502
# The OpenAI SDK honours a Retry-After of at most this many seconds, and never retries past it.
SDK_LONGEST_WAIT_SECONDS = 120


def openai_shape(error: ErrorAnswer) -> tuple[int, dict]:
    """An error as OpenAI answers one."""
    status = UNAVAILABLE_HERE if error.status == UNAVAILABLE else error.status
    param = _first_param(error.errors)
    message = error.message
    for ours, theirs in _PARAM_NAMES.items():
        if message.startswith(f"{ours}:"):
            message = theirs + message[len(ours) :]
    body = {
        "message": message,
        "type": error_family(status, error.error_type),
        "param": param,
        "code": error.error_type,
    }
    return status, {"error": body}


def error_family(status: int, error_type: str) -> str:
    """OpenAI's `type` for an error: its family by status."""
    if error_type == "quota_exceeded":
        return _QUOTA_TYPE
    if status >= 500:
        return "server_error"
    return _TYPES.get(status, "invalid_request_error")


def _first_param(errors: dict | None) -> str | None:
    """The field an error names first, as the OpenAI API names it."""
    if not errors:
        return None
    name = str(sorted(errors, key=str)[0])
    return _PARAM_NAMES.get(name, name)


def retry_advice(response: Response) -> Response:
    """Tell the OpenAI SDK (`x-should-retry`) not to send again a server error the gateway gives
    no Retry-After for: it already retried upstream within the request's deadline, so the SDK's
    two more tries would only triple the wait. With a Retry-After, the SDK waits that long."""
    if response.status_code >= 500 and "Retry-After" not in response.headers:
        response.headers["x-should-retry"] = "false"
    return response
