"""Per-key limits and the usage ledger through the app, on both real stores (SQLite and redis-server).

The upstream is mocked with `responses`: a refused request must never reach it.
"""

import hashlib
import math
import time

import pytest
from prometheus_client import REGISTRY

from harness import recordings
from service.store import open_store
from service.store.contract import Claim, Lease, Left, Refusal, Settlement, Window, seconds_to_next_day, utc_day
from tests.support.app import API, ROUTER, TEST_CATALOG, make_app, make_settings, post
from tests.support.assertions import assert_error_shape

OPUS = f"{API}/Helsinki-NLP/opus-mt-zh-en"
IMAGE = f"{API}/CompVis/stable-diffusion-v1-4"
CHAT = f"{ROUTER}/chat/completions"
KEYS = {
    "fast": "secret-fast",
    "slots": "secret-slots",
    "quota": "secret-quota",
    "ops": "secret-ops",
    "free": "secret-f",
}
KEY_FILE = """
[keys.fast]
sha256 = "{fast}"
rpm = 3

[keys.slots]
sha256 = "{slots}"
concurrency = 2

[keys.quota]
sha256 = "{quota}"
results_per_day = 5
images_per_day = 2

[keys.ops]
sha256 = "{ops}"
admin = true

[keys.free]
sha256 = "{free}"
"""


def auth(name: str) -> dict:
    return {"Authorization": f"Bearer {KEYS[name]}"}


@pytest.fixture
def limited_app(store_backend, tmp_path, clock):
    digests = {name: hashlib.sha256(secret.encode()).hexdigest() for name, secret in KEYS.items()}
    key_file = tmp_path / "keys.toml"
    key_file.write_text(KEY_FILE.format(**digests), encoding="utf-8")
    return make_app(make_settings(api_keys_file=key_file, **store_backend), TEST_CATALOG, clock)


@pytest.fixture
def client(limited_app):
    return limited_app.test_client()


def translate(client, key: str, n: int = 1):
    return post(client, "text-translation", {"inputs": "连衣裙", "args": {"num_sentences": n}}, headers=auth(key))


def usage(client, caller: str = "ops", **query):
    """GET /api/usage as `caller`, with `query` as its query string."""
    return client.get("/api/usage", query_string=query, headers=auth(caller))


@pytest.fixture
def store(store_backend):
    guard = open_store(make_settings(**store_backend))
    yield guard.store
    guard.store.close()


def lease(name: str, limit: int, now: float) -> Lease:
    return Lease(name, limit, now + 3600)


def refused_count(policy: str) -> float:
    return REGISTRY.get_sample_value("hf_gateway_refused_total", {"policy": policy}) or 0.0


