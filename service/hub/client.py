"""The Hub client: sends upstream requests with auth, deadlines and retries."""

import logging
import socket
import time
from dataclasses import replace

from service.clock import SYSTEM_CLOCK, Clock
from service.errors import UpstreamAuthError, UpstreamError
from service.hub import transport
from service.hub.deadline import Deadline
from service.hub.downloads import ImageLink, check_download
from service.hub.images import Image, image_from_reply
from service.hub.messages import CallContext, UpstreamReply, UpstreamRequest
from service.hub.retry import upstream_retrying
from service.hub.status import missing_token_hint, raise_for_download_status, raise_for_event, raise_for_status
from service.telemetry import metrics

log = logging.getLogger(__name__)


class HubClient:
    """Speaks HTTP to the upstream; one instance per app, safe across threads and forks."""

    def __init__(self, settings, clock: Clock = SYSTEM_CLOCK, resolver=socket.getaddrinfo):
        self.settings = settings
        self.sessions = transport.SessionPool(settings.upstream_pool_size)
        self.clock = clock
        self.resolver = resolver  # getaddrinfo's shape: what a download's host name stands for
        # Built once: making a Retrying per call costs as much as a small request under gevent.
        self._retrying = upstream_retrying(before_sleep=self._report_retry, sleep=self.pause)

    def call(self, request: UpstreamRequest, context: CallContext) -> UpstreamReply:
        """Send `request`, retrying transient failures until it succeeds or the deadline passes."""
        request = self._with_service_headers(request, context.request_id)
        try:
            reply = self._retrying(self._attempt, request=request, context=context, deadline=context.deadline)
        except Exception as exc:
            metrics.count_upstream_outcome(metrics.GIVE_UP, metrics.upstream_failure_reason(exc))
            raise
        metrics.count_upstream_outcome(metrics.SUCCESS)
        return reply

    def open_stream(
        self, request: UpstreamRequest, context: CallContext, idle_seconds: float, end: Deadline
    ) -> transport.UpstreamStream:
        """Send `request` for a streamed answer and read up to its first event, retrying as
        `call` does: until then a stream is an ordinary call (loading, rate limits, an error
        status, an error event first). The caller closes the stream it gets."""
        request = self._with_service_headers(request, context.request_id)
        try:
            stream = self._retrying(
                self._attempt_stream,
                request=request,
                context=context,
                deadline=context.deadline,
                idle_seconds=idle_seconds,
                end=end,
            )
        except Exception as exc:
            metrics.count_upstream_outcome(metrics.GIVE_UP, metrics.upstream_failure_reason(exc))
            raise
        metrics.count_upstream_outcome(metrics.SUCCESS)
        return stream

    def ask_once(self, request: UpstreamRequest, context: CallContext) -> UpstreamReply:
        """Send `request` once, without retries and outside the upstream attempt metrics: for
        lookups on the Hub whose answer can wait for the next one."""
        return self._exchange(self._with_service_headers(request, context.request_id), context.deadline)

    def download_image(self, link: ImageLink, allowed_hosts: tuple, context: CallContext) -> Image:
        """Fetch an image a provider left at a URL: allowed public hosts only, within deadline and size."""
        checked = check_download(link.url, allowed_hosts, self.resolver)
        headers = {"Accept": "image/*", "Host": checked.host_header}
        request = UpstreamRequest(
            url=checked.url,
            payload=None,
            method="GET",
            headers=headers,
            wants_image=True,
            to_hub=False,
            connect_to=checked.address,
            credential=None,
        )
        return image_from_reply(self.call(request, context))

    def pause(self, seconds: float) -> None:
        """Wait between attempts or polls, on the client's clock."""
        self.clock.sleep(seconds)

    def _report_retry(self, retry_state) -> None:
        """Count and log a retry about to wait."""
        exc = retry_state.outcome.exception()
        metrics.count_upstream_outcome(metrics.RETRY, metrics.upstream_failure_reason(exc))
        log.info(
            "upstream retry request_id=%s attempt=%d reason=%s wait=%.2fs",
            retry_state.kwargs["context"].request_id,
            retry_state.attempt_number,
            getattr(exc, "error_type", type(exc).__name__),
            retry_state.upcoming_sleep,
        )

    def _attempt(self, request: UpstreamRequest, context: CallContext, deadline) -> UpstreamReply:
        """Make one HTTP exchange and raise for an error status."""
        started = time.monotonic()
        try:
            return self._exchange(request, deadline)
        finally:
            seconds = time.monotonic() - started
            context.usage.record_attempt(seconds)
            metrics.record_upstream_attempt(seconds)

    def _attempt_stream(
        self, request: UpstreamRequest, context: CallContext, deadline, idle_seconds: float, end: Deadline
    ) -> transport.UpstreamStream:
        """Open one streamed exchange, raising for an error status or an error as its first event."""
        started = time.monotonic()
        try:
            opened = transport.open_stream(
                self.sessions.get(), request, deadline, self.settings.connect_timeout, idle_seconds, end
            )
            if isinstance(opened, UpstreamReply):
                raise_for_status(opened, has_token="Authorization" in request.headers)
                raise UpstreamError(f"the upstream answered HTTP {opened.status} without a stream")
            try:
                first = opened.peek()
                if first is None:
                    raise UpstreamError("the upstream ended its stream before the first chunk", retryable=True)
                raise_for_event(first)
            except BaseException:
                opened.close()
                raise
            return opened
        finally:
            seconds = time.monotonic() - started
            context.usage.record_attempt(seconds)
            metrics.record_upstream_attempt(seconds)

    def _exchange(self, request: UpstreamRequest, deadline) -> UpstreamReply:
        """Send one request and read its answer, raising for an error status."""
        limit = self.settings.max_image_bytes if request.wants_image else transport.MAX_TEXT_ANSWER_BYTES
        reply = transport.send(self.sessions.get(), request, deadline, self.settings.connect_timeout, limit)
        if request.to_hub:
            raise_for_status(reply, has_token="Authorization" in request.headers)
        else:
            raise_for_download_status(reply)
        return reply

    def _with_service_headers(self, request: UpstreamRequest, request_id: str) -> UpstreamRequest:
        """Add the token and the request id; the caller's headers never reach the upstream.

        A request whose token is required but not configured is refused here, at once: it
        could only come back 401 after the whole retry budget.
        """
        if not request.to_hub:
            return request
        headers = {"Accept": "application/json", "X-Request-ID": request_id, **request.headers}
        token = self.settings.token(request.credential) if request.credential else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif request.credential and request.credential_required:
            raise UpstreamAuthError(missing_token_hint(request.credential))
        return replace(request, headers=headers)
