"""What a caller sends badly: half-sent bodies, bodies over the limit in any framing, and requests
gunicorn itself refuses. Each gets the JSON error shape and a closed connection; the service
keeps answering everyone else. Run under both worker classes."""

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.gunicorn_server import GunicornServer
from tests.support.fault_service import fault_env, write_models_config
from tests.support.raw_http import read_http_answer

BODY_TIMEOUT = 1.0
SLOW_BODIES = 140
MAX_BODY = 1024 * 1024


@pytest.fixture(scope="module", params=["gevent", "gthread"])
def service(request, loopback, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"slow-{request.param}")
    env = fault_env(
        loopback, write_models_config(folder), WORKER_CLASS=request.param, BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT)
    )
    with GunicornServer(env=env, log_path=folder / "service.log") as server:
        server.worker_class = request.param
        yield server
    assert "Traceback" not in server.log_text()


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=30)


def read_answer(sock) -> tuple[int, dict, dict, bool]:
    """Read one HTTP answer, then tell whether the server closed the connection after it."""
    status, headers, body = read_http_answer(sock)
    sock.settimeout(5)
    try:
        closed = sock.recv(1) == b""
    except OSError:  # reset: closed too
        closed = True
    return status, headers, json.loads(body), closed


def assert_error(status, headers, body, code, error_type):
    assert status == code, body
    assert body["code"] == code and body["error_type"] == error_type, body
    assert body["request_id"] and headers["x-request-id"] == body["request_id"]
    assert headers["content-type"].startswith("application/json")


def send_half_body(server) -> socket.socket:
    sock = connect(server)
    sock.sendall(
        b"POST /api/infer/text-translation HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    return sock


def test_half_sent_bodies_get_408_and_are_closed_while_the_service_keeps_answering(service):
    slow = [send_half_body(service) for _ in range(SLOW_BODIES)]
    try:
        if service.worker_class == "gevent":  # gthread holds a thread per slow body until its timeout
            health = requests.get(f"{service.url}/healthz", timeout=5)
            assert health.status_code == 200
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(read_answer, slow))
    finally:
        for sock in slow:
            sock.close()
    for status, headers, body, closed in answers:
        assert_error(status, headers, body, 408, "request_timeout")
        assert closed
    assert requests.get(f"{service.url}/healthz", timeout=5).status_code == 200


def test_a_body_trickled_a_byte_at_a_time_is_cut_at_its_deadline(service):
    sock = send_half_body(service)
    started = time.monotonic()
    try:
        for _ in range(int(BODY_TIMEOUT * 10) + 10):  # a byte every 0.1 s: each read succeeds
            try:
                sock.sendall(b" ")
            except OSError:
                break
            time.sleep(0.1)
        status, headers, body, closed = read_answer(sock)
    finally:
        sock.close()
    assert_error(status, headers, body, 408, "request_timeout")
    assert time.monotonic() - started < BODY_TIMEOUT + 5


def chunked(body: bytes, piece: int = 64 * 1024) -> bytes:
    chunks = [body[start : start + piece] for start in range(0, len(body), piece)]
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


@pytest.mark.parametrize(
    "body",
    [
        b"x" * (2 * MAX_BODY),
        # The first MiB alone is a valid request: what follows must not be ignored.
        b'{"inputs": "' + b"a" * (MAX_BODY - 20) + b'"}' + b" " * MAX_BODY,
    ],
    ids=["2 MiB of anything", "a valid first MiB"],
)
def test_a_chunked_body_over_the_limit_is_413(service, body):
    sock = connect(service)
    try:
        sock.sendall(b"POST /api/infer/text-translation HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            sock.sendall(chunked(body))
        except OSError:  # the service may close its side as soon as it has answered
            pass
        status, headers, result, closed = read_answer(sock)
    finally:
        sock.close()
    assert_error(status, headers, result, 413, "payload_too_large")
    assert "1 MiB" in result["message"]
    assert closed


def test_a_chunked_body_under_the_limit_is_served(service):
    response = requests.post(
        f"{service.url}/api/infer/text-translation",
        data=iter([b'{"inputs": ', b'"\xe8\xbf\x9e\xe8\xa1\xa3\xe8\xa3\x99"}']),
        timeout=10,
    )
    assert response.status_code == 200, response.text


CHUNKED_HEAD = b"POST /api/infer/text-translation HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "sent, code, error_type",
    [
        # The caller then waits for an answer with the rest unsent: the declaration alone decides.
        (b"200000\r\n" + b"x" * 100, 413, "payload_too_large"),
        (b"ffffffffffffffff\r\n", 413, "payload_too_large"),
        (b"80000\r\n" + b"x" * 0x80000 + b"\r\n80001\r\n" + b"x" * 100, 413, "payload_too_large"),
        (b'5\n{"in"\n0\n\n', 400, "invalid_request"),
        (b'5\r\n{"in"\n', 400, "invalid_request"),
        (b'5\r\n{"in"\n0\r\n\r\n', 400, "invalid_request"),
        (b'5\r\n{"in"\r\n0\n', 400, "invalid_request"),
        (b'5;\n{"in"\r\n0\r\n\r\n', 400, "invalid_request"),
        (b"zz\r\n", 400, "invalid_request"),
        (b"5 5\r\nhello\r\n0\r\n\r\n", 400, "invalid_request"),
        (b'5\r\n{"in"XX0\r\n\r\n', 400, "invalid_request"),
    ],
    ids=[
        "a chunk over the limit",
        "a chunk size past 64 bits",
        "chunks adding up over the limit",
        "bare LF everywhere",
        "bare LF after the data, nothing after",
        "bare LF after the data",
        "bare LF after the last chunk",
        "bare LF after an extension",
        "a size not in hex",
        "a size with a space",
        "no CRLF after the data",
    ],
)
def test_a_chunked_body_that_can_never_be_served_is_answered_at_once(service, sent, code, error_type):
    """No waiting for the body's deadline (408) on a body whose framing already says it cannot be served."""
    sock = connect(service)
    try:
        sock.sendall(CHUNKED_HEAD + sent)
        status, headers, body, closed = read_answer(sock)
    finally:
        sock.close()
    assert_error(status, headers, body, code, error_type)
    assert closed


def test_a_chunked_body_with_extensions_and_trailers_is_served_on_a_kept_alive_connection(service):
    sock = connect(service)
    try:
        for _ in range(2):
            second = 'puts": "连衣裙"}'.encode()
            sock.sendall(
                CHUNKED_HEAD
                + b'4;name=value\r\n{"in\r\n%x\r\n%s\r\n0\r\nX-Trailer: yes\r\n\r\n' % (len(second), second)
            )
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))[15:])
            while len(rest) < length:
                rest += sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200"), data
    finally:
        sock.close()


@pytest.mark.parametrize(
    "request_bytes, code, error_type",
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(120)) + b"\r\n",
            431,
            "headers_too_large",
        ),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 9000 + b"\r\n\r\n", 431, "headers_too_large"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n", 400, "invalid_request"),
        (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400, "invalid_request"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n", 400, "invalid_request"),
    ],
    ids=["long url", "too many headers", "large header", "bad header", "bad version", "tls hello"],
)
def test_requests_gunicorn_refuses_get_the_json_shape(service, request_bytes, code, error_type):
    sock = connect(service)
    try:
        sock.sendall(request_bytes)
        status, headers, body, closed = read_answer(sock)
    finally:
        sock.close()
    assert_error(status, headers, body, code, error_type)
    assert closed
