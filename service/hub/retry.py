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
    """Stop when the next wait plus a minimal attempt would not fit before the call's deadline.

    The deadline is the call's own: the `deadline=` keyword it was called with.
    """

    def __call__(self, retry_state) -> bool:
        deadline: Deadline = retry_state.kwargs["deadline"]
        upcoming = retry_state.upcoming_sleep or 0.0
        return deadline.remaining() < upcoming + MIN_ATTEMPT_SECONDS


def upstream_retrying(before_sleep=None, sleep=time.sleep) -> Retrying:
    """Return the retry policy, built once and shared by every call (tenacity keeps each
    call's state apart per thread, per greenlet under gevent). Call it as
    `retrying(attempt, deadline=..., ...)`: every keyword reaches `attempt` too."""
    options = {"before_sleep": before_sleep} if before_sleep is not None else {}
    return Retrying(
        retry=retry_if_exception(is_retryable),
        wait=WaitForUpstreamHint(),
        stop=StopAtDeadline(),
        reraise=True,
        sleep=sleep,
        **options,
    )
