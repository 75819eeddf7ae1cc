"""Never wait on a dead model: a circuit breaker per target (model, protocol, provider, server).

After BREAKER_FAILURES target-side failures in a row (503, 504, other 5xx, timeouts, broken
connections), each within BREAKER_WINDOW_SECONDS of the first, the target's breaker opens:
for BREAKER_OPEN_SECONDS requests skip it at once, straight to the next target of their
chain, or get `503 model_unavailable` with a `Retry-After` of the time left when none is
left. Then one request probes it (half-open), within BREAKER_PROBE_SECONDS: a success closes
the breaker, a failure opens it again.

What the upstream puts down to the input says nothing of the target, either way: the caller's
own errors (400, 422 and any other 4xx), an error_type of generation or validation (the model
failed on this input), an answer of the wrong kind from a model the caller named neither count
against it nor close its breaker. A missing model (404) and the service's own token being
refused (401, 402, 403) never count against it. With client keys, the row must hold failures
of BREAKER_MIN_KEYS keys to open the breaker, and failed probes of as many keys to reopen it; a
key whose probe failed skips the target for BREAKER_OPEN_SECONDS (others probe meanwhile): no
single key can open a breaker that others then hit, nor keep one open.

The breakers live in the shared store, so every worker and host agrees. A worker reads a
breaker at most once a second (BREAKER_READ_SECONDS) and writes only when something
changes, so a healthy target costs no store round trip per request.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from service.catalog import ModelTarget
from service.clock import SYSTEM_CLOCK, Clock
from service.errors import (
    ConnectionsBusy,
    GatewayError,
    ModelFailedOnInput,
    ModelUnavailable,
    UnreadableAnswer,
    UpstreamError,
    UpstreamTimeout,
)
from service.store import FAILED, NullStore, StoreGuard
from service.store.contract import BreakerPolicy, BreakerState
from service.telemetry import metrics

log = logging.getLogger(__name__)

TARGET_FAILURES = (ModelUnavailable, UpstreamTimeout, UpstreamError)
BREAKER_READ_SECONDS = 1.0


@dataclass(frozen=True)
class Caller:
    """Whom a call is made for, as a breaker counts callers: a client key's name (None on an
    open service), and how many distinct keys' failures it takes to open a breaker."""

    name: str | None = None
    keys_needed: int = 1


OPEN_SERVICE = Caller()


def blames_target(error: GatewayError, named_by_caller: bool) -> bool:
    """Whether a call's error counts against its target: a failure on the target's side, not
    one the upstream put down to the input, nor an answer of the wrong kind from a model the
    caller chose (it may serve another task), nor the worker's own connections running out."""
    if isinstance(error, ConnectionsBusy) or says_nothing_of_the_target(error, named_by_caller):
        return False
    return isinstance(error, TARGET_FAILURES)


def says_nothing_of_the_target(error: GatewayError, named_by_caller: bool) -> bool:
    """Whether an outcome is the input's (the model failed on it, or a model the caller chose
    answered another task's kind): it neither counts against the target nor closes its breaker,
    so crafted input can neither open a breaker nor wipe the failures of a target that is down.
    A probe that ends so is simply over; the next one goes once its time is up."""
    return isinstance(error, ModelFailedOnInput) or (isinstance(error, UnreadableAnswer) and named_by_caller)


def target_id(target: ModelTarget) -> str:
    """Name a target as its breaker knows it: model, protocol, provider and server."""
    return "|".join((target.id, target.protocol, target.provider or "auto", target.url or "hub"))


@dataclass(frozen=True)
class Gate:
    """What a breaker says of one call: go, go as the probe, or skip for `retry_after` seconds."""

    passes: bool
    probe: bool = False
    retry_after: float = 0.0


GO = Gate(passes=True)


