"""hf-infer batch: the client's answers, errors and bounded retries (HTTP mocked with `responses`)."""

import json
import threading

import pytest
import requests
import responses

from service.batch.gateway_client import GatewayClient, Interrupted, parse_retry_after
from service.batch.inputs import BatchItem

URL = "http://gateway.test"
ENDPOINT = f"{URL}/api/infer/text-translation"
OK = {"code": 0, "message": "ok", "result": ["Dress"]}


def error_body(status, error_type, message="nope"):
    return {"code": status, "error_type": error_type, "message": message, "request_id": "r"}


@pytest.fixture
def waits():
    return []


@pytest.fixture
def client(waits):
    return GatewayClient(URL, "text-translation", retries=3, max_wait=10, sleep=waits.append)


@responses.activate
def test_success_sends_inputs_args_and_query(waits):
    responses.post(ENDPOINT, json=OK)
    client = GatewayClient(
        URL + "/",
        "text-translation",
        params={"model_type": "en2de", "model_name": None},
        api_key="k-123",
        sleep=waits.append,
    )
    outcome = client.infer(BatchItem(1, "连衣裙", {"num_sentences": 1}))
    assert outcome.result == ["Dress"] and outcome.error is None
    sent = responses.calls[0].request
    assert sent.url == f"{ENDPOINT}?model_type=en2de"
    assert sent.headers["Authorization"] == "Bearer k-123"
    assert json.loads(sent.body) == {"inputs": "连衣裙", "args": {"num_sentences": 1}}
    assert waits == []


@responses.activate
def test_no_args_sends_no_args_and_no_key_sends_no_authorization(client):
    responses.post(ENDPOINT, json=OK)
    client.infer(BatchItem(1, "x"))
    sent = responses.calls[0].request
    assert sent.body == b'{"inputs": "x"}' and "Authorization" not in sent.headers


@pytest.mark.parametrize(
    "status, error_type",
    [
        (400, "invalid_request"),
        (401, "unauthorized"),
        (404, "model_not_found"),
        (422, "model_rejected_input"),
        (500, "internal_error"),
    ],
)
@responses.activate
def test_caller_and_model_errors_are_not_retried(client, waits, status, error_type):
    responses.post(ENDPOINT, status=status, json=error_body(status, error_type, "Input validation error"))
    outcome = client.infer(BatchItem(1, "x"))
    assert outcome.error == {"status": status, "error_type": error_type, "message": "Input validation error"}
    assert len(responses.calls) == 1 and waits == []


@pytest.mark.parametrize(
    "status, error_type",
    [(429, "rate_limited"), (502, "upstream_error"), (503, "model_unavailable"), (504, "upstream_timeout")],
)
@responses.activate
def test_busy_statuses_are_retried_until_success(client, waits, status, error_type):
    responses.post(ENDPOINT, status=status, json=error_body(status, error_type))
    responses.post(ENDPOINT, json=OK)
    assert client.infer(BatchItem(1, "x")).result == ["Dress"]
    assert len(responses.calls) == 2 and len(waits) == 1


@responses.activate
def test_retry_after_is_honoured_but_capped_by_max_wait(client, waits):
    responses.post(ENDPOINT, status=503, json=error_body(503, "model_unavailable"), headers={"Retry-After": "3"})
    responses.post(ENDPOINT, status=429, json=error_body(429, "rate_limited"), headers={"Retry-After": "3600"})
    responses.post(ENDPOINT, json=OK)
    assert client.infer(BatchItem(1, "x")).result == ["Dress"]
    assert waits == [3.0, 10]


@responses.activate
def test_retries_are_bounded_and_the_last_error_is_kept(waits):
    client = GatewayClient(URL, "text-translation", retries=2, sleep=waits.append)
    for _ in range(5):
        responses.post(ENDPOINT, status=502, body="<html>Bad Gateway</html>", content_type="text/html")
    outcome = client.infer(BatchItem(1, "x"))
    assert outcome.error == {"status": 502, "error_type": "http_error", "message": "<html>Bad Gateway</html>"}
    assert len(responses.calls) == 3 and len(waits) == 2
    assert all(0 < wait <= 30 for wait in waits)  # backoff, not a Retry-After


@responses.activate
def test_connection_errors_are_retried(client, waits):
    responses.post(ENDPOINT, body=requests.ConnectionError("connection refused"))
    responses.post(ENDPOINT, json=OK)
    assert client.infer(BatchItem(1, "x")).result == ["Dress"]
    assert len(responses.calls) == 2


@responses.activate
def test_a_run_that_never_connects_ends_with_a_connection_error(waits):
    client = GatewayClient(URL, "text-translation", retries=1, sleep=waits.append)
    responses.post(ENDPOINT, body=requests.ConnectionError("connection refused"))
    responses.post(ENDPOINT, body=requests.ReadTimeout("read timed out"))
    outcome = client.infer(BatchItem(1, "x"))
    assert outcome.error["status"] is None and outcome.error["error_type"] == "timeout"
    assert len(responses.calls) == 2


@responses.activate
def test_a_stop_ends_retrying_at_once():
    stop = threading.Event()
    client = GatewayClient(URL, "text-translation", retries=5, stop_event=stop, sleep=lambda seconds: stop.set())
    for _ in range(6):
        responses.post(ENDPOINT, status=503, json=error_body(503, "model_unavailable"))
    with pytest.raises(Interrupted):  # no line: a resumed run does it
        client.infer(BatchItem(1, "x"))
    assert len(responses.calls) == 1  # no attempt after the interrupted wait


@responses.activate
def test_each_thread_has_its_own_session(client):
    sessions = []
    threads = [threading.Thread(target=lambda: sessions.append(client.session())) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(session) for session in sessions}) == 3
    assert client.session() is client.session()


def test_proxy_ca_bundle_and_netrc_come_from_the_environment_once(monkeypatch, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine gateway.test login ops password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    session = GatewayClient(URL, "text-translation").session()
    monkeypatch.setenv("HTTP_PROXY", "http://changed.test:3128")
    assert session.proxies["http"] == "http://proxy.test:3128"
    assert session.verify == str(tmp_path / "ca.pem")
    assert session.auth == ("ops", "s3cret")
    assert session.trust_env is False  # not read again on every call


def test_no_proxy_for_the_gateway_is_honoured(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "gateway.test")
    session = GatewayClient(URL, "text-translation").session()
    assert "http" not in session.proxies


@pytest.mark.parametrize(
    "value, expected",
    [("7", 7.0), ("0.5", 0.5), ("-3", 0.0), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected
