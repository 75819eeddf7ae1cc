"""What the OpenAPI document says of errors: every status an inference call can answer and why,
the headers that come with them, and the one error shape they share."""

# Every status of the README's error table an inference call can answer, and why.
INFERENCE_ERRORS = {
    400: "`invalid_request`: bad JSON, bad field, unknown arg, bad `model_name` or `model_type`.",
    401: "`unauthorized`: client keys are configured and the call has no valid key.",
    404: "`model_not_found`: the upstream says the model does not exist or is gone "
    "(`unknown_task` and `not_found` answer other paths).",
    405: "`method_not_allowed`: another method than POST; the `Allow` header says which.",
    408: "`request_timeout`: the body did not arrive within BODY_TIMEOUT_SECONDS; the connection is closed.",
    413: "`payload_too_large`: body over the limit (1 MiB by default), whatever its framing.",
    414: "`uri_too_long`: a request line over 4,094 bytes (answered by gunicorn's worker).",
    415: "`unsupported_media_type`: a body type that cannot be JSON.",
    431: "`headers_too_large`: over 100 headers, or one over 8,190 bytes (answered by gunicorn's worker).",
    422: "`model_rejected_input`: the upstream rejected the input or parameters; its message is passed on.",
    429: "`rate_limited`: the upstream still rate limited when the deadline ran out, or the key is over its requests "
    "per minute or requests in flight; `quota_exceeded`: the key used its results or images for the UTC day. "
    "A key's own limits add `RateLimit-Policy` and `RateLimit` headers.",
    500: "`internal_error`: anything unexpected; quote the request_id when reporting it.",
    502: "`upstream_auth` (the service's own token is missing or rejected) or `upstream_error` "
    "(upstream 5xx after retries, a broken connection, an unusable answer).",
    503: "`model_unavailable`: the model was still loading or overloaded at the deadline.",
    504: "`upstream_timeout`: the deadline passed while waiting for the upstream.",
}
RETRY_AFTER_STATUSES = (429, 503)

HEADERS = {
    "RequestId": {
        "description": "The request id: the caller's X-Request-ID when sane, else a new one. Also sent upstream.",
        "required": True,
        "schema": {"type": "string"},
    },
    "RetryAfter": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}},
    "Allow": {"description": "The methods the path accepts.", "schema": {"type": "string"}},
    "RateLimitPolicy": {
        "description": 'The key\'s limits (IETF draft form), e.g. `"rpm";q=30;w=60, "concurrency";q=4`.',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": "What the key's limits have left, IETF draft form: on a success each limit's remaining "
        'requests, slots, results or images and the seconds until more free up (a slot names none), e.g. `"rpm";r=9;'
        't=61, "concurrency";r=3, "results";r=99;t=43200`; on a 429 the limit that refused the call: `"rpm";r=0;t=12`.',
        "schema": {"type": "string"},
    },
}
# A key's limits, and what is left of them, on its successes and on its refusals alike.
LIMIT_HEADERS = {"RateLimit-Policy": "RateLimitPolicy", "RateLimit": "RateLimit"}


def error_response(status: int, why: str) -> dict:
    """Return one documented error status, in the one error shape."""
    headers = {"X-Request-ID": "RequestId"}
    if status in RETRY_AFTER_STATUSES:
        headers["Retry-After"] = "RetryAfter"
    if status == 429:
        headers.update(LIMIT_HEADERS)
    if status == 405:
        headers["Allow"] = "Allow"
    return {"description": why, "headers": headers, "content": {"application/json": {"schema": "Error"}}}
