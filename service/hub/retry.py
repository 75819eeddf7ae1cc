"""The retry policy for upstream calls, declared once."""

import time

from tenacity import Retrying, retry_if_exception, wait_exponential_jitter
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from service.errors import GatewayError
from service.hub.deadline import Deadline

# Below this, another attempt could not even connect and read before the deadline.
MIN_ATTEMPT_SECONDS = 0.05
_backoff = wait_exponential_jitter(multiplier=0.25, max=4.0, jitter=0.25)


def is_retryable(exc: BaseException) -> bool:
    """Retry only what the upstream may answer differently next time."""
    return isinstance(exc, GatewayError) and exc.retryable


class WaitForUpstreamHint(wait_base):
    """Wait what Retry-After or estimated_time says, else back off exponentially with jitter."""

    def __call__(self, retry_state) -> float:
        hint = getattr(retry_state.outcome.exception(), "wait_hint", None)
        return hint if hint is not None else _backoff(retry_state)


class StopAtDeadline(stop_base):
    """Stop when the next wait plus a minimal attempt would not fit before the deadline."""

    def __init__(self, deadline: Deadline):
        self.deadline = deadline

    def __call__(self, retry_state) -> bool:
        upcoming = retry_state.upcoming_sleep or 0.0
        return self.deadline.remaining() < upcoming + MIN_ATTEMPT_SECONDS


UPSTREAM_RETRY = Retrying(
    retry=retry_if_exception(is_retryable),
    wait=WaitForUpstreamHint(),
    reraise=True,
    sleep=time.sleep,
)


def call_with_retries(attempt, deadline: Deadline, on_retry=None, sleep=None):
    """Run `attempt()` under the upstream retry policy, bounded by `deadline`."""
    options = {"stop": StopAtDeadline(deadline)}
    if on_retry is not None:
        options["before_sleep"] = on_retry
    if sleep is not None:
        options["sleep"] = sleep
    return UPSTREAM_RETRY.copy(**options)(attempt)
