"""gunicorn's gevent and gthread workers, answering the errors gunicorn raises itself in the
service's JSON shape (a request line too long, headers too large, a malformed request, headers
too slow), and giving a request's headers a time of their own.

A connection waits up to KEEPALIVE_SECONDS for the first byte of a request (nginx keeps its
upstream connections open between requests); from that byte on, the request's headers have
HEADER_TIMEOUT_SECONDS to arrive whole, however slowly they trickle, or the caller gets a
`408` and the connection is closed. A caller that starts a request and stops holds a
connection for seconds, not for the keep-alive time.
"""

import contextlib
import functools
import io
import json
import logging
import selectors
import socket
import ssl
import time
import uuid

import gevent
from gunicorn.http import errors as http_errors
from gunicorn.workers.ggevent import GeventWorker as _GeventWorker
from gunicorn.workers.gthread import _DEFER, DEFAULT_WORKER_DATA_TIMEOUT
from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker

from service.errors import HeadersTooLarge, InvalidRequest, RequestTimeout, UriTooLong
from service.hub.socket_watchdog import WATCHDOG
from service.serving.configuration import accepted
from service.settings import Settings

log = logging.getLogger("gunicorn.error")


class HeadersTooSlow(Exception):
    """A request's headers did not arrive whole within HEADER_TIMEOUT_SECONDS of its first byte."""


# What gunicorn refuses before the app sees a request, in the service's vocabulary. The
# messages are fixed: what the caller sent is never echoed (it may hold a key).
_PARSE_ERRORS = (
    (
        http_errors.LimitRequestLine,
        UriTooLong,
        "the request line is longer than the service accepts; send long inputs in the body",
    ),
    (http_errors.LimitRequestHeaders, HeadersTooLarge, "the request headers are too many or too large"),
    (http_errors.ParseException, InvalidRequest, "the request is not valid HTTP/1.1"),
    (
        HeadersTooSlow,
        RequestTimeout,
        "the request headers did not arrive in time (HEADER_TIMEOUT_SECONDS); send a request whole",
    ),
)
# As gunicorn's gthread worker: a stopping worker keeps idle connections this long, for a
# request a client may already be sending.
STOP_KEEPALIVE_LINGER = 2.0
STOP_CHECK_SECONDS = 0.2
_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


def error_bytes(status: int, error_type: str, message: str, request_id: str) -> bytes:
    """Return a whole HTTP/1.1 answer in the documented error shape; the connection is closed after it."""
    body = json.dumps({"code": status, "error_type": error_type, "message": message, "request_id": request_id}).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        "Connection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Request-ID: {request_id}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def header_timeout() -> float:
    """HEADER_TIMEOUT_SECONDS of the configuration the master accepted (read when there is none)."""
    configuration = accepted()
    return (configuration.settings if configuration else Settings.from_env()).header_timeout


class JsonErrors:
    """Answer gunicorn's own refusals in the JSON error shape, with a request id."""

    def handle_error(self, req, client, addr, exc):
        request_id = uuid.uuid4().hex
        refusal = next(((error, message) for kind, error, message in _PARSE_ERRORS if isinstance(exc, kind)), None)
        if refusal:
            error, message = refusal
            status, error_type = error.status_code, error.error_type
            log.warning("refused request request_id=%s status=%d reason=%s", request_id, status, type(exc).__name__)
        else:  # not the caller's fault: logged with its traceback, shown as internal_error
            log.exception("error handling request request_id=%s", request_id)
            status, error_type = 500, "internal_error"
            message = "internal error; quote the request_id when reporting it"
        try:
            client.sendall(error_bytes(status, error_type, message, request_id))
        except OSError:
            pass


