"""Optional client API keys guard /api/; health checks stay open."""

import pytest

from service import create_app
from tests.support.app import API, make_settings, post
from tests.support.assertions import assert_error_shape

KEY = "client-key-7f3a"


@pytest.fixture
def guarded(clock):
    return create_app(make_settings(api_keys=frozenset({KEY, "other-key"}))).test_client()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"X-API-Key": "client-key-7f3"},
        {"Authorization": KEY},
        {"Authorization": "Bearer "},
        # Hostile: two different keys, several Authorization headers (as gunicorn joins them),
        # a non-ASCII key, a key of 100 KB.
        {"Authorization": f"Bearer {KEY}", "X-API-Key": "other-key"},
        {"Authorization": f"Bearer {KEY}, Bearer other-key"},
        {"X-API-Key": "clé-\u00e9\u4e2d"},
        {"Authorization": "Bearer " + KEY * 7000},
    ],
)
def test_missing_or_wrong_key_is_401(guarded, mock_hub, headers):
    response = post(guarded, "text-translation", {"inputs": "x"}, headers=headers)
    assert_error_shape(response, 401, "unauthorized")
    assert KEY not in response.get_data(as_text=True)
    assert not mock_hub.calls


@pytest.mark.parametrize(
    "headers", [{"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}, {"authorization": f"bearer {KEY}"}]
)
def test_valid_key_is_served(guarded, mock_hub, headers):
    mock_hub.post(f"{API}/google/madlad400-3b-mt", json=[{"translation_text": "Dress"}])
    assert post(guarded, "text-translation", {"inputs": "连衣裙"}, headers=headers).status_code == 200
    assert "Authorization" in mock_hub.calls[0].request.headers
    assert KEY not in mock_hub.calls[0].request.headers["Authorization"]  # the caller's key never goes upstream


def test_health_stays_open(guarded):
    assert guarded.get("/healthz").status_code == 200


def test_no_keys_configured_means_open(client, mock_hub):
    mock_hub.post(f"{API}/Helsinki-NLP/opus-mt-zh-en", json=[{"translation_text": "Dress"}])
    assert post(client, "text-translation", {"inputs": "连衣裙"}).status_code == 200
