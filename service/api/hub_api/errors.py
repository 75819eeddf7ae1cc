"""Errors of the Hub's API in the Hub's shape: `{"error": "...", "error_type": "..."}`.

No answer of these routes is a 503: huggingface.js sends a request answered 503 again at once,
with no pause and no end. A model that is loading or overloaded at the deadline, or whose
circuit breaker is open (`model_unavailable`, which always says how long to wait), is a 429
with its Retry-After: every client stops there, and the ones that retry by themselves wait as
told. Any other 503 (the service not ready, the shared store unreadable) is a 502: a fault of
the gateway's side with no time to give, which no client resends at once.

An upstream's refusal of generation kwargs stays the 400 the Hub answers (the gateway's own API
calls it a 422), so that huggingface_hub's text_generation sends the call again without them.
"""

import re

from service.api.error_handlers import ErrorAnswer

UNAVAILABLE = 503
COME_BACK_LATER = 429
GATEWAY_FAULT = 502
BAD_REQUEST = 400
MODEL_UNAVAILABLE = "model_unavailable"
MODEL_REJECTED_INPUT = "model_rejected_input"
UNUSED_KWARGS = re.compile(r"The following `model_kwargs` are not used by the model: \[")


def hub_error_shape(error: ErrorAnswer) -> tuple[int, dict]:
    """The Hub's error body, at a status that sends no client into a loop."""
    return non_looping_status(error), {"error": error.message, "error_type": error.error_type}


def non_looping_status(error: ErrorAnswer) -> int:
    """The error's status: a 503 turned into a 429 (a time to wait is known) or a 502, an upstream's
    refusal of generation kwargs the 400 the Hub answers."""
    if error.error_type == MODEL_REJECTED_INPUT and UNUSED_KWARGS.search(error.message):
        return BAD_REQUEST
    if error.status != UNAVAILABLE:
        return error.status
    return COME_BACK_LATER if error.error_type == MODEL_UNAVAILABLE else GATEWAY_FAULT
