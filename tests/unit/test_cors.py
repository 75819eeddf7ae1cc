"""Browser pages on the origins of CORS_ORIGINS may call the surfaces: their preflight is answered
without a key and books nothing, their answers (errors too) name their origin and expose the
headers a client reads; any other origin gets no Access-Control-* header at all."""

import pytest

from harness.keys import bearer, write_key_file
from service.api import cors
from service.settings import Settings, SettingsError
from service.telemetry import metrics
from tests.support.app import API, TEST_CATALOG, make_app, make_settings, post
from tests.support.assertions import assert_error_shape

OPUS = f"{API}/Helsinki-NLP/opus-mt-zh-en"
APP_ORIGIN = "https://app.example.com"
OTHER_ORIGIN = "https://evil.example.net"
KEYS = {
    "page": {"secret": "secret-page-key", "rpm": 2},
    "ops": {"secret": "secret-ops-key", "admin": True},
}
SURFACE_PATHS = ["/api/infer/text-translation", "/models/org/id", "/pipeline/translation/zh2en", "/v1/chat/completions"]


def preflight(client, path="/api/infer/text-translation", origin=APP_ORIGIN, **headers):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
            **headers,
        },
    )


def cors_headers(response) -> dict:
    return {name: value for name, value in response.headers.items() if name.lower().startswith("access-control-")}


@pytest.fixture
def key_file(tmp_path):
    return write_key_file(tmp_path / "keys.toml", KEYS)


@pytest.fixture
def app(tmp_path, key_file, clock):
    settings = make_settings(
        api_keys_file=key_file, store="sqlite", data_dir=tmp_path / "data", cors_origins=frozenset({APP_ORIGIN})
    )
    return make_app(settings, TEST_CATALOG, clock)


@pytest.fixture
def metric_calls(monkeypatch):
    """The request metrics each request records, noted as they are."""
    calls = []
    monkeypatch.setattr(metrics, "record_request", lambda *args: calls.append(("request", args)))
    monkeypatch.setattr(metrics, "request_started", lambda: calls.append(("started",)))
    monkeypatch.setattr(metrics, "request_finished", lambda: calls.append(("finished",)))
    return calls


@pytest.mark.parametrize("path", SURFACE_PATHS)
def test_an_allowed_origins_preflight_is_answered_without_a_key(client, path, mock_hub):
    answer = preflight(client, path)
    assert answer.status_code == 204 and answer.get_data() == b""
    assert cors_headers(answer) == {
        "Access-Control-Allow-Origin": APP_ORIGIN,
        "Access-Control-Allow-Methods": "GET, POST",
        "Access-Control-Allow-Headers": cors.ALLOWED_HEADERS,
        "Access-Control-Max-Age": "600",
        "Access-Control-Expose-Headers": cors.EXPOSED_HEADERS,
    }
    assert answer.headers["Vary"] == "Origin" and answer.headers["X-Request-ID"]
    assert len(mock_hub.calls) == 0


def test_what_a_preflight_allows_covers_what_the_clients_send():
    allowed = {name.strip() for name in cors.ALLOWED_HEADERS.split(",")}
    # the keys, a request id, the cache's bypass, and huggingface.js's User-Agent
    assert {"authorization", "x-api-key", "content-type", "x-request-id", "cache-control", "user-agent"} <= allowed


def test_another_origins_preflight_gets_no_cors_header(client):
    answer = preflight(client, origin=OTHER_ORIGIN)
    assert answer.status_code == 204
    assert cors_headers(answer) == {}


def test_an_origin_is_matched_exactly(client):
    for near in ("https://app.example.com:8443", "http://app.example.com", "https://app.example.com.evil.net", "null"):
        assert cors_headers(preflight(client, origin=near)) == {}, near


