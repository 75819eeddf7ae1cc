"""A model named in ?model_name= must be able to serve the task; refused before any upstream call."""

import pytest

from service import create_app
from service.catalog import Catalog, CatalogError
from service.settings import DEFAULT_MODELS_CONFIG
from tests.support.app import make_app, make_settings, post
from tests.support.assertions import assert_error_shape

SHIPPED = DEFAULT_MODELS_CONFIG.read_text(encoding="utf-8")


@pytest.fixture
def shipped_client(clock):
    return make_app(make_settings(), SHIPPED, clock).test_client()


@pytest.mark.parametrize(
    "task, model_name, serves",
    [
        ("text-translation", "sdxl", "text-to-image"),
        ("text-translation", "flux", "text-to-image"),
        ("text-completion", "sdxl-lightning", "text-to-image"),
        ("text-to-image", "llama", "text-translation, text-completion, text-to-text"),
        ("text-to-image", "llama-3.1-8b-completions", "text-completion"),
        ("text-translation", "llama-3.1-8b-completions", "text-completion"),
        ("text-translation", "llama-3.1-8b-chat-novita", "text-to-text"),
    ],
)
def test_a_model_that_cannot_serve_the_task_is_refused_naming_what_it_serves(
    shipped_client, mock_hub, task, model_name, serves
):
    response = post(shipped_client, task, {"inputs": "连衣裙"}, query=f"?model_name={model_name}")
    body = assert_error_shape(response, 400, "invalid_request")
    assert task in body["message"] and f"it serves: {serves}" in body["message"]
    assert "model_name" in body["errors"]
    assert len(mock_hub.calls) == 0


def test_a_plain_hub_id_is_still_tried_for_any_task(shipped_client, mock_hub):
    mock_hub.post(
        "https://hub.test/hf-inference/models/someone/some-image-model",
        status=404,
        json={"error": "Model someone/some-image-model does not exist"},
    )
    response = post(
        shipped_client, "text-to-image", {"inputs": "a dress"}, query="?model_name=someone/some-image-model"
    )
    assert_error_shape(response, 404, "model_not_found")
    inference_calls = [call.request.url for call in mock_hub.calls if "/hf-inference/" in call.request.url]
    assert inference_calls == ["https://hub.test/hf-inference/models/someone/some-image-model"]


def test_a_configured_chain_with_a_model_that_cannot_serve_its_task_fails_at_start():
    broken = SHIPPED.replace('zh2en = ["madlad400"', 'zh2en = ["flux-dev-fal", "madlad400"', 1)
    assert broken != SHIPPED
    with pytest.raises(CatalogError, match="flux-dev-fal.*cannot serve text-translation"):
        create_app(make_settings(), Catalog(__import__("tomllib").loads(broken)))
