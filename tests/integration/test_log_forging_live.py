"""Through the real gunicorn process, text and JSON logs alike: a caller's line breaks (in the
path, the query, a header) never start a line of the log, gunicorn's access log included."""

import json
import socket

import pytest

from harness.gunicorn_server import GunicornServer
from harness.service import service_env

FORGED = "2026-12-04 03:09:00,000 INFO service.access request method=GET path=/ status=200"
ENCODED = FORGED.replace(" ", "%20")
REQUESTS = [
    f"GET /nothing%0a{ENCODED} HTTP/1.1",
    f"GET /nothing%0d%0aSet-Cookie:%20a=b%0d%0a{ENCODED} HTTP/1.1",
    f"GET /api/models?x=%0a{ENCODED} HTTP/1.1",
    f"POST /api/infer/text-completion?model_name=a%0a{ENCODED} HTTP/1.1",
    f"GET /nothing%e2%80%a8{ENCODED}%c2%85x HTTP/1.1",
]


def send(server, request_line: str) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(
            request_line.encode() + b"\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 17\r\n"
            b"Connection: close\r\n\r\n" + b'{"inputs": "ab"}\n'
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.fixture(scope="module", params=["text", "json"])
def forged_log(request, loopback, tmp_path_factory):
    log_path = tmp_path_factory.mktemp(f"forging-{request.param}") / "service.log"
    env = service_env(loopback, LOG_FORMAT=request.param, ACCESS_LOG="-")
    with GunicornServer(env=env, log_path=log_path) as server:
        answers = [send(server, line) for line in REQUESTS]
    return request.param, server.log_text(), answers


def test_every_request_was_answered(forged_log):
    _, _, answers = forged_log
    assert all(answer.startswith(b"HTTP/1.1 ") for answer in answers), answers


def test_no_forged_line_in_the_log(forged_log):
    log_format, text, _ = forged_log
    lines = text.splitlines()  # every line boundary a reader may split on
    assert not [line for line in lines if line.startswith((FORGED[:16], "Set-Cookie"))]
    if log_format == "json":
        for line in lines:
            fields = json.loads(line)
            assert not [value for value in fields.values() if isinstance(value, str) and "\n" in value], fields
    access = [line for line in lines if logger_of(line, log_format) == "service.access" and "/nothing" in line]
    assert len(access) == 3 and all("\\n" in line or "\\u2028" in line for line in access), access


def logger_of(line: str, log_format: str) -> str:
    return json.loads(line)["logger"] if log_format == "json" else line.split()[3]