def test_an_allowed_origin_reads_the_answer_and_its_headers(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    headers = {"Origin": APP_ORIGIN, **bearer("secret-page-key")}
    answer = post(client, "text-translation", {"inputs": "连衣裙"}, headers=headers)
    assert answer.status_code == 200
    assert cors_headers(answer) == {
        "Access-Control-Allow-Origin": APP_ORIGIN,
        "Access-Control-Expose-Headers": "X-Request-ID, Retry-After, RateLimit, RateLimit-Policy, X-Cache",
    }
    assert "Origin" in answer.headers["Vary"]
    assert {"X-Request-ID", "RateLimit", "RateLimit-Policy", "X-Cache"} <= set(answer.headers.keys())


def test_an_allowed_origin_reads_errors_too(client):
    refused = post(client, "text-translation", {"inputs": "连衣裙"}, headers={"Origin": APP_ORIGIN})
    assert_error_shape(refused, 401, "unauthorized")
    assert refused.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    unknown = client.get("/api/nothing-here", headers={"Origin": APP_ORIGIN, **bearer("secret-page-key")})
    assert unknown.status_code == 404 and unknown.headers["Access-Control-Allow-Origin"] == APP_ORIGIN


def test_another_origin_gets_the_answer_without_cors_headers(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    headers = {"Origin": OTHER_ORIGIN, **bearer("secret-page-key")}
    answer = post(client, "text-translation", {"inputs": "连衣裙"}, headers=headers)
    assert answer.status_code == 200 and cors_headers(answer) == {}  # the browser keeps it from the page
    assert answer.headers["Vary"] == "Origin"


def test_a_preflight_books_nothing_and_counts_against_no_limit(client, metric_calls, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    for _ in range(5):
        assert preflight(client).status_code == 204
    assert metric_calls == []  # not a call: neither in flight nor a request of a task
    # the key's 2 requests a minute are all still there
    key = {"Origin": APP_ORIGIN, **bearer("secret-page-key")}
    statuses = [post(client, "text-translation", {"inputs": "连衣裙"}, headers=key).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    totals = client.get("/api/usage", headers=bearer("secret-ops-key")).get_json()["totals"]
    assert totals["requests"] == 3  # the two answers and the refusal; no preflight


def test_a_preflight_with_a_wrong_key_is_still_answered(client):
    answer = preflight(client, Authorization="Bearer not-a-key")
    assert answer.status_code == 204 and answer.headers["Access-Control-Allow-Origin"] == APP_ORIGIN


def test_pages_and_health_are_not_cross_origin(client):
    for path in ("/healthz", "/"):
        answer = client.get(path, headers={"Origin": APP_ORIGIN})
        assert answer.status_code == 200 and cors_headers(answer) == {}, path
    assert cors_headers(preflight(client, "/healthz")) == {}


def test_an_options_request_that_is_no_preflight_still_needs_a_key(client):
    assert_error_shape(client.options("/api/infer/text-translation"), 401, "unauthorized")


def test_without_cors_origins_nothing_is_allowed_and_nothing_varies(clock, mock_hub):
    client = make_app(make_settings(), TEST_CATALOG, clock).test_client()
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    assert make_settings().cors_origins == frozenset()
    answer = preflight(client)
    assert answer.status_code == 204 and cors_headers(answer) == {}
    served = post(client, "text-translation", {"inputs": "连衣裙"}, headers={"Origin": APP_ORIGIN})
    assert served.status_code == 200 and cors_headers(served) == {} and "Vary" not in served.headers


def test_cors_origins_are_read_as_the_browser_writes_them():
    settings = Settings.from_env({"CORS_ORIGINS": "https://App.Example.com/, http://127.0.0.1:8080,https://a.test:443"})
    assert settings.cors_origins == {"https://app.example.com", "http://127.0.0.1:8080", "https://a.test"}


@pytest.mark.parametrize("value", ["*", "null", "app.example.com", "https://app.example.com/app", "ftp://a.test"])
def test_a_cors_origin_that_is_no_origin_is_refused_by_name(value):
    with pytest.raises(SettingsError, match="CORS_ORIGINS") as refused:
        Settings.from_env({"CORS_ORIGINS": value})
    assert repr(value) in str(refused.value)
