"""Never pay twice: answers to deterministic calls kept in the shared store, and identical calls
in flight at the same time made once.

A call is deterministic when the caller asked for greedy decoding (`do_sample: false`) or
gave a `seed` that reaches the upstream; sampled calls without one are never kept. The key is everything that
decides the answer: the task, the target (model, protocol, provider), the URL and the whole
payload sent upstream (the decorated input and every argument that reaches it), and the
number of results asked; never the request id or the caller's key. Only results that were
read whole and checked are kept, so an error, a partial body, a timeout or an answer over a
size limit never is.

Identical calls in flight share one upstream call: in a worker, the others wait for the
first and get its answer or its error; across workers and hosts, the first to claim the key
in the store calls, and the others read its answer from the cache as soon as it is kept.
Each waits within its own deadline, never the first's: when the first fails for a reason of
its own rather than the upstream's answer to the call (its deadline passed, its worker's
connections were busy, it was cut off), a request still in time makes the call itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable

from service.clock import SYSTEM_CLOCK, Clock
from service.errors import GatewayError, UpstreamTimeout
from service.hub.images import Image
from service.hub.messages import RawBody, UpstreamRequest
from service.hub.providers.helper import InferenceCall, ProviderHelper
from service.pipeline.context import CacheDirectives, RequestContext
from service.store import FAILED, NullStore, StoreGuard
from service.store.contract import CacheLimits
from service.telemetry import metrics

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# How often a worker waiting on another worker's call looks for its answer.
POLL_SECONDS = 0.05
# Headers that differ from one request to the next without changing the answer.
VOLATILE_HEADERS = frozenset({"x-request-id"})
# A request joining a call in flight takes it over when the call failed this way and it has
# at least this much time left.
TAKE_OVER_MIN_SECONDS = POLL_SECONDS


def failed_on_its_own(error: BaseException) -> bool:
    """Whether a call's failure belongs to the request that made it, not to the call: its own
    deadline or busy connections (UpstreamTimeout), or anything that is no answer at all
    (the request was cut off). An answer about the input or the model is everyone's."""
    return isinstance(error, UpstreamTimeout) or not isinstance(error, GatewayError)


def is_deterministic(call: InferenceCall, helper: ProviderHelper) -> bool:
    """Whether the call has one right answer: greedy decoding, or a seed the caller chose that
    reaches the upstream (the translation pipeline takes none: sampled translations never are)."""
    return not call.sampling or (helper.sends_seed and call.args.get("seed") is not None)


def call_key(call: InferenceCall, request: UpstreamRequest, n: int) -> str:
    """The cache key of one upstream call: a digest of everything that decides its answer."""
    target = call.target
    identity = {
        "v": FORMAT_VERSION,
        "task": call.task_type,
        "model": target.id,
        "protocol": target.protocol,
        "provider": target.provider,
        "method": request.method,
        "url": request.url,
        "payload": request.payload,
        "headers": {
            name.lower(): value for name, value in request.headers.items() if name.lower() not in VOLATILE_HEADERS
        },
        "n": n,
        "image": request.wants_image,
    }
    if request.body is not None:  # a body forwarded as it came: its exact bytes
        identity["body"] = hashlib.sha256(request.body).hexdigest()
    canonical = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def encode_results(results: list) -> bytes:
    """Results as one value: a JSON line describing them, then the images' base64, as sent."""
    items, blobs = [], []
    for result in results:
        if isinstance(result, Image):
            data = b"".join(piece if isinstance(piece, bytes) else bytes(piece) for piece in result.base64_pieces)
            items.append({"image": result.content_type, "bytes": len(data)})
            blobs.append(data)
        elif isinstance(result, dict):  # a chat choice: its message and finish_reason
            items.append({"json": result})
        elif isinstance(result, RawBody):
            items.append({"raw": result.content_type, "bytes": len(result.data)})
            blobs.append(result.data)
        else:
            items.append({"text": result})
    head = json.dumps({"v": FORMAT_VERSION, "items": items}, ensure_ascii=False).encode("utf-8")
    return head + b"\n" + b"".join(blobs)


def decode_results(value: bytes) -> list:
    """The results a value holds; ValueError if it is not one this version wrote."""
    head, _, body = value.partition(b"\n")
    document = json.loads(head)
    if not isinstance(document, dict) or document.get("v") != FORMAT_VERSION:
        raise ValueError("not a cached answer of this version")
    results, at = [], 0
    for item in document["items"]:
        if "image" in item:
            size = int(item["bytes"])
            results.append(Image(item["image"], (body[at : at + size],)))
            at += size
        elif "json" in item:
            results.append(item["json"])
        elif "raw" in item:
            size = int(item["bytes"])
            results.append(RawBody(body[at : at + size], str(item["raw"])))
            at += size
        else:
            results.append(str(item["text"]))
    if at != len(body):
        raise ValueError("a cached answer of the wrong length")
    return results


