"""Calling the gateway for one item: one requests.Session per thread, bounded retries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from tenacity import (
    Retrying,
    retry_if_result,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential_jitter,
)

from service.batch.inputs import BatchItem

# Worth another try: the service or the way to it was busy or briefly down.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
CONNECT_TIMEOUT_SECONDS = 10
MESSAGE_CHARS = 300
_backoff = wait_exponential_jitter(initial=1.0, max=30.0, jitter=1.0)


@dataclass(frozen=True)
class Outcome:
    """The answer to one call: a result, or an error with what the service said."""

    result: Any = None
    error: dict | None = None
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        """Tell whether another try may succeed: no answer at all, or a busy/unavailable status."""
        return self.error is not None and (self.error["status"] is None or self.error["status"] in RETRYABLE_STATUSES)


def error_outcome(status: int | None, error_type: str, message: str, retry_after: float | None = None) -> Outcome:
    """Build a failed outcome."""
    error = {"status": status, "error_type": error_type, "message": message[:MESSAGE_CHARS]}
    return Outcome(error=error, retry_after=retry_after)


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
    if response.status_code == 200 and isinstance(body, dict) and "result" in body:
        return Outcome(result=body["result"])
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if isinstance(body, dict) and "error_type" in body:
        return error_outcome(response.status_code, body["error_type"], str(body.get("message", "")), retry_after)
    # Not the service's own error shape: a proxy in between answered, or something odd did.
    return error_outcome(
        response.status_code, "http_error", response.text.strip() or response.reason or "", retry_after
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


class GatewayClient:
    """Send items to one task of a running gateway and retry what is worth retrying."""

    def __init__(
        self,
        url: str,
        task: str,
        params: dict | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 3,
        max_wait: float = 60.0,
        stop_event: threading.Event | None = None,
        sleep: Callable[[float], Any] | None = None,
    ):
        self.endpoint = f"{url.rstrip('/')}/api/infer/{task}"
        self.params = {name: value for name, value in (params or {}).items() if value}
        self.api_key = api_key
        self.timeout = (CONNECT_TIMEOUT_SECONDS, timeout)
        self.max_wait = max_wait
        self.stop_event = stop_event or threading.Event()
        self._retrying = Retrying(
            stop=stop_after_attempt(retries + 1) | stop_when_event_set(self.stop_event),
            wait=self._wait_seconds,
            retry=retry_if_result(lambda outcome: outcome.retryable),
            retry_error_callback=lambda state: state.outcome.result(),  # give up with the last answer
            # Waiting on the stop event lets an interrupted run leave at once.
            sleep=sleep or self.stop_event.wait,
        )
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
        """Run one item, retrying a bounded number of times."""
        return self._retrying(self.attempt, item)

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

    def _wait_seconds(self, retry_state) -> float:
        """Wait what Retry-After says, else back off exponentially; never longer than max_wait."""
        hint = retry_state.outcome.result().retry_after
        return min(self.max_wait, hint if hint is not None else _backoff(retry_state))