class Breakers:
    """Every target's breaker, read through a one-second memory of the shared store."""

    def __init__(self, guard: StoreGuard | NullStore, policy: BreakerPolicy, catalog, clock: Clock = SYSTEM_CLOCK):
        self.guard = guard
        self.policy = policy
        self.catalog = catalog
        self.clock = clock
        self._known: dict[str, tuple[float, BreakerState]] = {}
        self._lock = threading.Lock()

    def state(self, target: ModelTarget) -> BreakerState:
        """The target's breaker, as read at most BREAKER_READ_SECONDS ago (closed when the store
        cannot say, or STORE=off)."""
        name, now = target_id(target), self.clock.time()
        with self._lock:
            read_at, state = self._known.get(name, (None, None))
        if read_at is not None and now - read_at < BREAKER_READ_SECONDS:
            return state
        state = self.guard.breaker(name, now)
        state = BreakerState() if state is FAILED else state
        self._remember(name, state)
        return state

    def gate(self, target: ModelTarget, probe_seconds: float, caller: Caller = OPEN_SERVICE) -> Gate:
        """Say whether a call may go to the target now; a probe holds the target for `probe_seconds`."""
        state = self.state(target)
        if state.closed():
            return GO
        now = self.clock.time()
        if now < state.opened_until:
            return self._skip(target, state.opened_until - now)
        if state.probe_until is not None and now < state.probe_until:
            return self._skip(target, max(1.0, state.probe_until - now))  # another request probes
        if caller.name is not None and caller.name in state.callers:
            # This key's probe failed: another key's probe decides, or this key's next one, an open time later.
            again = (state.since or now) + self.policy.open_seconds
            if now < again:
                return self._skip(target, again - now)
        name = target_id(target)
        probing = self.guard.breaker_probe(name, now, probe_seconds)
        if probing is True:
            log.info("breaker probe target=%s", target.id)
            return Gate(passes=True, probe=True)
        if probing is FAILED:
            return GO
        # Another request took the probe: skip until the next read says how it went.
        self._remember(name, replace(state, probe_until=now + BREAKER_READ_SECONDS))
        return self._skip(target, 1.0)

    def is_open(self, target: ModelTarget) -> bool:
        """Whether the target is known to be skipped now (for sharing a deadline among the rest)."""
        state = self.state(target)
        return not state.closed() and self.clock.time() < state.opened_until

    def succeeded(self, target: ModelTarget, gate: Gate) -> None:
        """The target answered: close its breaker if it had failures or was probed."""
        state = self.state(target)
        if gate.probe or state.failures or not state.closed():
            self._record(target, True)

    def judge(
        self,
        target: ModelTarget,
        gate: Gate,
        error: GatewayError,
        waited: bool,
        caller: Caller = OPEN_SERVICE,
        named_by_caller: bool = False,
    ) -> None:
        """Tell the target's breaker how a call that ended in `error` went. A target failing on its
        side counts against it (`blames_target`); any other answer counts as an answer. Nothing is
        told for the worker's own connections running out, nor for a call that only waited on
        another request's (that request tells its outcome)."""
        if waited or isinstance(error, ConnectionsBusy) or says_nothing_of_the_target(error, named_by_caller):
            return
        if blames_target(error, named_by_caller):
            self.failed(target, caller)
        else:
            self.succeeded(target, gate)

    def failed(self, target: ModelTarget, caller: Caller = OPEN_SERVICE) -> None:
        """The target failed on its side: count it, and say when that opens the breaker."""
        before = self.state(target)
        after = self._record(target, False, caller)
        if after is not None and not after.closed() and (before.closed() or after.opened_until != before.opened_until):
            metrics.count_breaker_open(metrics.model_label(target.id, self.catalog))
            log.warning(
                "breaker open target=%s failures=%d for=%ss", target.id, after.failures, self.policy.open_seconds
            )

    def _record(self, target: ModelTarget, succeeded: bool, caller: Caller = OPEN_SERVICE) -> BreakerState | None:
        name, policy = target_id(target), replace(self.policy, callers=caller.keys_needed)
        state = self.guard.breaker_outcome(name, succeeded, self.clock.time(), policy, caller.name)
        if state is FAILED:
            return None
        self._remember(name, state)
        return state

    def _remember(self, name: str, state: BreakerState) -> None:
        with self._lock:
            self._known[name] = (self.clock.time(), state)

    def _skip(self, target: ModelTarget, seconds: float) -> Gate:
        metrics.count_breaker_skip(metrics.model_label(target.id, self.catalog))
        return Gate(passes=False, retry_after=seconds)

    def describe(self, target: ModelTarget) -> dict:
        """The breaker as /api/models shows it: closed, open (and for how long), or half-open."""
        state, now = self.state(target), self.clock.time()
        if state.closed():
            return {"state": "closed", "failures": state.failures}
        if now < state.opened_until:
            return {"state": "open", "failures": state.failures, "retry_after": round(state.opened_until - now, 1)}
        return {"state": "half-open", "failures": state.failures}
