"""Send one request upstream and read its answer within the deadline and a size limit, or, for
a streamed answer, its events as they come, each within its own time."""

import os
import threading
import time

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from service.errors import ConnectionsBusy, UpstreamError, UpstreamTimeout
from service.hub.deadline import Deadline
from service.hub.events import DONE, EventReader
from service.hub.images import let_others_run
from service.hub.messages import UpstreamReply, UpstreamRequest
from service.hub.socket_watchdog import WATCHDOG
from service.hub.watchdog import WATCHED_POOL_CLASSES, begin_attempt, end_attempt

READ_CHUNK_BYTES = 256 * 1024
# Text answers are a few kilobytes; anything this large is a broken upstream.
MAX_TEXT_ANSWER_BYTES = 8 * 1024 * 1024
# After [DONE], what the connection is read for before it goes back to the pool.
DRAIN_READS, DRAIN_SECONDS = 4, 0.2
_READ_FAILURES = (
    urllib3.exceptions.HTTPError,
    requests.RequestException,
    OSError,
)


class SessionPool:
    """One requests.Session per process, its keep-alive connections shared by every thread.

    Rebuilt after a fork, so gunicorn's workers never share sockets. Requests go through
    the adapter (thread-safe urllib3 pools), never through Session.request.
    """

    def __init__(self, pool_size: int):
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._session, self._pid = None, None

    def get(self) -> requests.Session:
        """Return this process's session, made anew after a fork."""
        with self._lock:
            if self._session is None or self._pid != os.getpid():
                self._session, self._pid = self._new_session(), os.getpid()
            return self._session

    def _new_session(self) -> requests.Session:
        """Build a keep-alive session; retries are the client's job, not urllib3's."""
        session = requests.Session()
        session.trust_env = False  # no proxy or netrc surprises from the environment
        # Blocking: past pool_maxsize a call waits for a free connection (within its deadline)
        # instead of opening one more that the pool would then discard.
        adapter = WatchedAdapter(pool_connections=8, pool_maxsize=self._pool_size, max_retries=0, pool_block=True)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session


class WatchedAdapter(HTTPAdapter):
    """An adapter whose connections are cut at their attempt's deadline (see watchdog.py),
    and go to the checked address of a download rather than to a fresh DNS answer."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = WATCHED_POOL_CLASSES

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        address = getattr(request, "connect_to", None)
        if address:
            if host_params["scheme"] == "https":  # TLS still names and verifies the checked host
                pool_kwargs = {
                    **pool_kwargs,
                    "server_hostname": host_params["host"],
                    "assert_hostname": host_params["host"],
                }
            host_params = {**host_params, "host": address}
        return host_params, pool_kwargs


def send(
    session: requests.Session,
    request: UpstreamRequest,
    deadline: Deadline,
    connect_timeout: float,
    max_bytes: int,
) -> UpstreamReply:
    """Send `request` and return the complete answer, or raise a retryable error."""
    remaining = _time_left(deadline)
    begin_attempt(remaining)
    try:
        return _read_reply(_answer_head(session, request, deadline, connect_timeout, remaining), deadline, max_bytes)
    finally:
        end_attempt()


def _time_left(deadline: Deadline) -> float:
    """The attempt's time, or a retryable timeout when none is left."""
    remaining = deadline.remaining()
    if remaining <= 0:
        raise UpstreamTimeout("the deadline passed before the upstream answered", retryable=True)
    return remaining


def _answer_head(
    session: requests.Session, request: UpstreamRequest, deadline: Deadline, connect_timeout: float, remaining: float
) -> requests.Response:
    """Send `request` and read the answer's head within `remaining` seconds (its body left
    unread), or raise a retryable error."""
    try:
        prepared = _prepare(session, request)
        return session.get_adapter(prepared.url).send(
            prepared, stream=True, timeout=(min(connect_timeout, remaining), remaining), verify=True, proxies={}
        )
    except urllib3.exceptions.EmptyPoolError as exc:
        raise ConnectionsBusy("no upstream connection became free before the deadline", retryable=True) from exc
    except _READ_FAILURES as exc:
        if isinstance(exc, requests.Timeout) or deadline.expired():
            raise UpstreamTimeout("the upstream did not answer within the deadline", retryable=True) from exc
        raise UpstreamError(f"could not reach the upstream ({type(exc).__name__})", retryable=True) from exc


