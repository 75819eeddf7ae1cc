"""Per-key limits: requests per minute, requests in flight, results, images and tokens per day.

A request is admitted before anything is sent upstream, in one atomic step on the shared
store: its place in the key's one-minute moving window, a concurrency slot and its daily
quotas, all or nothing, so a refused request takes nothing. When the request ends, `settle`
frees the slot, gives back the quota of a request that delivered nothing, and adds the
request to the ledger, in one more step.

A request that never ends (its worker was killed) holds a lease until it expires or its
process is seen gone; the store then books it in the ledger as `interrupted`, with the
results and images it took, which stay taken: the upstream may have made and charged them.
So after any crash the day's quota and the ledger agree.

Tokens are known only once the answers report them: a request of a key with `tokens_per_day`
reserves one token when admitted, so that a key whose day's tokens are spent is refused, and
its settling books the tokens its answers reported in place of that one (a "refund" of the
reservation less the tokens used, which the store adds when it is negative).

Refusals are `429` with a true `Retry-After` and the IETF draft's `RateLimit-Policy` and
`RateLimit` headers; successes carry both too, `RateLimit` saying what each limit has left,
counted in the step that admitted them. A store that fails admits everything (see
service/store/guard.py).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from service.catalog.tasks import Task
from service.clock import SYSTEM_CLOCK, Clock
from service.errors import QuotaExceeded, RateLimited
from service.keys.keyfile import Limits
from service.keys.keyring import ClientKey
from service.store import NullStore, StoreGuard, holders
from service.store.contract import (
    SECONDS_PER_DAY,
    Claim,
    Lease,
    Left,
    Refusal,
    Settlement,
    UsageEntry,
    Window,
    nothing_to_confirm,
    utc_day,
)
from service.telemetry import metrics

RATE_WINDOW_SECONDS = 60
# A slot outlives its request's deadline by this much, in case the worker dies holding it and
# no process can tell (its holder ran on another host).
LEASE_MARGIN_SECONDS = 30.0
INTERRUPTED = "interrupted"
TOKENS = "tokens"
TOKEN_RESERVATION = 1


@dataclass
class Ticket:
    """What a request took at admission, to settle when it ends, and what its key's limits had
    left then: by policy, the remaining units and whole seconds until more free up (None for
    concurrency). Empty when no limit applied or the store could not say."""

    key: str
    day: str
    lease_id: str | None = None
    claims: list[Claim] = field(default_factory=list)
    remaining: dict[str, tuple[int, int | None]] = field(default_factory=dict)


def policy_header(limits: Limits) -> str:
    """`RateLimit-Policy`: every limit of the key, in the IETF draft's structured form."""
    policies = []
    if limits.rpm:
        policies.append(f'"rpm";q={limits.rpm};w={RATE_WINDOW_SECONDS}')
    if limits.concurrency:
        policies.append(f'"concurrency";q={limits.concurrency}')
    if limits.results_per_day:
        policies.append(f'"results";q={limits.results_per_day};w={SECONDS_PER_DAY}')
    if limits.images_per_day:
        policies.append(f'"images";q={limits.images_per_day};w={SECONDS_PER_DAY}')
    if limits.tokens_per_day:
        policies.append(f'"{TOKENS}";q={limits.tokens_per_day};w={SECONDS_PER_DAY}')
    return ", ".join(policies)


def whole_seconds(seconds: float) -> int:
    """A wait as the headers say it: whole seconds, rounded up so that it is never too short."""
    return max(1, math.ceil(seconds))


def remaining_header(remaining: dict[str, tuple[int, int | None]]) -> str:
    """`RateLimit`: what each limit has left and in how many seconds more frees up, in the IETF
    draft's structured form (`"rpm";r=9;t=61, "concurrency";r=3`); a slot names no time."""
    items = []
    for policy, (left, reset) in remaining.items():
        items.append(f'"{policy}";r={left}' + (f";t={reset}" if reset is not None else ""))
    return ", ".join(items)


