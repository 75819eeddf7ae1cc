"""Run one task: pick the model from the route, fan out for several results, fall back."""

import logging
import os
import random
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

from service.catalog import CatalogError, ModelTarget, Route
from service.errors import InvalidRequest, ModelNotFound, ModelUnavailable, UpstreamTimeout
from service.hub.client import CallStats, HubClient
from service.hub.deadline import Deadline
from service.hub.downloads import ImageLink
from service.hub.protocols import PROTOCOLS
from service.hub.protocols.base import InferenceCall
from service.schemas import MAX_SEED

log = logging.getLogger(__name__)
# Errors that say "this model, here, now" rather than "this input": worth the next target.
_FALL_BACK_ON = (ModelNotFound, ModelUnavailable, UpstreamTimeout)


@dataclass(frozen=True)
class InferenceResult:
    """What a task produced, and which model produced it."""

    model: str
    results: list


class FanOutPool:
    """A per-process thread pool for concurrent upstream calls, rebuilt after a fork."""

    def __init__(self, max_workers: int):
        self._max_workers = max_workers
        self._lock = threading.Lock()
        self._pool, self._pid = None, None

    def get(self) -> ThreadPoolExecutor:
        """Return this process's pool."""
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix="fanout")
                self._pid = os.getpid()
            return self._pool


class InferenceRunner:
    """Turns a validated request into results, through the Hub client."""

    def __init__(self, client: HubClient, catalog, settings):
        self.client = client
        self.catalog = catalog
        self.settings = settings
        self.pool = FanOutPool(settings.fanout_workers)
        for label, targets in catalog.all_routes():
            for target in targets:
                if not PROTOCOLS[target.protocol].serves(target, label.split(":")[0]):
                    raise CatalogError(f"{label}: {_cannot_serve(target, label.split(':')[0])}")

    def check_serves(self, route: Route) -> None:
        """Refuse, before any upstream call, a model a caller named for a task it cannot serve."""
        for target in route.targets:
            if not PROTOCOLS[target.protocol].serves(target, route.task_type):
                raise InvalidRequest(
                    f"model_name: {_cannot_serve(target, route.task_type)}",
                    errors={"model_name": [f"Cannot serve {route.task_type}."]},
                )

    def run(self, route: Route, inputs: str, args: dict, stats: CallStats, request_id: str) -> InferenceResult:
        """Try the route's targets in order until one answers."""
        deadline = Deadline(self.settings.deadline_for(route.task_type))
        for position, target in enumerate(route.targets):
            targets_left = len(route.targets) - position
            call = self._call(route, target, inputs, args)
            try:
                results = self._run_target(call, deadline.share(targets_left), stats, request_id)
                return InferenceResult(model=target.id, results=results)
            except _FALL_BACK_ON as exc:
                if targets_left == 1 or deadline.expired():
                    raise
                log.warning(
                    "fallback request_id=%s from=%s reason=%s", request_id, target.id, exc.error_type
                )
        raise AssertionError("a route always has at least one target")

    def _call(self, route: Route, target: ModelTarget, inputs: str, args: dict) -> InferenceCall:
        """Describe the task for one target."""
        pair = route.pair
        return InferenceCall(
            task_type=route.task_type,
            target=target,
            inputs=inputs,
            args=args,
            pair=pair,
            source_language=self.catalog.language_name(pair.source) if pair else None,
            target_language=self.catalog.language_name(pair.target) if pair else None,
        )

    def _run_target(self, call: InferenceCall, deadline: Deadline, stats: CallStats, request_id: str) -> list:
        """Get `num_sentences` results from one model."""
        count = call.args["num_sentences"]
        protocol = PROTOCOLS[call.target.protocol]
        if not call.sampling:
            # Greedy decoding gives the same answer every time: ask once, repeat it.
            return self._ask(protocol, call, None, 1, deadline, stats, request_id) * count
        if protocol.asks_for_n:
            results = self._ask(protocol, call, call.args.get("seed"), count, deadline, stats, request_id)
            if len(results) < count:
                # Some servers ignore `n`: fill in with one call per missing result.
                first = call.args.get("seed")
                seeds = _seeds(None if first is None else first + len(results), count - len(results))
                results += self._fan_out(protocol, call, seeds, deadline, stats, request_id)
            return results
        if count == 1:
            return self._ask(protocol, call, call.args.get("seed"), 1, deadline, stats, request_id)
        seeds = _seeds(call.args.get("seed"), count)
        return self._fan_out(protocol, call, seeds, deadline, stats, request_id)

    def _ask(self, protocol, call, seed, n, deadline, stats, request_id) -> list:
        """Make one (retried) upstream call and parse its results."""
        request = protocol.build(call, self.settings, seed, n)
        reply = self.client.call(request, deadline, stats, request_id)
        results = protocol.parse(call, reply, n)
        return [self._fetch(result, deadline, stats, request_id) for result in results]

    def _fetch(self, result, deadline, stats, request_id):
        """Download an image a provider answered with a link; pass other results through."""
        if not isinstance(result, ImageLink):
            return result
        allowed = self.catalog.download_hosts.get(result.provider, ())
        return self.client.download_image(result, allowed, deadline, stats, request_id)

    def _fan_out(self, protocol, call, seeds, deadline, stats, request_id) -> list:
        """Make one call per seed concurrently, at most FANOUT_CONCURRENCY at a time."""
        gate = threading.BoundedSemaphore(self.settings.fanout_concurrency)

        def one(seed):
            try:
                return self._ask(protocol, call, seed, 1, deadline, stats, request_id)[0]
            finally:
                gate.release()

        # The gate is taken before submitting, so waiting calls never hold a pool thread.
        futures = []
        for seed in seeds:
            if not gate.acquire(timeout=deadline.remaining()):
                break
            futures.append(self.pool.get().submit(one, seed))
        done, pending = wait(futures, timeout=deadline.remaining() + 1.0, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future in done and future.exception() is not None:
                _cancel(pending)
                raise future.exception()
        if pending or len(futures) < len(seeds):
            _cancel(pending)
            raise UpstreamTimeout("the deadline passed while waiting for the upstream")
        return [future.result() for future in futures]


def _cannot_serve(target: ModelTarget, task_type: str) -> str:
    """Say that a model cannot serve a task, and which tasks it can."""
    serves = PROTOCOLS[target.protocol].tasks_for(target)
    return (
        f"model {target.key!r} ({target.id}, protocol {target.protocol}) cannot serve {task_type}; "
        f"it serves: {', '.join(serves) or 'no task as configured'}"
    )


def _seeds(seed: int | None, count: int) -> list:
    """Give each call its own seed: consecutive from the caller's, else random."""
    if seed is not None:
        return [(seed + offset) % (MAX_SEED + 1) for offset in range(count)]
    return [random.randint(0, 2**31 - 1) for _ in range(count)]


def _cancel(futures) -> None:
    """Cancel calls that have not started; running ones end at their deadline."""
    for future in futures:
        future.cancel()
