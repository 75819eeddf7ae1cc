"""LOG_FORMAT=json through the real gunicorn process, and the request id sent upstream."""

import json

import pytest
import requests

from harness.gunicorn_server import GunicornServer
from harness.service import TOKEN, service_env
from harness.upstream import Step

MADLAD = "/hf-inference/models/google/madlad400-3b-mt"


def translate(server, request_id=None, body=None):
    headers = {"X-Request-ID": request_id} if request_id else {}
    body = body if body is not None else {"inputs": "连衣裙", "args": {"num_sentences": 2}}
    return requests.post(f"{server.url}/api/infer/text-translation", json=body, headers=headers, timeout=20)


@pytest.fixture(scope="module")
def json_log(loopback, tmp_path_factory):
    """Run a JSON-logging gunicorn (access log on) through a few requests; return its log lines and answers."""
    loopback.wait_idle()
    loopback.clear_scripts()
    log_path = tmp_path_factory.mktemp("json-logs") / "service.log"
    env = service_env(loopback, LOG_FORMAT="json", ACCESS_LOG="-")
    with GunicornServer(env=env, log_path=log_path) as server:
        answers = {
            "ok": translate(server, "caller-id.ok:1"),
            "invalid": translate(server, "caller-id-invalid", {"inputs": ""}),
            "token_as_id": translate(server, TOKEN),
        }
        loopback.script(MADLAD, Step(status=422, json={"error": "Input validation error"}))
        answers["rejected"] = translate(server, "caller-id-rejected", {"inputs": "连衣裙"})
    loopback.wait_idle()
    loopback.clear_scripts()
    return server.log_text().splitlines(), answers


def lines_of(json_log, logger):
    return [line for line in map(json.loads, json_log[0]) if line["logger"] == logger]


def request_line(json_log, request_id):
    matches = [line for line in lines_of(json_log, "service.access") if line["request_id"] == request_id]
    assert len(matches) == 1, matches
    return matches[0]


def test_every_line_is_one_json_object(json_log):
    lines, _ = json_log
    assert len(lines) > 10
    for line in lines:
        parsed = json.loads(line)
        assert isinstance(parsed, dict) and {"time", "level", "logger", "message"} <= set(parsed), line
    loggers = {json.loads(line)["logger"] for line in lines}
    assert {"gunicorn.error", "gunicorn.access", "service.access"} <= loggers


def test_request_line_has_the_fields(json_log):
    _, answers = json_log
    assert answers["ok"].status_code == 200
    line = request_line(json_log, "caller-id.ok:1")
    assert (line["method"], line["path"], line["task"], line["status"]) == (
        "POST",
        "/api/infer/text-translation",
        "text-translation",
        200,
    )
    assert line["model"] == answers["ok"].json()["model"] == "google/madlad400-3b-mt"
    assert line["upstream_attempts"] == 2  # num_sentences: 2, one call each
    assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0


def test_error_lines_have_the_fields(json_log):
    _, answers = json_log
    invalid = request_line(json_log, "caller-id-invalid")
    assert (invalid["status"], invalid["upstream_attempts"], invalid["task"]) == (400, 0, "text-translation")
    assert answers["invalid"].status_code == 400
    rejected = request_line(json_log, "caller-id-rejected")
    assert (rejected["status"], rejected["upstream_attempts"]) == (422, 1)
    assert answers["rejected"].json()["error_type"] == "model_rejected_input"


def test_access_log_lines_carry_the_request_id(json_log):
    access = {line["request_id"]: line for line in lines_of(json_log, "gunicorn.access") if "request_id" in line}
    assert access["caller-id.ok:1"]["status"] == 200 and access["caller-id.ok:1"]["method"] == "POST"
    assert access["caller-id-rejected"]["status"] == 422


def test_the_token_never_reaches_the_log(json_log):
    lines, answers = json_log
    assert answers["token_as_id"].status_code == 200  # a caller may send anything sane as its id...
    assert not any(TOKEN in line for line in lines)  # ...but the token is redacted wherever it appears
    assert any(line.get("request_id") == "[REDACTED]" for line in lines_of(json_log, "service.access"))


def test_caller_request_id_is_the_one_the_upstream_receives(service, upstream):
    response = translate(service, "batch-42.line:7")
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == response.json()["request_id"] == "batch-42.line:7"
    sent = upstream.requests_for(MADLAD)
    assert len(sent) == 2 and all(entry.headers["X-Request-ID"] == "batch-42.line:7" for entry in sent)


def test_unsafe_request_id_is_replaced_everywhere_alike(service, upstream):
    response = translate(service, "two words")
    assert response.status_code == 200
    own_id = response.headers["X-Request-ID"]
    assert own_id != "two words" and own_id == response.json()["request_id"]
    assert [entry.headers["X-Request-ID"] for entry in upstream.requests_for(MADLAD)] == [own_id, own_id]
