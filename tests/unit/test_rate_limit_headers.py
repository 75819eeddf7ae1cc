"""A key's limits are stated on every answer, not only on its 429s, so that a client can pace
itself from its first success (the IETF draft's RateLimit-Policy)."""

import pytest

from tests.support.app import API, TEST_CATALOG, make_app, make_settings, post
from tests.support.keys import bearer, write_key_file

OPUS = f"{API}/Helsinki-NLP/opus-mt-zh-en"
KEYS = {
    "batch": {"secret": "secret-batch", "rpm": 10, "concurrency": 4, "results_per_day": 100},
    "free": {"secret": "secret-free"},
}


@pytest.fixture
def client(tmp_path, clock):
    key_file = write_key_file(tmp_path / "keys.toml", KEYS)
    settings = make_settings(api_keys_file=key_file, store="sqlite", data_dir=tmp_path / "data")
    return make_app(settings, TEST_CATALOG, clock).test_client()


def translate(client, headers):
    return post(client, "text-translation", {"inputs": "连衣裙"}, headers=headers)


def test_a_success_states_the_keys_limits(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    answer = translate(client, bearer("secret-batch"))
    assert answer.status_code == 200
    assert answer.headers["RateLimit-Policy"] == '"rpm";q=10;w=60, "concurrency";q=4, "results";q=100;w=86400'


def test_a_key_without_limits_gets_no_policy(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    answer = translate(client, bearer("secret-free"))
    assert answer.status_code == 200 and "RateLimit-Policy" not in answer.headers


def test_open_access_gets_no_policy(clock, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    answer = translate(make_app(make_settings(), TEST_CATALOG, clock).test_client(), {})
    assert answer.status_code == 200 and "RateLimit-Policy" not in answer.headers
