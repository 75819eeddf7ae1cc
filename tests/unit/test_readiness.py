"""GET /readyz: ready when a token is set or no configured model needs one; never calls the upstream."""

import tomllib

import pytest

from service import create_app
from service.catalog import Catalog
from tests.support.app import TEST_CATALOG, make_settings

SELF_HOSTED_CATALOG = """
[tasks.text-translation.pairs]
zh2en = ["tgi"]
[tasks.text-completion]
targets = ["tgi"]
[tasks.text-to-text]
targets = ["tgi"]
[tasks.text-to-image]
targets = ["images"]
[models.tgi]
id = "my-tgi"
url = "http://tgi.internal.test"
[models.images]
id = "my-images"
url = "http://images.internal.test"
"""


def readiness(catalog_text: str, mock_hub, **settings):
    """Answer GET /readyz on an app built from a catalog and settings."""
    app = create_app(make_settings(**settings), Catalog(tomllib.loads(catalog_text)))
    response = app.test_client().get("/readyz")
    assert not mock_hub.calls  # readiness never calls the upstream
    return response


def test_ready_with_a_token(mock_hub):
    response = readiness(TEST_CATALOG, mock_hub)
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "checks": {"configuration": "loaded", "token": "set", "store": "off"},
    }
    assert response.headers["X-Request-ID"]


def test_not_ready_without_a_token(mock_hub):
    response = readiness(TEST_CATALOG, mock_hub, hf_api_token=None)
    assert response.status_code == 503
    body = response.get_json()
    assert (body["code"], body["error_type"]) == (503, "not_ready")
    assert "HF_API_TOKEN" in body["message"] and ".env" in body["message"]
    assert "Helsinki-NLP/opus-mt-zh-en" in body["errors"]["HF_API_TOKEN"][0]
    assert "my-tgi" not in body["errors"]["HF_API_TOKEN"][0]  # it has its own url
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_no_token_needed_when_every_model_has_its_own_url(mock_hub):
    response = readiness(SELF_HOSTED_CATALOG, mock_hub, hf_api_token=None)
    assert response.status_code == 200
    assert response.get_json()["checks"]["token"] == "not needed"


@pytest.mark.parametrize("hosted", ['"openai-community/gpt2"', '"tgi", "org/hosted-fallback"'])
def test_one_hosted_model_is_enough_to_need_a_token(mock_hub, hosted):
    catalog = SELF_HOSTED_CATALOG.replace(
        '[tasks.text-completion]\ntargets = ["tgi"]', f"[tasks.text-completion]\ntargets = [{hosted}]"
    )
    response = readiness(catalog, mock_hub, hf_api_token=None)
    assert response.status_code == 503
    needed = response.get_json()["errors"]["HF_API_TOKEN"][0]
    assert "my-tgi" not in needed and ("gpt2" in needed or "org/hosted-fallback" in needed)


def test_readiness_needs_no_client_key(mock_hub):
    response = readiness(TEST_CATALOG, mock_hub, api_keys=frozenset({"client-key-1"}))
    assert response.status_code == 200


def test_only_get(client):
    response = client.post("/readyz")
    assert response.status_code == 405 and response.get_json()["error_type"] == "method_not_allowed"