class HeaderClock:
    """A connection's socket under gevent, timing a request's headers from their first byte.

    Between requests the connection waits for a first byte under the keep-alive timer; the
    first bytes to arrive replace it with the header timer, which raises HeadersTooSlow in
    the connection's greenlet. Everything else is the socket's own.
    """

    def __init__(self, sock, header_seconds: float):
        self._sock = sock
        self._header_seconds = header_seconds
        self._idle = None  # the keep-alive timer, while no byte of the next request has come
        self._headers = None  # the header timer, once one has

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def recv(self, *args):
        data = self._sock.recv(*args)
        if data and self._idle is not None:
            self._idle.close()
            self._idle = None
            self._headers = gevent.Timeout(self._header_seconds, HeadersTooSlow())
            self._headers.start()
        return data

    def close_if_idle(self, greenlet) -> None:
        """End a wait for a next request that has no byte yet (the connection just closes)."""
        if self._idle is not None:
            greenlet.kill(self._idle, block=False)

    @contextlib.contextmanager
    def awaiting_request(self, keepalive: float):
        """Time the wait for a request and its headers: an idle wait that ends closes quietly."""
        self._idle = gevent.Timeout(keepalive)
        self._idle.start()
        try:
            yield self._idle
        except gevent.Timeout as exc:
            if exc is not self._idle:
                raise
        finally:
            for timer in (self._idle, self._headers):
                if timer is not None:
                    timer.close()
            self._idle = self._headers = None


