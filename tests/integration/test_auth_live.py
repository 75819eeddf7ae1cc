"""Client API keys, enforced by the real gunicorn process."""

import pytest
import requests

from harness.gunicorn_server import GunicornServer
from harness.service import TOKEN, service_env

KEYS = ("client-key-alpha-0123456789", "client-key-beta-9876543210")
TRANSLATE = "/api/infer/text-translation"
BODY = '{"inputs": "连衣裙"}'


@pytest.fixture(scope="module")
def keyed_service(loopback, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("gunicorn-auth") / "service.log"
    env = service_env(loopback, API_KEYS=",".join(KEYS), WEB_CONCURRENCY="1")
    with GunicornServer(env=env, log_path=log_path) as server:
        yield server


def post(service, headers=None):
    return requests.post(service.url + TRANSLATE, data=BODY.encode(), headers=headers or {}, timeout=30)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-key"},
        {"X-API-Key": KEYS[0][:-1]},
        {"Authorization": KEYS[0]},  # no scheme
        {"Authorization": f"Basic {KEYS[0]}"},
    ],
    ids=["none", "wrong bearer", "truncated key", "no scheme", "basic"],
)
def test_calls_without_a_valid_key_are_401(keyed_service, upstream, headers):
    response = post(keyed_service, headers)
    assert response.status_code == 401, response.text
    body = response.json()
    assert (body["code"], body["error_type"]) == (401, "unauthorized")
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert not upstream.requests


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEYS[0]}"},
        {"X-API-Key": KEYS[1]},
    ],
    ids=["bearer", "x-api-key"],
)
def test_calls_with_a_key_are_served(keyed_service, upstream, headers):
    response = post(keyed_service, headers)
    assert response.status_code == 200, response.text
    assert response.json()["code"] == 0
    assert upstream.requests


def test_health_check_needs_no_key(keyed_service):
    response = requests.get(keyed_service.url + "/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_keys_and_token_never_logged(keyed_service, upstream):
    post(keyed_service, {"Authorization": f"Bearer {KEYS[0]}"})
    post(keyed_service, {"X-API-Key": KEYS[1]})
    log = keyed_service.log_text()
    assert "request_id=" in log
    assert not [secret for secret in (*KEYS, TOKEN) if secret in log]