class Flight:
    """One call in flight in this worker, that identical calls wait for. Its results are kept as
    a tuple and every caller gets a list of its own: a request that adds to its results (a
    fan-out filling in what a server left out) must not add to the others'."""

    def __init__(self):
        self.landed = threading.Event()
        self.results: tuple = ()
        self.error: BaseException | None = None

    def wait(self, seconds: float) -> list:
        """The first call's results, or its error; UpstreamTimeout if it has not landed in time."""
        if not self.landed.wait(max(0.0, seconds)):
            raise waited_too_long()
        if self.error is not None:
            raise self.error
        return list(self.results)


def waited_too_long() -> UpstreamTimeout:
    return UpstreamTimeout("the deadline passed while waiting for an identical call in flight")


class ResponseCache:
    """The cache and the coalescing of identical calls, over the guarded store."""

    def __init__(
        self,
        guard: StoreGuard | NullStore,
        limits: CacheLimits,
        max_entry_bytes: int,
        clock: Clock = SYSTEM_CLOCK,
    ):
        self.guard = guard
        self.limits = limits
        self.max_entry_bytes = max_entry_bytes
        self.clock = clock
        self._flights: dict[str, Flight] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.guard.enabled and self.limits.ttl_seconds > 0

    def through(self, key: str, compute: Callable[[], list], context: RequestContext) -> list:
        """The answer of the call `key` names: kept, being made, or made now by `compute`."""
        directives = context.cache_directives
        if not directives.lookup:
            context.cache.count(hit=False)
            return self._keep(key, compute(), directives)
        kept = self._get(key)
        if kept is not None:
            context.cache.count(hit=True)
            metrics.count_cache("hit")
            return kept
        context.cache.count(hit=False)
        metrics.count_cache("miss")
        while True:
            with self._lock:
                flight = self._flights.get(key)
                leading = flight is None
                if leading:
                    flight = self._flights[key] = Flight()
            if leading:
                return self._fly(flight, key, compute, context, directives)
            metrics.count_cache("coalesced")
            try:
                results = flight.wait(context.deadline.remaining())
            except BaseException as exc:
                taken_over = exc is flight.error and failed_on_its_own(exc)
                if taken_over and context.deadline.remaining() >= TAKE_OVER_MIN_SECONDS:
                    log.info("an identical call in flight failed on its own (%s); making it again", type(exc).__name__)
                    continue
                # The outcome of another request's call, which reports it to the target's breaker.
                context.cache.waited = True
                if taken_over:
                    raise waited_too_long() from None
                raise
            context.cache.waited = True
            return results

    def _fly(self, flight: Flight, key: str, compute: Callable[[], list], context: RequestContext, directives) -> list:
        """Make the call others in this worker wait for."""
        try:
            flight.results = tuple(self._lead(key, compute, context, directives))
            return list(flight.results)
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.landed.set()

    def _lead(self, key: str, compute: Callable[[], list], context: RequestContext, directives) -> list:
        """Make the call unless another worker is making it: then wait for its kept answer, or
        for its claim to end without one (it failed), and make the call then."""
        while not self._claim(key, context):
            if context.deadline.remaining() <= POLL_SECONDS:
                context.cache.waited = True
                raise waited_too_long()
            self.clock.sleep(POLL_SECONDS)
            kept = self._get(key)
            if kept is not None:
                context.cache.waited = True
                metrics.count_cache("coalesced")
                return kept
        try:
            return self._keep(key, compute(), directives)
        finally:  # after keeping: a worker waiting on the claim then finds the answer, not the key free
            self.guard.release(key)

    def _claim(self, key: str, context: RequestContext) -> bool:
        seconds = context.deadline.remaining() + 1.0
        claimed = self.guard.claim(key, self.clock.time(), seconds)
        return claimed is FAILED or bool(claimed)  # a store that fails: call, as without a cache

    def _get(self, key: str) -> list | None:
        value = self.guard.cache_get(key, self.clock.time())
        if value is FAILED or value is None:
            return None
        try:
            return decode_results(value)
        except (ValueError, KeyError, TypeError):
            log.warning("cache entry %s cannot be read; asking the upstream again", key[:12])
            return None

    def _keep(self, key: str, results: list, directives: CacheDirectives) -> list:
        if not directives.keep:
            return results
        value = encode_results(results)
        if len(value) > self.max_entry_bytes:
            metrics.count_cache("too_large")
            return results
        if self.guard.cache_put(key, value, self.clock.time(), self.limits) is not FAILED:
            metrics.count_cache("stored")
        return results