class GeventWorker(JsonErrors, _GeventWorker):
    """Greenlets: thousands of requests waiting on the upstream per worker (the default).

    On a graceful stop gunicorn would also wait for every kept-alive connection to go idle
    for KEEPALIVE_SECONDS (nginx keeps them open): they are closed instead, a moment after
    the stop, as the gthread worker does; requests in flight, and requests whose headers are
    arriving, still finish.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._header_seconds = header_timeout()
        self._clocks = {}  # handler greenlet -> the clock of its connection

    def handle(self, listener, client, addr):
        if isinstance(client, ssl.SSLSocket):  # never the service's set-up (nginx ends TLS): as gunicorn
            return super().handle(listener, client, addr)
        clock = HeaderClock(client, self._header_seconds)
        greenlet = gevent.getcurrent()
        self._clocks[greenlet] = clock
        try:
            return super().handle(listener, clock, addr)
        finally:
            self._clocks.pop(greenlet, None)

    @contextlib.contextmanager
    def timeout_ctx(self):
        """Wait at most KEEPALIVE_SECONDS for a request, then HEADER_TIMEOUT_SECONDS for its headers."""
        clock = self._clocks.get(gevent.getcurrent())
        if clock is None:
            with gevent.Timeout(self.cfg.keepalive, False):
                yield
            return
        with clock.awaiting_request(self.cfg.keepalive):
            yield

    def run(self):
        gevent.spawn(self._close_idle_connections_when_stopping)
        super().run()

    def _close_idle_connections_when_stopping(self) -> None:
        """Once stopping, end the waits for a next request (a request already arriving gets its moment)."""
        while self.alive:
            gevent.sleep(STOP_CHECK_SECONDS)
        gevent.sleep(STOP_KEEPALIVE_LINGER)
        for greenlet, clock in list(self._clocks.items()):
            clock.close_if_idle(greenlet)


class ThreadWorker(JsonErrors, _ThreadWorker):
    """A thread per request in flight (WORKER_CLASS=gthread).

    gunicorn hands a connection to a thread once bytes of a request are there, and the thread
    would block reading its headers. Here the thread takes what has arrived without waiting:
    until the whole head is in, the connection goes back to the poller, holding no thread,
    and at HEADER_TIMEOUT_SECONDS from its first byte the caller gets a 408. The watchdog
    still bounds the parse of a head taken whole.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._header_seconds = header_timeout()
        self._heads_arriving = {}  # connection -> the monotonic time its head must be in by

    def handle(self, conn):
        if not conn.initialized:
            if not conn.wait_for_data(DEFAULT_WORKER_DATA_TIMEOUT):
                return _DEFER  # nothing sent yet: it waits on the poller, as in gunicorn
            try:
                conn.sock.setblocking(True)
                conn.init()
            except OSError:
                return False
        if conn.is_http2:
            return super().handle(conn)
        if conn.head_deadline is None:
            conn.head_deadline = time.monotonic() + self._header_seconds
        if not _whole_head_buffered(conn):
            if time.monotonic() < conn.head_deadline:
                return _HEAD_ARRIVING
            conn.sock.setblocking(True)
            self.handle_error(None, conn.sock, conn.client, HeadersTooSlow())
            return False
        return self._handle_whole_head(conn)

    def _handle_whole_head(self, conn):
        """Parse and serve a request whose head is in (its parse is bounded too, from now: a head
        that came whole just in time must not lose its body to a cut)."""
        expires_at = time.monotonic() + self._header_seconds
        conn.header_watch = WATCHDOG.watch(conn.sock, expires_at, socket.SHUT_RD)
        conn.head_deadline = None  # the next request on the connection has a clock of its own
        try:
            keep = super().handle(conn)
        except BaseException:
            WATCHDOG.release(conn.header_watch)
            raise
        if conn.header_watch is not None and not WATCHDOG.release(conn.header_watch):
            # Cut while the headers were being read: the read side is shut, the answer can go out.
            self.handle_error(None, conn.sock, conn.client, HeadersTooSlow())
            return False
        return keep

    def handle_request(self, req, conn):
        WATCHDOG.release(conn.header_watch)  # the headers are in: the body has its own deadline
        conn.header_watch = None
        return super().handle_request(req, conn)

    def enqueue_req(self, conn):
        if not hasattr(conn, "head_deadline"):
            conn.head_deadline = conn.header_watch = None
        super().enqueue_req(conn)

    def finish_request(self, conn, fs):
        """A head still arriving waits on the poller for its next bytes, holding no thread (a
        stopping worker too: it waits for the head until its deadline, as for a body)."""
        arriving = not fs.cancelled() and fs.exception() is None and fs.result() is _HEAD_ARRIVING
        if not arriving:
            return super().finish_request(conn, fs)
        conn.sock.setblocking(False)
        self._heads_arriving[conn] = conn.head_deadline
        self.poller.register(conn.sock, selectors.EVENT_READ, functools.partial(self._more_of_a_head, conn))
        return None

    def _more_of_a_head(self, conn, client) -> None:
        self.poller.unregister(client)
        del self._heads_arriving[conn]
        self.enqueue_req(conn)

    def murder_pending(self):
        """Also answer 408 to the heads past their deadline, and close them."""
        super().murder_pending()
        now = time.monotonic()
        for conn, deadline in list(self._heads_arriving.items()):
            if deadline > now:
                continue
            del self._heads_arriving[conn]
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.poller.unregister(conn.sock)
            self.nr_conns -= 1
            # A few hundred bytes into an empty send buffer: the non-blocking socket takes them.
            self.handle_error(None, conn.sock, conn.client, HeadersTooSlow())
            conn.close()


# What ThreadWorker.handle returns for a connection whose head is not all in yet.
_HEAD_ARRIVING = object()
# Past this many bytes with no end, a head is left to gunicorn's own parse (which refuses one
# over its limits), bounded by the watchdog: it keeps each look at the buffer cheap.
_LONGEST_HEAD = 64 * 1024


def _whole_head_buffered(conn) -> bool:
    """Read what has arrived without waiting, into the parser's buffer; tell whether the head is in.

    An end of file or an error counts as in: gunicorn's parser then ends the connection its way.
    """
    buffered = conn.parser.unreader.buf
    while True:
        held = buffered.getvalue()
        if b"\r\n\r\n" in held or b"\n\n" in held or len(held) > _LONGEST_HEAD:
            return True
        try:
            data = conn.sock.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if not data:
            return True
        buffered.seek(0, io.SEEK_END)
        buffered.write(data)
