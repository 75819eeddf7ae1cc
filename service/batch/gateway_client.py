"""Calling the gateway for one item: one requests.Session per thread, paced to the key's
limits, bounded retries.

A refusal by the key's own limits (a 429 carrying `RateLimit-Policy`) is waited out and tried
again without counting as a retry, for as long as the line's time budget lasts: the limit says
when the request will be admitted, so waiting never fails a line that can be done. Anything
else worth another try (an upstream's 429, 502/503/504, no answer) counts against --retries.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from service.batch.inputs import BatchItem
from service.batch.pacing import Pacer, reset_seconds

# Worth another try: the service or the way to it was busy or briefly down.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
CONNECT_TIMEOUT_SECONDS = 10
MESSAGE_CHARS = 300
BACKOFF_MAX_SECONDS = 30.0
# A refusal by the key's limits that names no wait is tried again after this long.
LIMIT_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class Outcome:
    """The answer to one call: a result, or an error with what the service said."""

    result: Any = None
    error: dict | None = None
    retry_after: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def retryable(self) -> bool:
        """Tell whether another try may succeed: no answer at all, or a busy/unavailable status."""
        return self.error is not None and (self.error["status"] is None or self.error["status"] in RETRYABLE_STATUSES)

    @property
    def answered(self) -> bool:
        """Whether the gateway (or something in front of it) answered at all."""
        return self.error is None or self.error["status"] is not None

    @property
    def refused_by_key_limits(self) -> bool:
        """A 429 of the key's own limits, which state themselves in RateLimit-Policy; an
        upstream's 429 relayed by the gateway carries no policy."""
        return self.error is not None and self.error["status"] == 429 and "RateLimit-Policy" in self.headers

    def limit_wait(self) -> float:
        """How long the key's limits say to wait: Retry-After, else RateLimit's t=."""
        seconds = self.retry_after if self.retry_after is not None else reset_seconds(self.headers)
        return seconds if seconds is not None else LIMIT_WAIT_SECONDS


def error_outcome(
    status: int | None,
    error_type: str,
    message: str,
    retry_after: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> Outcome:
    """Build a failed outcome."""
    error = {"status": status, "error_type": error_type, "message": message[:MESSAGE_CHARS]}
    return Outcome(error=error, retry_after=retry_after, headers=headers or {})


def backoff_seconds(failures: int) -> float:
    """Exponential backoff with jitter after the n-th failure: 1, 2, 4... s, at most 30 s."""
    return min(BACKOFF_MAX_SECONDS, 2.0 ** (failures - 1) + random.uniform(0, 1))


def parse_retry_after(value: str | None) -> float | None:
    """Read Retry-After as seconds (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def outcome_of(response: requests.Response) -> Outcome:
    """Turn the service's answer into an outcome, whatever its shape."""
    try:
        body = response.json()
    except ValueError:
        body = None
    headers = response.headers
    if response.status_code == 200 and isinstance(body, dict) and "result" in body:
        return Outcome(result=body["result"], headers=headers)
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if isinstance(body, dict) and "error_type" in body:
        return error_outcome(
            response.status_code, body["error_type"], str(body.get("message", "")), retry_after, headers
        )
    # Not the service's own error shape: a proxy in between answered, or something odd did.
    return error_outcome(
        response.status_code, "http_error", response.text.strip() or response.reason or "", retry_after, headers
    )


def settle_environment(session: requests.Session, url: str) -> None:
    """Read the proxy, CA bundle and netrc settings for `url` from the environment once, for the
    session's life: requests otherwise reads them again on every call, which costs about as much
    CPU as a cached answer takes the service to send."""
    settings = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(settings["proxies"])
    session.verify = settings["verify"]
    session.cert = settings["cert"]
    session.auth = requests.utils.get_netrc_auth(url)
    session.trust_env = False


class Interrupted(Exception):
    """The run was stopped while a line waited: it gets no line, and a resumed run does it."""


class GatewayClient:
    """Send items to one task of a running gateway, paced to the key's limits, and retry what is
    worth retrying."""

    def __init__(
        self,
        url: str,
        task: str,
        params: dict | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 3,
        max_wait: float = 60.0,
        limit_budget: float = 3600.0,
        stop_event: threading.Event | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.endpoint = f"{url.rstrip('/')}/api/infer/{task}"
        self.params = {name: value for name, value in (params or {}).items() if value}
        self.api_key = api_key
        self.timeout = (CONNECT_TIMEOUT_SECONDS, timeout)
        self.retries = retries
        self.max_wait = max_wait
        self.limit_budget = limit_budget
        self.stop_event = stop_event or threading.Event()
        # Waiting on the stop event lets an interrupted run leave at once.
        self.sleep = sleep or self.stop_event.wait
        self.clock = clock
        self.pacer = Pacer()
        self._local = threading.local()

    def session(self) -> requests.Session:
        """Return this thread's session, made on first use."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            settle_environment(session, self.endpoint)
            if self.api_key:
                session.headers["Authorization"] = f"Bearer {self.api_key}"
        return session

    def infer(self, item: BatchItem) -> Outcome:
        """Run one item: wait out the key's limits within the line's time budget, retry other
        busy answers a bounded number of times, and return the last answer."""
        started = self.clock()
        failures = 0
        while True:
            outcome = self.paced_attempt(item)
            if outcome.error is None:
                return outcome
            if outcome.refused_by_key_limits:
                if self.clock() - started + outcome.limit_wait() > self.limit_budget:
                    return outcome  # e.g. a daily quota, back tomorrow: no use waiting
                self._check_stop()
                continue  # the pacer holds the next attempt until the limit frees up
            if not outcome.retryable or failures >= self.retries:
                return outcome
            failures += 1
            self._check_stop()
            self.sleep(self._retry_wait(outcome, failures))
            self._check_stop()

    def paced_attempt(self, item: BatchItem) -> Outcome:
        """Wait for the pacer's turn, send once, and tell the pacer what came back."""
        while (wait := self.pacer.reserve(self.clock())) > 0:
            self._check_stop()
            self.sleep(wait)
        outcome = self.attempt(item)
        if outcome.answered:
            refused_for = outcome.limit_wait() if outcome.refused_by_key_limits else None
            self.pacer.answered(self.clock(), outcome.headers, refused_for)
        else:
            self.pacer.unanswered()
        return outcome

    def attempt(self, item: BatchItem) -> Outcome:
        """Send one item once."""
        body = {"inputs": item.inputs}
        if item.args:
            body["args"] = item.args
        try:
            response = self.session().post(self.endpoint, params=self.params, json=body, timeout=self.timeout)
        except requests.Timeout as exc:
            return error_outcome(None, "timeout", f"no answer in time: {exc}")
        except requests.RequestException as exc:
            return error_outcome(None, "connection_error", str(exc))
        return outcome_of(response)

    def _check_stop(self) -> None:
        if self.stop_event.is_set():
            raise Interrupted

    def _retry_wait(self, outcome: Outcome, failures: int) -> float:
        """Wait what Retry-After says, else back off exponentially; never longer than max_wait."""
        hint = outcome.retry_after
        return min(self.max_wait, hint if hint is not None else backoff_seconds(failures))