def _prepare(session: requests.Session, request: UpstreamRequest) -> requests.PreparedRequest:
    """Build the HTTP request with requests' own steps, sent by the adapter without Session.request.

    Session.request merges cookies, hooks, auth and environment settings the service never
    uses; PreparedRequest.prepare adds the cookie, auth and hook steps: about a sixth of a
    worker's time per request went there (py-spy).
    """
    prepared = requests.PreparedRequest()
    prepared.prepare_method(request.method)
    prepared.prepare_url(request.url, None)
    prepared.prepare_headers({**session.headers, **request.headers})
    prepared.prepare_body(request.body, None, request.payload)
    prepared.connect_to = request.connect_to  # read by WatchedAdapter when it picks a pool
    return prepared


def _read_reply(response: requests.Response, deadline: Deadline, max_bytes: int) -> UpstreamReply:
    """Read the body in chunks, cutting it at the deadline or the size limit."""
    try:
        body = _read_body(response, deadline, max_bytes)
    except BaseException:
        end_attempt()
        response.close()  # the connection is in an unknown state: never reuse it
        raise
    end_attempt()  # before the connection can serve another thread's request
    response.raw.release_conn()
    headers = {name.lower(): value for name, value in response.headers.items()}
    return UpstreamReply(status=response.status_code, headers=headers, body=body)


