"""One exception hierarchy for every error the service can answer with."""

import math


class GatewayError(Exception):
    """Root of the service's errors; each subclass knows its HTTP status and type."""

    status_code = 500
    error_type = "internal_error"

    def __init__(
        self,
        message: str,
        errors: dict | None = None,
        retry_after: float | None = None,
        retryable: bool = False,
        wait_hint: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors
        # What the caller is told to wait (Retry-After header)...
        self.retry_after = retry_after
        # ...and, for upstream failures, whether and how long the service itself may wait.
        self.retryable = retryable
        self.wait_hint = wait_hint
        # Headers beyond Retry-After (a key's RateLimit-Policy and RateLimit).
        self.extra_headers: dict = {}

    def headers(self) -> dict:
        """Return the extra response headers this error calls for."""
        headers = dict(self.extra_headers)
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


class InvalidRequest(GatewayError, ValueError):
    """The caller's JSON, fields, args, model_name or model_type are invalid."""

    status_code = 400
    error_type = "invalid_request"


class Unauthorized(GatewayError):
    """The caller did not present a valid API key."""

    status_code = 401
    error_type = "unauthorized"


class Forbidden(GatewayError):
    """The caller's key is valid but may not do this (read usage without `admin`)."""

    status_code = 403
    error_type = "forbidden"


class RequestTimeout(GatewayError):
    """The caller did not send its whole body in time; its connection is closed."""

    status_code = 408
    error_type = "request_timeout"


class PayloadTooLarge(GatewayError):
    """The body is over the size the service accepts, whatever its framing."""

    status_code = 413
    error_type = "payload_too_large"

    @classmethod
    def over(cls, max_bytes: int) -> "PayloadTooLarge":
        """Describe a body over `max_bytes`."""
        return cls(f"the request body is larger than the service accepts ({byte_size(max_bytes)})")


class UriTooLong(GatewayError):
    """The request line is over gunicorn's limit (answered by the worker, before the app)."""

    status_code = 414
    error_type = "uri_too_long"


class HeadersTooLarge(GatewayError):
    """The headers are too many or too large (answered by the worker, before the app)."""

    status_code = 431
    error_type = "headers_too_large"


class UnsupportedMediaType(GatewayError):
    """The body's declared type can never hold a JSON object (a file upload, XML...)."""

    status_code = 415
    error_type = "unsupported_media_type"


class UnknownTask(GatewayError):
    """The task in the path is not one the service serves; `field` names the path's part as
    the surface calls it (`task_type` on /api/infer/, `task` on the Hub's /pipeline/)."""

    status_code = 404
    error_type = "unknown_task"

    def __init__(self, task_type: str, valid: tuple, field: str = "task_type"):
        super().__init__(
            f"unknown {field} {task_type!r}; valid {field.replace('_', ' ')}s: {', '.join(valid)}",
            errors={field: [f"Must be one of: {', '.join(valid)}."]},
        )


class ModelNotFound(GatewayError):
    """The upstream says the model does not exist (or is gone)."""

    status_code = 404
    error_type = "model_not_found"


class ModelRejectedInput(GatewayError, ValueError):
    """The upstream rejected the caller's input or parameters (400/422)."""

    status_code = 422
    error_type = "model_rejected_input"


class RateLimited(GatewayError):
    """Rate limited: by the upstream until the deadline ran out, or by the caller's own key (rpm, concurrency)."""

    status_code = 429
    error_type = "rate_limited"


class QuotaExceeded(GatewayError):
    """The caller's key has used its results or images for the day."""

    status_code = 429
    error_type = "quota_exceeded"


class UpstreamAuthError(GatewayError):
    """The service's own token is missing or rejected (401/402/403 upstream)."""

    status_code = 502
    error_type = "upstream_auth"


class UpstreamError(GatewayError):
    """The upstream failed after retries, or sent an answer that cannot be parsed."""

    status_code = 502
    error_type = "upstream_error"


class ModelFailedOnInput(UpstreamError):
    """The upstream says the model failed on this input (a generation or validation error, or
    a 4xx of no other meaning): the input's doing, never counted against the model."""


class UnreadableAnswer(UpstreamError):
    """The upstream answered, but not with what the task reads (not JSON, no text, no image):
    a broken target, or a model the caller named for a task it does not serve."""


class ModelUnavailable(GatewayError):
    """The model was still loading or overloaded at the deadline."""

    status_code = 503
    error_type = "model_unavailable"


class NotReady(GatewayError):
    """The service cannot serve yet: the message says what is missing."""

    status_code = 503
    error_type = "not_ready"


class StoreUnavailable(GatewayError):
    """The shared store cannot be read now (or STORE=off): the message says which."""

    status_code = 503
    error_type = "store_unavailable"


class UpstreamTimeout(GatewayError, TimeoutError):
    """The deadline passed while waiting for the upstream."""

    status_code = 504
    error_type = "upstream_timeout"


class ConnectionsBusy(UpstreamTimeout):
    """The deadline passed while every upstream connection of the worker was busy: the gateway's
    own limit (UPSTREAM_POOL_SIZE), never the target's fault. Answered as any upstream timeout."""


# Errors Flask raises itself (routing, methods, static files), named as the service names them.
HTTP_ERROR_TYPES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
# Any other status Flask raises (416 on a static file...).
OTHER_HTTP_ERROR_TYPE = "http_error"


def http_error_type(status: int) -> str:
    """Name an HTTP error Flask raised."""
    return HTTP_ERROR_TYPES.get(status, OTHER_HTTP_ERROR_TYPE)


def error_types() -> list:
    """Name every error_type the service can answer with: its exception classes, then Flask's errors."""
    names, pending = set(), [GatewayError]
    while pending:
        error_class = pending.pop()
        names.add(error_class.error_type)
        pending.extend(error_class.__subclasses__())
    return sorted(names | set(HTTP_ERROR_TYPES.values()) | {OTHER_HTTP_ERROR_TYPE})


def byte_size(count: int) -> str:
    """Say a byte count the way people read it: 1 MiB, 512 KiB, 1000 bytes."""
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if count and count % factor == 0:
            return f"{count // factor} {unit}"
    return f"{count} bytes"
