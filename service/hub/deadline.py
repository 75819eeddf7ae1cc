"""A point in time after which a request must stop waiting for the upstream."""

import time


def _now() -> float:
    """Read the monotonic clock: a deadline's clock unless it is given one (service/clock.py)."""
    return time.monotonic()


class Deadline:
    """A monotonic deadline, with the time left until it."""

    def __init__(self, seconds: float, clock=None):
        self._clock = clock or _now
        self.expires_at = self._clock() + seconds

    def remaining(self) -> float:
        """Return the seconds left, never below zero."""
        return max(0.0, self.expires_at - self._clock())

    def expired(self) -> bool:
        """Tell whether no time is left."""
        return self.remaining() <= 0.0

    def of_seconds(self, seconds: float) -> "Deadline":
        """Return a deadline `seconds` from now, on the same clock."""
        return Deadline(seconds, clock=self._clock)

    def share(self, parts: int) -> "Deadline":
        """Return a deadline for one of `parts` equal slices of the time left."""
        return Deadline(self.remaining() / max(1, parts), clock=self._clock)
