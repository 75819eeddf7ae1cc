"""Run one task: pick the model from the route, fan out for several results, fall back."""

import logging
import os
import random
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

from service.catalog import ModelTarget, Route
from service.catalog.tasks import MAX_SEED
from service.clock import SYSTEM_CLOCK, Clock
from service.errors import (
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    ModelUnavailable,
    UnreadableAnswer,
    UpstreamError,
    UpstreamTimeout,
)
from service.hub.client import HubClient
from service.hub.deadline import Deadline
from service.hub.downloads import ImageLink
from service.hub.providers import Providers
from service.hub.providers.helper import InferenceCall, ProviderHelper
from service.keys.keyring import OPEN_ACCESS_NAME
from service.pipeline.breakers import OPEN_SERVICE, Breakers, Caller
from service.pipeline.cache import ResponseCache, call_key, is_deterministic
from service.pipeline.context import RequestContext
from service.pipeline.model_tasks import ModelTasks

log = logging.getLogger(__name__)
# Errors that say "this model, here, now" rather than "this input": worth the next target.
_FALL_BACK_ON = (ModelNotFound, ModelUnavailable, UpstreamTimeout)


@dataclass(frozen=True)
class InferenceResult:
    """What a task produced, and which model produced it."""

    model: str
    results: list


class ChunkStream:
    """A streamed answer's chunks (`{"choices": [...]}`, as the provider streams them), read
    from upstream as the caller takes them. Closing it closes the upstream stream and books
    the tokens the upstream's usage chunk reported; an upstream that stops without saying it
    has finished raises, so a cut is never taken for a whole answer."""

    def __init__(self, helper: ProviderHelper, upstream, context: RequestContext):
        self._helper = helper
        self._upstream = upstream
        self._usage = context.usage
        self._tokens: tuple[int, int] | None = None
        self._finished = False  # a choice said its finish_reason
        self._chunks = self._read()
        self._first = None
        self._closed = False

    @property
    def tokens(self) -> tuple[int, int] | None:
        """The (prompt, completion) tokens the upstream reported so far, None when it has not."""
        return self._tokens

    def start(self) -> None:
        """Read up to the first chunk, so that a failure before it is an ordinary error."""
        self._first = next(self._chunks, None)

    def __len__(self) -> int:
        """A stream answers one choice."""
        return 1

    def __iter__(self):
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._chunks

    def close(self) -> None:
        """Close the upstream stream (at once, when the caller left), and book its tokens once."""
        if self._closed:
            return
        self._closed = True
        self._chunks.close()
        self._upstream.close()
        if self._tokens is not None:
            self._usage.record_tokens(*self._tokens)

    def _read(self):
        for data in self._upstream.events():
            chunk, tokens = self._helper.stream_chunk(data)
            if tokens is not None:
                self._tokens = tokens  # the last report is the whole stream's
            if chunk is not None:
                self._finished = self._finished or any(choice.get("finish_reason") for choice in chunk["choices"])
                yield chunk
        if not (self._upstream.done or self._finished):
            raise UpstreamError("the upstream stream ended before the answer did")


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
    """Turns a validated request into results, through the provider helpers and the Hub client,
    past the answer cache and the targets' circuit breakers."""

    def __init__(
        self,
        client: HubClient,
        catalog,
        settings,
        cache: ResponseCache,
        breakers: Breakers,
        providers: Providers,
        configured_keys: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ):
        self.client = client
        self.catalog = catalog
        self.settings = settings
        self.cache = cache
        self.breakers = breakers
        self.providers = providers
        # How many keys may call (None: no key ring to count), for the breakers' count of callers.
        self.configured_keys = configured_keys
        self.pool = FanOutPool(settings.fanout_workers)
        self.model_tasks = ModelTasks(settings, catalog, client, clock.monotonic)

    def check_serves(self, route: Route, stream: bool = False) -> None:
        """Refuse, before any upstream call, a model a caller named for a task it cannot serve,
        and a streamed answer of a task whose answers are not streamed."""
        for target in route.targets:
            helper = self.providers.helper_for(target, route.task_type)
            if helper is None:
                raise InvalidRequest(
                    f"model_name: {self.providers.cannot_serve(target, route.task_type)}",
                    errors={"model_name": [f"Cannot serve {route.task_type}."]},
                )
            if stream and not hasattr(helper, "stream_request"):
                raise InvalidRequest(
                    f"stream: {route.task_type} answers are not streamed; leave stream out or false",
                    errors={"stream": ["Not streamed for this task."]},
                )
        if route.named:
            self.model_tasks.check_configured(route.targets[0], route.task_type)

    def run(
        self, route: Route, inputs: str, args: dict, context: RequestContext, stream_end: Deadline | None = None
    ) -> InferenceResult:
        """Try the route's targets in order until one answers, each within its share of the time;
        a target whose breaker is open is skipped at once. A model the caller named is checked
        against the Hub's word first: after admission, so a key's limits bound the lookups too.
        With `stream_end` the answer is streamed (ending by then): a target answers once its
        first chunk has come, and the results are a ChunkStream."""
        if route.named:
            self.model_tasks.check(route.targets[0], route.task_type)
        skipped, caller = [], self._caller(context)
        for position, target in enumerate(route.targets):
            gate = self.breakers.gate(target, probe_seconds=self.settings.breaker_probe_seconds + 1.0, caller=caller)
            if not gate.passes:
                skipped.append(gate.retry_after)
                continue
            context.model = target.id  # a request no model answers is booked under the last one tried
            later = route.targets[position + 1 :]
            targets_left = 1 + sum(not self.breakers.is_open(other) for other in later)
            call = self._call(route, target, inputs, args)
            share = context.for_target(self._share(context, targets_left, gate.probe))
            try:
                results = self._run_target(call, share) if stream_end is None else self._stream(call, share, stream_end)
            except GatewayError as exc:
                self.breakers.judge(target, gate, exc, share.cache.waited, caller, named_by_caller=route.named)
                if not isinstance(exc, _FALL_BACK_ON) or targets_left == 1 or context.deadline.expired():
                    raise
                log.warning("fallback request_id=%s from=%s reason=%s", context.request_id, target.id, exc.error_type)
                continue
            self.breakers.succeeded(target, gate)
            context.cache = share.cache
            return InferenceResult(model=target.id, results=results)
        raise ModelUnavailable(
            "every model that can serve this request is failing; its circuit breaker is open",
            retry_after=min(skipped),
        )

    def _share(self, context: RequestContext, targets_left: int, probe: bool) -> Deadline:
        """One target's time: its share of what is left, and no more than a probe's own time for a
        probe, so that a slow answer to one request never holds an open breaker's target for long."""
        share = context.deadline.share(targets_left)
        if probe and share.remaining() > self.settings.breaker_probe_seconds:
            return share.of_seconds(self.settings.breaker_probe_seconds)
        return share

    def _caller(self, context: RequestContext) -> Caller:
        """The request's key as the breakers count callers: with keys configured, a breaker opens on
        failures of BREAKER_MIN_KEYS keys (all of them, when fewer are configured)."""
        key = context.client_key
        if key is None or key.name == OPEN_ACCESS_NAME:
            return OPEN_SERVICE
        if self.configured_keys is None:
            return Caller(key.name, self.settings.breaker_min_keys)
        return Caller(key.name, max(1, min(self.settings.breaker_min_keys, self.configured_keys)))

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

    def _run_target(self, call: InferenceCall, context: RequestContext) -> list:
        """Get `num_sentences` results from one model."""
        count = call.args["num_sentences"]
        helper = self.providers.helper_for(call.target, call.task_type)
        if not call.sampling:
            # Greedy decoding gives the same answer every time: ask once, repeat it.
            return self._ask(helper, call, None, 1, context) * count
        if helper.asks_for_n:
            results = self._ask(helper, call, call.args.get("seed"), count, context)
            if len(results) < count:
                # Some servers ignore `n`: fill in with one call per missing result.
                first = call.args.get("seed")
                seeds = _seeds(None if first is None else first + len(results), count - len(results))
                results += self._fan_out(helper, call, seeds, context)
            return results
        if count == 1:
            return self._ask(helper, call, call.args.get("seed"), 1, context)
        return self._fan_out(helper, call, _seeds(call.args.get("seed"), count), context)

    def _stream(self, call: InferenceCall, context: RequestContext, end: Deadline) -> "ChunkStream":
        """One streamed choice from one model, neither cached nor joined to another call: open
        once its first chunk has come."""
        helper = self.providers.helper_for(call.target, call.task_type)
        context.cache.count(hit=False)
        request = helper.stream_request(call)
        upstream = self.client.open_stream(request, context, self.settings.stream_idle_seconds, end)
        chunks = ChunkStream(helper, upstream, context)
        try:
            chunks.start()
        except BaseException:
            chunks.close()
            raise
        return chunks

    def _ask(self, helper: ProviderHelper, call: InferenceCall, seed, n: int, context: RequestContext) -> list:
        """One upstream call's results: from the cache when the call is deterministic, else asked."""
        request = helper.request(call, seed, n)
        if not (self.cache.enabled and is_deterministic(call, helper)):
            context.cache.count(hit=False)
            return self._ask_upstream(helper, call, request, n, context)
        key = call_key(call, request, n)
        return self.cache.through(key, lambda: self._ask_upstream(helper, call, request, n, context), context)

    def _ask_upstream(self, helper: ProviderHelper, call: InferenceCall, request, n: int, context: RequestContext):
        """Make one (retried) upstream call, wait for the provider to finish, read its results."""
        reply = self._until_finished(helper, call, request, self.client.call(request, context), context)
        results = [self._fetch(result, context) for result in _read(helper, call, reply, n)]
        context.usage.record_tokens(*helper.tokens(reply))
        return results

    def _until_finished(self, helper: ProviderHelper, call: InferenceCall, sent, reply, context: RequestContext):
        """Poll a provider that answered before it finished, as long as the deadline allows."""
        while (poll := helper.next_poll(call, reply, sent)) is not None:
            remaining = context.deadline.remaining()
            if remaining <= poll.after_seconds:
                self.client.pause(remaining)  # the answer may still come: wait the whole deadline
                raise UpstreamTimeout(f"{helper.provider} had not finished when the deadline passed")
            self.client.pause(poll.after_seconds)
            sent, reply = poll.request, self.client.call(poll.request, context)
        return reply

    def _fetch(self, result, context: RequestContext):
        """Download an image a provider answered with a link; pass other results through."""
        if not isinstance(result, ImageLink):
            return result
        allowed = result.hosts or self.catalog.download_hosts.get(result.provider, ())
        return self.client.download_image(result, allowed, context)

    def _fan_out(self, helper: ProviderHelper, call: InferenceCall, seeds: list, context: RequestContext) -> list:
        """Make one call per seed concurrently, at most FANOUT_CONCURRENCY at a time."""
        gate = threading.BoundedSemaphore(self.settings.fanout_concurrency)

        def one(seed):
            try:
                return self._ask(helper, call, seed, 1, context)[0]
            finally:
                gate.release()

        # The gate is taken before submitting, so waiting calls never hold a pool thread.
        futures = []
        for seed in seeds:
            if not gate.acquire(timeout=context.deadline.remaining()):
                break
            futures.append(self.pool.get().submit(one, seed))
        done, pending = wait(futures, timeout=context.deadline.remaining() + 1.0, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future in done and future.exception() is not None:
                _cancel(pending)
                raise future.exception()
        if pending or len(futures) < len(seeds):
            _cancel(pending)
            raise UpstreamTimeout("the deadline passed while waiting for the upstream")
        return [future.result() for future in futures]


def _read(helper: ProviderHelper, call: InferenceCall, reply, n: int) -> list:
    """The results of an answer; an answer the task cannot read is an UnreadableAnswer (which
    counts against a target of a chain, not against a model the caller named)."""
    try:
        return helper.parse(call, reply, n)
    except UnreadableAnswer:
        raise
    except UpstreamError as exc:
        raise UnreadableAnswer(exc.message) from exc


def _seeds(seed: int | None, count: int) -> list:
    """Give each call its own seed: consecutive from the caller's, else random."""
    if seed is not None:
        return [(seed + offset) % (MAX_SEED + 1) for offset in range(count)]
    return [random.randint(0, 2**31 - 1) for _ in range(count)]


def _cancel(futures) -> None:
    """Cancel calls that have not started; running ones end at their deadline."""
    for future in futures:
        future.cancel()