def refusal_error(key: ClientKey, refusal: Refusal, asked: int = 0) -> RateLimited | QuotaExceeded:
    """The 429 a refused request gets, with its headers; `asked`: the results or images it asked."""
    seconds = whole_seconds(refusal.retry_after)
    headers = {
        "RateLimit-Policy": policy_header(key.limits),
        "RateLimit": remaining_header({refusal.policy: (0, seconds)}),
    }
    limits = key.limits
    if refusal.policy == "rpm":
        error = RateLimited(
            f"key {key.name} is over its limit of {limits.rpm} requests per minute; retry in {seconds} s",
            retry_after=seconds,
        )
    elif refusal.policy == "concurrency":
        error = RateLimited(
            f"key {key.name} already has {limits.concurrency} requests in flight, its limit; retry when one ends",
            retry_after=seconds,
        )
    elif refusal.policy == TOKENS:
        used = refusal.used if refusal.used is not None else limits.tokens_per_day
        error = QuotaExceeded(
            f"key {key.name} has used {used} of its {limits.tokens_per_day} tokens for today (UTC); the quota "
            f"starts again in {seconds} s",
            retry_after=seconds,
        )
    else:
        limit = limits.results_per_day if refusal.policy == "results" else limits.images_per_day
        error = QuotaExceeded(
            f"key {key.name} has used {refusal.used if refusal.used is not None else limit} of its {limit} "
            f"{refusal.policy} for today (UTC) and this request asks for {asked}; the quota starts again in "
            f"{seconds} s",
            retry_after=seconds,
        )
    error.extra_headers = headers
    return error


class Admission:
    """Admits requests against their key's limits, and settles them when they end."""

    def __init__(self, guard: StoreGuard | NullStore, clock: Clock = SYSTEM_CLOCK):
        self.guard = guard
        self.clock = clock

    def admit(self, key: ClientKey, task: Task, results: int, deadline_seconds: float, model: str) -> Ticket:
        """Take what the request needs of its key's limits, all or nothing, or raise its 429;
        `model` is what the ledger books the request under should its worker die."""
        now = self.clock.time()
        ticket = Ticket(key.name, utc_day(now))
        limits = key.limits
        if not limits.any():
            return ticket
        window = Window(limits.rpm, RATE_WINDOW_SECONDS) if limits.rpm else None
        claims = []
        if limits.results_per_day:
            claims.append(Claim("results", results, limits.results_per_day))
        if limits.images_per_day and task.makes_images:
            claims.append(Claim("images", results, limits.images_per_day))
        if limits.tokens_per_day:
            claims.append(Claim(TOKENS, TOKEN_RESERVATION, limits.tokens_per_day))
        booking = interrupted_entry(ticket, task, results, model)
        lease = Lease(
            uuid.uuid4().hex,
            limits.concurrency or 0,
            now + deadline_seconds + LEASE_MARGIN_SECONDS,
            booking=booking,
            holder=holders.this_process(),
        )
        outcome = self.guard.admit(key.name, window, lease, claims, now)
        if isinstance(outcome, Refusal):
            self.refuse(key, outcome, results)
        if isinstance(outcome, dict):  # taken; FAILED (the store is away) took nothing
            ticket.lease_id, ticket.claims = lease.lease_id, claims
            ticket.remaining = {policy: whole_left(left) for policy, left in outcome.items()}
        return ticket

    def refuse(self, key: ClientKey, refusal: Refusal, asked: int = 0) -> None:
        metrics.count_refused(refusal.policy)
        raise refusal_error(key, refusal, asked)

    def settle(self, ticket: Ticket, delivered: bool, usage: UsageEntry | None) -> Callable[[], None]:
        """Free the slot, give back the quota of a request that delivered nothing, add it to the
        ledger; return what confirms it, to call once the answer has gone."""
        refunds = [] if delivered else [claim for claim in ticket.claims if claim.name != TOKENS]
        refunds += tokens_booked(ticket, usage)
        if ticket.lease_id is None and not refunds and usage is None:
            return nothing_to_confirm
        settlement = Settlement(ticket.key, ticket.lease_id, refunds, ticket.day, [usage] if usage else [])
        confirm = self.guard.settle(settlement)
        ticket.lease_id, ticket.claims = None, []
        return confirm


def tokens_booked(ticket: Ticket, usage: UsageEntry | None) -> list[Claim]:
    """The tokens a request's answers reported, in place of the one it reserved, as the refund
    of its reservation less what it used (negative when it used more, which adds them)."""
    reserved = next((claim for claim in ticket.claims if claim.name == TOKENS), None)
    if reserved is None:
        return []
    counts = usage.counts if usage is not None else {}
    used = int(counts.get("prompt_tokens", 0) + counts.get("completion_tokens", 0))
    return [Claim(TOKENS, reserved.amount - used, reserved.limit)]


def whole_left(left: Left) -> tuple[int, int | None]:
    """What a limit has left, its time in whole seconds as the headers say it."""
    return left.remaining, None if left.reset_after is None else whole_seconds(left.reset_after)


def interrupted_entry(ticket: Ticket, task: Task, results: int, model: str) -> UsageEntry:
    """What the ledger books for a request cut off by a crash: the results (and images) it
    took from the quota, since the upstream may have made and charged them."""
    counts: dict[str, float] = {"requests": 1, "results": results, f"errors.{INTERRUPTED}": 1}
    if task.makes_images:
        counts["images"] = results
    return UsageEntry(ticket.day, ticket.key, model, counts)
