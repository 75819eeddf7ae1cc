"""Bounded waits for conditions that another process makes true."""

import time


def wait_until(condition, timeout: float = 20.0, poll: float = 0.02) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True
