"""Turn an upstream HTTP status into the service's error, marked retryable or not."""

import json
import re

from service.errors import (
    GatewayError,
    ModelFailedOnInput,
    ModelNotFound,
    ModelRejectedInput,
    ModelUnavailable,
    RateLimited,
    UpstreamAuthError,
    UpstreamError,
)
from service.hub.messages import HUB_TOKEN, UpstreamReply, error_code, error_kind, error_message

# estimated_time is often stuck at 20 s while the model is nearly up: poll more often.
MAX_LOADING_POLL_SECONDS = 5.0
_RATELIMIT_RESET = re.compile(r"(?:^|[;,\s])t=(\d+(?:\.\d+)?)")
# The error_type values by which the upstream says the model failed on this input.
_INPUT_FAILURES = {"generation", "incomplete_generation", "validation", "template_error"}
# The router's ways of saying "this provider does not serve this model (any more)".
_NOT_SERVED = re.compile(
    r"not supported by (any |the )?provider|model_not_supported|not (currently )?(served|deployed)|no inference provider",
    re.IGNORECASE,
)


def missing_token_hint(variable: str = HUB_TOKEN) -> str:
    """Tell the operator which token is missing and how to set it."""
    if variable == HUB_TOKEN:
        return (
            "No Hugging Face token is configured: put HF_API_TOKEN=<your token> in the service's .env "
            "file (a token with the 'Make calls to Inference Providers' permission) and restart it."
        )
    return f"The model's server needs a token and {variable} is not set: put {variable}=<token> in .env and restart."


def raise_for_status(reply: UpstreamReply, has_token: bool) -> None:
    """Raise the service error that matches a non-2xx upstream answer."""
    if 200 <= reply.status < 300:
        return
    raise classify(reply, has_token)


def raise_for_download_status(reply: UpstreamReply) -> None:
    """Raise for a provider's result download: its failures say nothing of the token or the model."""
    if 200 <= reply.status < 300:
        return
    transient = reply.status == 429 or reply.status >= 500
    raise UpstreamError(f"could not download the provider's result (HTTP {reply.status})", retryable=transient)


def classify(reply: UpstreamReply, has_token: bool) -> GatewayError:
    """Return the service error for an upstream error answer."""
    status = reply.status
    message = error_message(reply)
    if status in (400, 404, 422) and (_NOT_SERVED.search(message) or error_code(reply) == "model_not_supported"):
        return ModelNotFound(f"the model is not served there: {message}")
    if status in (400, 422):
        return ModelRejectedInput(f"the model rejected the input: {message}")
    if status in (401, 402, 403):
        return UpstreamAuthError(_auth_message(status, message, has_token))
    if status in (404, 410):
        return ModelNotFound(f"upstream HTTP {status}: {message}")
    if status == 429 and error_kind(reply) == "overloaded":
        return _unavailable(reply, message)
    if status == 429:
        wait = _retry_after(reply)
        return RateLimited(f"rate limited upstream: {message}", retry_after=wait or 1, retryable=True, wait_hint=wait)
    if status == 503:
        return _unavailable(reply, message)
    if status == 408:  # a proxy gave up waiting: as transient as a 504
        return UpstreamError(f"upstream HTTP 408: {message}", retryable=True)
    if error_kind(reply) in _INPUT_FAILURES:
        return ModelFailedOnInput(f"the model failed on this input: {message}")
    if status >= 500:
        return UpstreamError(f"upstream HTTP {status}: {message}", retryable=status != 501)
    if 400 <= status < 500:  # any other 4xx: the upstream's word that the request is at fault
        return ModelFailedOnInput(f"upstream HTTP {status}: {message}")
    return UpstreamError(f"unexpected upstream HTTP {status}: {message}")


def _unavailable(reply: UpstreamReply, message: str) -> ModelUnavailable:
    """Describe a loading or overloaded model, with how long to wait."""
    header_wait = _retry_after(reply)
    estimated = _estimated_time(reply)
    retry_after = header_wait or estimated or 5
    wait_hint = header_wait if header_wait is not None else _loading_poll(estimated)
    return ModelUnavailable(
        f"the model is unavailable: {message}", retry_after=retry_after, retryable=True, wait_hint=wait_hint
    )


def _loading_poll(estimated: float | None) -> float | None:
    """Turn estimated_time into a polling interval."""
    if estimated is None:
        return None
    return min(estimated, MAX_LOADING_POLL_SECONDS)


def _estimated_time(reply: UpstreamReply) -> float | None:
    """Read estimated_time from a loading model's JSON body."""
    document = reply.json()
    value = document.get("estimated_time") if isinstance(document, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 86_400:
        return float(value)
    return None


def _retry_after(reply: UpstreamReply) -> float | None:
    """Read a wait from Retry-After (seconds) or the RateLimit header's t= field."""
    for raw, pattern in ((reply.headers.get("retry-after"), None), (reply.headers.get("ratelimit"), _RATELIMIT_RESET)):
        if not raw:
            continue
        match = pattern.search(raw) if pattern else re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*", raw)
        if match and float(match.group(1)) < 86_400:
            return float(match.group(1))
    return None


def _auth_message(status: int, message: str, has_token: bool) -> str:
    """Explain an upstream auth failure as the operator's problem, with the fix."""
    if not has_token:
        return missing_token_hint()
    if status == 402:
        return f"the Hugging Face account behind HF_API_TOKEN is out of credits (upstream: {message})"
    return (
        f"the upstream rejected the service's token (HTTP {status}: {message}); set a valid HF_API_TOKEN "
        "with the 'Make calls to Inference Providers' permission in .env and restart the service"
    )


def raise_for_event(data: str) -> None:
    """Raise the service error an event of a streamed answer carries (`{"error": ...}`), which a
    server sends after its 200 when generation fails."""
    try:
        document = json.loads(data)
    except ValueError:
        return
    if not isinstance(document, dict) or document.get("error") in (None, ""):
        return
    reply = UpstreamReply(status=_event_status(document), headers={}, body=data.encode("utf-8"))
    raise classify(reply, has_token=True)


def _event_status(document: dict) -> int:
    """The HTTP status an error event stands for: its own code when it gives one, else what
    its error_type says (a refused input, an overloaded model), else a server error."""
    error = document.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return code
    kind = document.get("error_type") or (error.get("type") if isinstance(error, dict) else None)
    return {"validation": 422, "overloaded": 503}.get(kind, 500)
