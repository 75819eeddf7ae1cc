"""Fallback along a route: the next model when one is missing, not served, or silent past its
share of the deadline; never on the caller's own error."""

import pytest

from harness import recordings
from tests.support.app import API, ROUTER, post
from tests.support.assertions import assert_error_shape

CHAT = f"{ROUTER}/chat/completions"


def chat_answer(content: str) -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": content}}]}


def test_fallback_on_missing_model_names_the_serving_model(client, mock_hub):
    mock_hub.post(f"{API}/missing/image-model", json={"error": "Model missing/image-model does not exist"}, status=404)
    jpeg = recordings.recorded_body("CompVis/stable-diffusion-v1-4")
    mock_hub.post(f"{API}/CompVis/stable-diffusion-v1-4", body=jpeg, content_type="image/jpeg")
    response = post(client, "text-to-image", {"inputs": "x"})
    assert response.status_code == 200
    assert response.get_json()["model"] == "CompVis/stable-diffusion-v1-4"


def test_fallback_on_loading_model_within_its_share_of_the_deadline(client, mock_hub, clock):
    mock_hub.post(f"{API}/missing/model", json={"error": "loading", "estimated_time": 20}, status=503)
    mock_hub.post(CHAT, json=chat_answer("Kleid"))
    response = post(client, "text-translation", {"inputs": "连衣裙"}, query="?model_type=zh2de")
    assert response.get_json()["model"] == "org/chat-model"
    assert sum(clock.sleeps) <= 15.0  # half of the 30 s deadline for the first of two targets


def test_no_fallback_on_the_callers_own_error(client, mock_hub):
    mock_hub.post(f"{API}/missing/model", json={"error": "input too long"}, status=422)
    response = post(client, "text-translation", {"inputs": "连衣裙"}, query="?model_type=zh2de")
    assert_error_shape(response, 422, "model_rejected_input")
    assert all("/missing/model" in call.request.url for call in mock_hub.calls)


@pytest.mark.parametrize(
    "answer",
    [
        {"error": "The requested model 'missing/model' is not supported by any provider you have enabled."},
        {"error": {"message": "unavailable here", "type": "invalid_request_error", "code": "model_not_supported"}},
        {"error": "Model missing/model is not supported by provider hf-inference"},
    ],
)
def test_not_served_falls_back(client, mock_hub, answer):
    mock_hub.post(f"{API}/missing/model", json=answer, status=400)
    mock_hub.post(CHAT, json=chat_answer("Kleid"))
    response = post(client, "text-translation", {"inputs": "连衣裙"}, query="?model_type=zh2de")
    assert response.get_json()["model"] == "org/chat-model"
