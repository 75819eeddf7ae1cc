"""gunicorn's gevent and gthread workers, answering the errors gunicorn raises itself in the
service's JSON shape (a request line too long, headers too large, a malformed request)."""

import contextlib
import json
import logging
import socket
import time
import uuid

import gevent
from gunicorn.http import errors as http_errors
from gunicorn.workers.ggevent import GeventWorker as _GeventWorker
from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker

from service.errors import HeadersTooLarge, InvalidRequest, UriTooLong
from service.watchdog import WATCHDOG

log = logging.getLogger("gunicorn.error")

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
)
# As gunicorn's gthread worker: a stopping worker keeps idle connections this long, for a
# request a client may already be sending.
STOP_KEEPALIVE_LINGER = 2.0
STOP_CHECK_SECONDS = 0.2
_REASONS = {
    400: "Bad Request",
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


class GeventWorker(JsonErrors, _GeventWorker):
    """Greenlets: thousands of requests waiting on the upstream per worker (the default).

    gunicorn bounds the reading of each request's headers by KEEPALIVE_SECONDS here. On a
    graceful stop it would also wait for every kept-alive connection to go idle for that
    long (nginx keeps them open): they are closed instead, a moment after the stop, as the
    gthread worker does; requests in flight still finish.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._waiting_for_a_request = {}  # handler greenlet -> the timeout of its wait

    @contextlib.contextmanager
    def timeout_ctx(self):
        """Wait at most KEEPALIVE_SECONDS for a request's headers; remember who is waiting."""
        timeout = gevent.Timeout(self.cfg.keepalive, False)
        waiting = gevent.getcurrent()
        with timeout:
            self._waiting_for_a_request[waiting] = timeout
            try:
                yield
            finally:
                self._waiting_for_a_request.pop(waiting, None)

    def run(self):
        gevent.spawn(self._close_idle_connections_when_stopping)
        super().run()

    def _close_idle_connections_when_stopping(self) -> None:
        """Once stopping, end the waits for a next request (a request already arriving gets its moment)."""
        while self.alive:
            gevent.sleep(STOP_CHECK_SECONDS)
        gevent.sleep(STOP_KEEPALIVE_LINGER)
        for waiting, timeout in list(self._waiting_for_a_request.items()):
            waiting.kill(timeout, block=False)  # the wait's own timeout: the connection just closes


class ThreadWorker(JsonErrors, _ThreadWorker):
    """A thread per request in flight (WORKER_CLASS=gthread)."""

    def handle(self, conn):
        # gunicorn's threads read a request's headers with no time limit: a caller trickling
        # them would hold a thread for ever. Cut the connection after KEEPALIVE_SECONDS.
        conn.header_watch = WATCHDOG.watch(conn.sock, time.monotonic() + self.cfg.keepalive, socket.SHUT_RDWR)
        try:
            return super().handle(conn)
        finally:
            WATCHDOG.release(conn.header_watch)

    def handle_request(self, req, conn):
        WATCHDOG.release(conn.header_watch)  # the headers are in: the body has its own deadline
        return super().handle_request(req, conn)