def _read_body(response: requests.Response, deadline: Deadline, max_bytes: int) -> bytes:
    """Collect the body; every read is bounded by the time left, not only per read."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    sock = _socket_of(response)
    chunks, size = [], 0
    while True:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise UpstreamTimeout("the deadline passed while the upstream was still sending", retryable=True)
        _bound_next_read(sock, remaining)
        chunk = _read_chunk(response, deadline)
        if not chunk and deadline.expired():
            # The watchdog shut the socket down: that end of file is not the body's end.
            raise UpstreamTimeout("the deadline passed while the upstream was still sending", retryable=True)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
        let_others_run()  # a fast upstream never makes a read wait: give the other requests a turn


def _bound_next_read(sock, remaining: float) -> None:
    """Let the next read wait no longer than the time left (the watchdog bounds the whole exchange)."""
    if sock is None:
        return
    try:
        sock.settimeout(remaining)
    except OSError as exc:  # the socket was shut or closed under us: the connection is broken
        raise UpstreamError(f"the upstream connection broke mid-answer ({type(exc).__name__})", retryable=True) from exc


def _read_chunk(response: requests.Response, deadline: Deadline) -> bytes:
    """Read what has arrived (up to one chunk), translating transport failures."""
    try:
        return response.raw.read1(READ_CHUNK_BYTES, decode_content=True)
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
        raise UpstreamTimeout("the deadline passed while the upstream was still sending", retryable=True) from exc
    except _READ_FAILURES as exc:
        if deadline.expired():
            raise UpstreamTimeout("the deadline passed while the upstream was still sending", retryable=True) from exc
        raise UpstreamError(f"the upstream connection broke mid-answer ({type(exc).__name__})", retryable=True) from exc


def _socket_of(response: requests.Response):
    """Return the socket under a streamed response, to bound each read by the deadline."""
    connection = getattr(response.raw, "connection", None)
    return getattr(connection, "sock", None)


def _too_large(max_bytes: int) -> UpstreamError:
    """Describe an answer larger than the service accepts."""
    return UpstreamError(f"the upstream answer is larger than the {max_bytes}-byte limit")


def open_stream(
    session: requests.Session,
    request: UpstreamRequest,
    deadline: Deadline,
    connect_timeout: float,
    idle_seconds: float,
    end: Deadline,
) -> "UpstreamReply | UpstreamStream":
    """Send `request` for a streamed answer: an error status is read whole (an UpstreamReply),
    a success left open, its events read as they come (an UpstreamStream)."""
    remaining = _time_left(deadline)
    begin_attempt(remaining)
    try:
        response = _answer_head(session, request, deadline, connect_timeout, remaining)
        if not 200 <= response.status_code < 300:
            return _read_reply(response, deadline, MAX_TEXT_ANSWER_BYTES)
    finally:
        end_attempt()  # from here each read of the stream is watched on its own
    return UpstreamStream(response, deadline, idle_seconds, end)


class UpstreamStream:
    """A streamed answer still arriving: its events' data as each completes, the first by the
    request's deadline, each next within `idle_seconds` of the one before, all by `end`.

    Every read is bounded twice: the socket's timeout (a silent upstream) and the watchdog (an
    upstream trickling a byte at a time). `close` drops the connection unless the answer was
    read to its end, so that an upstream whose caller left stops generating.
    """

    def __init__(self, response: requests.Response, first_deadline: Deadline, idle_seconds: float, end: Deadline):
        self.status = response.status_code
        self.headers = {name.lower(): value for name, value in response.headers.items()}
        self.done = False  # the upstream said [DONE]
        self._response = response
        self._sock = _socket_of(response)
        self._idle_seconds = idle_seconds
        self._due, self._first = first_deadline, True
        self._end = end
        self._reader = EventReader(MAX_TEXT_ANSWER_BYTES)
        self._pending: list[str] = []
        self._ended = False  # the body ended
        self._closed = False

    def peek(self) -> str | None:
        """The data of the next event without taking it; None when the answer has ended."""
        while not self._pending and not self._ended and not self.done:
            self._pending = self._read_events()
        return self._pending[0] if self._pending else None

    def events(self):
        """Yield the data of every event up to `[DONE]` (not yielded) or the body's end."""
        while self.peek() is not None:
            data = self._pending.pop(0)
            if data == DONE:
                self.done, self._pending = True, []
                return
            yield data

    def close(self) -> None:
        """Let go of the connection: back to the pool after a whole answer, else dropped."""
        if self._closed:
            return
        self._closed = True
        if self.done and not self._ended:
            self._drain()
        if self._ended:
            self._response.raw.release_conn()
        else:
            self._response.close()

    def _drain(self) -> None:
        """Read the little a server sends after [DONE] (the body's last chunk), so that the
        connection can serve the next request; one that sends more, or nothing, is dropped."""
        try:
            for _ in range(DRAIN_READS):
                if not self._read_within(DRAIN_SECONDS):
                    self._ended = True
                    return
        except (UpstreamError, UpstreamTimeout):
            return

    def _read_events(self) -> list[str]:
        """Read until at least one event is complete, or the body ends."""
        while True:
            chunk = self._read_within(self._time_left())
            if not chunk:
                self._ended = True
                rest = self._reader.rest()
                return [rest] if rest is not None else []
            try:
                events = self._reader.feed(chunk)
            except ValueError as exc:
                raise UpstreamError(f"the upstream stream is broken: {exc}") from exc
            if events:
                self._due, self._first = self._due.of_seconds(self._idle_seconds), False
                return events
            let_others_run()

    def _time_left(self) -> float:
        """Seconds the next read may wait: until the next event is due, and never past the end."""
        if self._end.expired() or self._due.expired():
            raise self._bound_passed()
        return min(self._due.remaining(), self._end.remaining())

    def _bound_passed(self) -> UpstreamTimeout:
        """The error of the bound the read waited for: the stream's end, else the next event's time."""
        if self._end.remaining() <= self._due.remaining():
            return UpstreamTimeout("the stream ran longer than STREAM_MAX_SECONDS allow")
        if self._first:
            return UpstreamTimeout("the deadline passed before the upstream's first chunk", retryable=True)
        return UpstreamTimeout(f"the upstream sent nothing for {self._idle_seconds:g} s (STREAM_IDLE_SECONDS)")

    def _read_within(self, seconds: float) -> bytes:
        """Read what has arrived, waiting at most `seconds`; b"" at the body's end."""
        key = WATCHDOG.watch(self._sock, time.monotonic() + seconds) if self._sock is not None else None
        failure = None
        try:
            _bound_next_read(self._sock, seconds)
            chunk = _read_chunk(self._response, self._due)
        except (UpstreamError, UpstreamTimeout) as exc:  # silent, broken, or shut by the watchdog
            chunk, failure = b"", exc
        finally:
            cut = key is not None and not WATCHDOG.release(key)
        if cut or isinstance(failure, UpstreamTimeout):
            raise self._bound_passed() from failure
        if failure is not None:
            raise failure
        return chunk
