"""Callers that start a request and stop mid-headers: each is cut with a 408 within
HEADER_TIMEOUT_SECONDS of its first byte, while a connection merely waiting for its next
request keeps KEEPALIVE_SECONDS, and the service keeps answering while hundreds of them are
held. Run under both worker classes against the real gunicorn."""

import json
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.gunicorn_server import GunicornServer
from tests.support.fault_service import booted_workers, fault_env, write_models_config
from tests.support.raw_http import read_http_answer

HEADER_TIMEOUT = 2.0
WORKER_CONNECTIONS = 256
STALLED = 600  # more than the workers hold at once (2 x 256)
# Bounded waits, far above the header timeout and far below KEEPALIVE_SECONDS (75 s), the
# time a stalled caller was given before.
ANSWER_WAIT = 30.0
STALLED_START = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Stalled: half a head"
HEALTH = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module", params=["gevent", "gthread"])
def service(request, loopback, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"stalled-{request.param}")
    env = fault_env(
        loopback,
        write_models_config(folder),
        WORKER_CLASS=request.param,
        WORKER_CONNECTIONS=str(WORKER_CONNECTIONS),
        HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
    )
    with GunicornServer(env=env, log_path=folder / "service.log") as server:
        yield server
    assert "Traceback" not in server.log_text()


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=ANSWER_WAIT)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # close with RST
    return sock


def closed_after(sock) -> bool:
    try:
        return sock.recv(1) == b""
    except OSError:  # reset: closed too
        return True


def assert_408(answer) -> None:
    status, headers, body = answer
    error = json.loads(body)
    assert status == 408 and error["error_type"] == "request_timeout" and error["code"] == 408, answer
    assert error["request_id"] and headers["x-request-id"] == error["request_id"]
    assert headers["connection"].lower() == "close"


def test_stalled_headers_get_408_and_the_connection_closes(service):
    with connect(service) as sock:
        sock.sendall(STALLED_START)
        assert_408(read_http_answer(sock))
        assert closed_after(sock)


def test_headers_trickled_a_byte_at_a_time_are_cut_too(service):
    """The timeout bounds the whole head, not each read: a byte now and then does not restart it."""
    with connect(service) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sent = 0
        while sent < HEADER_TIMEOUT * 10 + 50:  # a byte every 0.1 s, well past the timeout
            try:
                sock.sendall(b"X")
            except OSError:
                break
            sent += 1
            time.sleep(0.1)
            if sent % 5 == 0 and _readable(sock):
                break
        assert_408(read_http_answer(sock))


def _readable(sock) -> bool:
    sock.setblocking(False)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)
        sock.settimeout(ANSWER_WAIT)


def test_an_idle_kept_alive_connection_is_still_served_after_the_header_timeout(service):
    with connect(service) as sock:
        sock.sendall(HEALTH)
        assert read_http_answer(sock)[0] == 200
        time.sleep(HEADER_TIMEOUT + 1.5)  # waiting for a next request is not a stalled head
        sock.sendall(HEALTH)
        assert read_http_answer(sock)[0] == 200


def test_a_new_connection_that_waits_before_its_first_byte_is_served(service):
    with connect(service) as sock:
        time.sleep(HEADER_TIMEOUT + 1.5)
        sock.sendall(HEALTH)
        assert read_http_answer(sock)[0] == 200


LARGE_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
    b"X-Large-%d: %s\r\n" % (i, b"v" * 8000) for i in range(10)
)


def test_a_large_head_sent_whole_is_served(service):
    with connect(service) as sock:
        sock.sendall(LARGE_HEAD + b"\r\n")
        assert read_http_answer(sock)[0] == 200


def test_a_large_head_that_stalls_is_cut_too(service):
    with connect(service) as sock:
        sock.sendall(LARGE_HEAD)
        assert_408(read_http_answer(sock))
        assert closed_after(sock)


def test_the_service_answers_while_hundreds_of_stalled_heads_are_held(service):
    stalled = []
    try:
        for _ in range(STALLED):
            sock = connect(service)
            sock.sendall(STALLED_START)
            stalled.append(sock)
        # Held by the test (never closed by it) until each is answered.
        health = requests.get(f"{service.url}/healthz", timeout=ANSWER_WAIT)
        assert health.status_code == 200
        with ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(read_http_answer, stalled))
    finally:
        for sock in stalled:
            sock.close()
    for answer in answers:
        assert_408(answer)
    assert requests.get(f"{service.url}/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("worker_class", ["gevent", "gthread"])
def test_a_stopping_service_answers_its_stalled_heads_and_stops(loopback, tmp_path, worker_class):
    env = fault_env(
        loopback, write_models_config(tmp_path), WORKER_CLASS=worker_class, HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT)
    )
    server = GunicornServer(env=env, log_path=tmp_path / "service.log").start()
    # Every worker booted first: a TERM that reaches a worker between its fork and its own signal
    # handlers is lost (gunicorn's), and the master would wait its graceful timeout for it.
    booted_workers(server)
    stalled = []
    try:
        for _ in range(20):
            sock = connect(server)
            sock.sendall(STALLED_START)
            stalled.append(sock)
        with connect(server) as idle:  # a kept-alive connection, waiting for a next request
            idle.sendall(HEALTH)
            assert read_http_answer(idle)[0] == 200
            server.signal(signal.SIGTERM)
            for sock in stalled:
                assert_408(read_http_answer(sock))
            assert closed_after(idle)
        assert server.stop(timeout=ANSWER_WAIT) == 0
    finally:
        for sock in stalled:
            sock.close()
        server.stop(timeout=5)
    assert "Traceback" not in server.log_text()