def test_requests_per_minute_admit_exactly_the_limit_then_429_with_its_headers(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    refused_before = refused_count("rpm")
    statuses = [translate(client, "fast").status_code for _ in range(3)]
    refused = translate(client, "fast")
    assert statuses == [200, 200, 200]
    assert_error_shape(refused, 429, "rate_limited")
    assert "3 requests per minute" in refused.get_json()["message"]
    retry_after = int(refused.headers["Retry-After"])
    assert 55 <= retry_after <= 61  # a request counts for 60 to 61 s
    assert refused.headers["RateLimit-Policy"] == '"rpm";q=3;w=60'
    assert refused.headers["RateLimit"] == f'"rpm";r=0;t={retry_after}'
    assert len(mock_hub.calls) == 3  # the refused request never reached the upstream
    assert refused_count("rpm") == refused_before + 1
    assert translate(client, "free").status_code == 200  # other keys are not affected


def test_concurrency_counts_requests_in_flight_and_frees_slots_when_they_end(client, limited_app, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    store = limited_app.extensions["gateway"].store.store
    far = time.time() + 60
    assert store.admit("slots", None, Lease("elsewhere-1", 2, far), [], time.time()) == {"concurrency": Left(1)}
    assert translate(client, "slots").status_code == 200  # one slot left: taken and given back
    assert translate(client, "slots").status_code == 200
    assert store.admit("slots", None, Lease("elsewhere-2", 2, far), [], time.time()) == {"concurrency": Left(0)}
    refused = translate(client, "slots")
    assert_error_shape(refused, 429, "rate_limited")
    assert (refused.headers["Retry-After"], refused.headers["RateLimit"]) == ("1", '"concurrency";r=0;t=1')
    assert refused.headers["RateLimit-Policy"] == '"concurrency";q=2'
    assert len(mock_hub.calls) == 2


def test_daily_quotas_count_results_and_images_and_say_when_they_reset(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    mock_hub.post(IMAGE, body=recordings.recorded_body("CompVis/stable-diffusion-v1-4"), content_type="image/jpeg")
    sd = "?model_name=CompVis/stable-diffusion-v1-4"
    assert (
        post(
            client, "text-to-image", {"inputs": "a dress", "args": {"num_sentences": 2}}, sd, headers=auth("quota")
        ).status_code
        == 200
    )
    over = post(client, "text-to-image", {"inputs": "a dress"}, sd, headers=auth("quota"))
    assert_error_shape(over, 429, "quota_exceeded")
    assert "2 images" in over.get_json()["message"] and over.headers["RateLimit"].startswith('"images";r=0;t=')
    assert translate(client, "quota", n=3).status_code == 200  # 2 + 3 results: the whole quota
    refused = translate(client, "quota")
    assert_error_shape(refused, 429, "quota_exceeded")
    assert "has used 5 of its 5 results for today (UTC) and this request asks for 1" in refused.get_json()["message"]
    seconds_left = 86_400 - time.time() % 86_400
    assert abs(int(refused.headers["Retry-After"]) - seconds_left) <= 2
    assert refused.headers["RateLimit-Policy"] == '"results";q=5;w=86400, "images";q=2;w=86400'
    assert len(mock_hub.calls) == 2 + 3


def test_a_failed_request_gives_its_quota_back(client, mock_hub):
    mock_hub.post(OPUS, status=422, json={"error": "Input validation error"})
    assert translate(client, "quota", n=5).status_code == 422
    mock_hub.replace("POST", OPUS, json=[{"translation_text": "Dress"}])
    assert translate(client, "quota", n=5).status_code == 200


def test_the_ledger_counts_each_request_once_with_what_it_cost(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    mock_hub.post(
        CHAT,
        json={
            "choices": [{"message": {"content": "Kleid"}}, {"message": {"content": "Das Kleid"}}],
            "usage": {"prompt_tokens": 21, "completion_tokens": 4},
        },
    )
    mock_hub.post(f"{API}/missing/model", status=404, json={"error": "Model not found"})
    assert translate(client, "free", n=3).status_code == 200  # three calls, one request
    zh2de = {"inputs": "连衣裙", "args": {"num_sentences": 2, "do_sample": False}}
    assert post(client, "text-translation", zh2de, "?model_type=zh2de", headers=auth("free")).status_code == 200
    bad = post(client, "text-translation", {"inputs": ""}, headers=auth("free"))
    assert bad.status_code == 400
    answer = usage(client, key="free").get_json()
    rows = {row["model"]: row for row in answer["rows"]}
    opus = rows["Helsinki-NLP/opus-mt-zh-en"]
    assert (opus["requests"], opus["results"], opus["upstream_attempts"], opus["input_chars"]) == (1, 3, 3, 3)
    assert opus["errors"] == {}
    refused = rows["-"]  # invalid before any model was chosen
    assert (refused["requests"], refused["results"], refused["errors"]) == (1, 0, {"invalid_request": 1})
    # Served after the first target's 404: counted once, under the model that answered.
    chat = rows["org/chat-model"]
    assert (chat["requests"], chat["results"], chat["upstream_attempts"]) == (1, 2, 2)
    assert (chat["prompt_tokens"], chat["completion_tokens"]) == (21, 4)
    assert answer["totals"]["requests"] == 3 and answer["totals"]["errors"] == {"invalid_request": 1}
    assert all(row["key"] == "free" for row in answer["rows"])


def test_refused_requests_are_in_the_ledger_as_errors(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    for _ in range(5):
        translate(client, "fast")
    [row] = usage(client, key="fast").get_json()["rows"]
    assert (row["requests"], row["results"], row["errors"]) == (5, 3, {"rate_limited": 2})


def test_usage_needs_an_admin_key(client):
    assert_error_shape(usage(client, caller="free"), 403, "forbidden")
    assert_error_shape(client.get("/api/usage"), 401, "unauthorized")
    assert usage(client, caller="ops").status_code == 200


@pytest.mark.parametrize(
    "query, field",
    [
        ({"since": "2025-13-01"}, "since"),
        ({"since": "2025-12-05", "until": "2025-12-01"}, "since"),
        ({"since": "2024-01-01", "until": "2025-12-01"}, "since"),
        ({"key": "bad key"}, "key"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_bad_usage_query_is_a_400_naming_the_field(client, query, field):
    response = usage(client, **query)
    assert_error_shape(response, 400, "invalid_request")
    assert field in response.get_json()["errors"]


def test_usage_defaults_to_the_last_seven_days(client):
    answer = usage(client).get_json()
    assert answer["rows"] == [] and answer["totals"]["requests"] == 0
    since, until = answer["since"], answer["until"]
    assert until == time.strftime("%Y-%m-%d", time.gmtime())
    assert (time.mktime(time.strptime(until, "%Y-%m-%d")) - time.mktime(time.strptime(since, "%Y-%m-%d"))) == 6 * 86400


def test_a_quota_refusal_says_what_was_used_and_what_was_asked(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    assert translate(client, "quota", n=3).status_code == 200
    refused = translate(client, "quota", n=3)
    assert_error_shape(refused, 429, "quota_exceeded")
    assert refused.get_json()["message"].startswith(
        "key quota has used 3 of its 5 results for today (UTC) and this request asks for 3; the quota starts again in "
    )
    assert translate(client, "quota", n=2).status_code == 200  # what is left can still be used


def test_models_outside_the_catalog_share_one_ledger_row_per_key_and_day(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    for n in range(12):
        mock_hub.post(f"{API}/someone/model-{n}", json=[{"translation_text": "Dress"}])
        post(client, "text-translation", {"inputs": "连衣裙"}, f"?model_name=someone/model-{n}", headers=auth("free"))
    assert (
        post(client, "text-translation", {"inputs": "连衣裙"}, "?model_name=opus", headers=auth("free")).status_code
        == 200
    )
    assert translate(client, "free").status_code == 200
    rows = {row["model"]: row["requests"] for row in usage(client, key="free").get_json()["rows"]}
    assert rows == {"other": 12, "Helsinki-NLP/opus-mt-zh-en": 2}  # an alias is booked under the model it names


def test_an_admission_says_what_each_limit_has_left_and_when_more_frees(store):
    """What is left counts the admitted request; a moving window frees when its oldest counted
    second stops counting, a day's quota at UTC midnight, a slot when a request ends."""
    start = math.floor(time.time()) + 0.25
    window = Window(3, 60)
    first = store.admit("k", window, lease("a", 2, start), [Claim("results", 2, 5)], start)
    assert first == {
        "rpm": Left(2, pytest.approx(60.75)),  # the second began 0.25 s ago; it counts 61 s
        "concurrency": Left(1),
        "results": Left(3, pytest.approx(seconds_to_next_day(start))),
    }
    later = start + 10.5
    second = store.admit("k", window, lease("b", 2, later), [Claim("results", 1, 5)], later)
    assert second == {
        "rpm": Left(1, pytest.approx(50.25)),  # still the first request's second that frees first
        "concurrency": Left(0),
        "results": Left(2, pytest.approx(seconds_to_next_day(later))),
    }
    assert isinstance(store.admit("k", window, lease("c", 2, later), [], later), Refusal)  # no slot left
    store.settle(Settlement("k", "a", [], utc_day(later), []))
    third = store.admit("k", window, lease("d", 2, later), [], later)
    assert third == {"rpm": Left(0, pytest.approx(50.25)), "concurrency": Left(0)}  # the refusal took nothing


def test_an_admission_of_a_fresh_window_frees_with_its_own_second(store):
    now = math.floor(time.time()) + 0.75
    assert store.admit("k", Window(10, 60), None, [], now) == {"rpm": Left(9, pytest.approx(60.25))}
    much_later = now + 120  # the first request no longer counts
    assert store.admit("k", Window(10, 60), None, [], much_later) == {"rpm": Left(9, pytest.approx(60.25))}


def test_a_key_with_only_a_lease_and_no_limit_has_nothing_to_report(store):
    now = time.time()
    assert store.admit("k", None, lease("a", 0, now), [], now) == {}
    assert store.admit("k", None, None, [Claim("images", 4, 4)], now) == {
        "images": Left(0, pytest.approx(seconds_to_next_day(now)))
    }
