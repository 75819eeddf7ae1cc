"""The clock the service reads and waits on, handed to each part at construction.

Three readings, each where it belongs: the wall clock (`time`) for what the shared store
keeps, since every worker and host must agree on it (request windows, quotas, leases,
breakers, cached answers); the monotonic clock for intervals within one process (the store
guard's rest after a failure, the liveness cache); `sleep` for the waits between upstream
attempts, polls and looks at another worker's call. Tests hand in a clock of their own.
"""

from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic, sleep
from time import time as wall_time


@dataclass(frozen=True)
class Clock:
    """Where the time is read and waited on."""

    time: Callable[[], float] = wall_time
    monotonic: Callable[[], float] = monotonic
    sleep: Callable[[float], None] = sleep


SYSTEM_CLOCK = Clock()
