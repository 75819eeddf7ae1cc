"""What the service sends upstream for each task and protocol, and how it reads the answers."""

import base64
import json

import pytest

from harness import recordings
from tests.support.app import API, ROUTER, post
from tests.support.assertions import assert_error_shape

OPUS = f"{API}/Helsinki-NLP/opus-mt-zh-en"
GPT2 = f"{API}/openai-community/gpt2"
CHAT = f"{ROUTER}/chat/completions"


def sent(call) -> dict:
    return json.loads(call.request.body)


def recorded_jpeg() -> bytes:
    return recordings.recorded_body("CompVis/stable-diffusion-v1-4")


def chat_answer(*contents):
    return {"choices": [{"index": i, "message": {"role": "assistant", "content": c}} for i, c in enumerate(contents)]}


def test_args_as_string_and_object_send_the_same_payload(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    args = {"top_k": 5, "top_p": 0.9, "temperature": 0.7, "max_new_tokens": 20}
    assert post(client, "text-translation", {"inputs": "连衣裙", "args": args}).status_code == 200
    assert post(client, "text-translation", {"inputs": "连衣裙", "args": json.dumps(args)}).status_code == 200
    first, second = (sent(call) for call in mock_hub.calls)
    assert first == second
    assert first == {
        "inputs": "连衣裙",
        "parameters": {
            "generate_parameters": {
                "do_sample": True,
                "max_new_tokens": 20,
                "top_k": 5,
                "top_p": 0.9,
                "temperature": 0.7,
            }
        },
    }


def test_translation_answer_has_the_documented_shape(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    response = post(client, "text-translation", {"inputs": "连衣裙"}, query="?model_type=zh2en")
    body = response.get_json()
    assert response.status_code == 200
    assert body == {
        "code": 0,
        "message": "ok",
        "task_type": "text-translation",
        "model": "Helsinki-NLP/opus-mt-zh-en",
        "request_id": response.headers["X-Request-ID"],
        "result": ["Dress"],
    }


def test_top_p_one_is_left_out_upstream(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": " world"}])
    post(client, "text-completion", {"inputs": "hello", "args": {"top_p": 1.0}})
    parameters = sent(mock_hub.calls[0])["parameters"]
    assert "top_p" not in parameters
    assert parameters == {"do_sample": True, "max_new_tokens": 128, "top_k": 30, "return_full_text": False}


def test_empty_args_string_means_defaults(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": " world"}])
    assert post(client, "text-completion", {"inputs": "hello", "args": ""}).status_code == 200
    assert sent(mock_hub.calls[0])["parameters"]["max_new_tokens"] == 128


def test_completion_strips_an_echoed_prompt(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": "hello world, again"}])
    response = post(client, "text-completion", {"inputs": "hello", "args": {"do_sample": False}})
    assert response.get_json()["result"] == [" world, again"]


def test_return_full_text_keeps_the_prompt(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": "hello world"}])
    response = post(
        client, "text-completion", {"inputs": "hello", "args": {"return_full_text": True, "do_sample": False}}
    )
    assert response.get_json()["result"] == ["hello world"]
    assert sent(mock_hub.calls[0])["parameters"]["return_full_text"] is True


def test_input_template_decorates_translation_input(client, mock_hub):
    mock_hub.post(f"{API}/google/madlad400-3b-mt", json=[{"translation_text": "连衣裙"}])
    response = post(client, "text-translation", {"inputs": "a dress"}, query="?model_type=en2zh")
    assert response.get_json()["model"] == "google/madlad400-3b-mt"
    assert sent(mock_hub.calls[0])["inputs"] == "<2zh> a dress"


def test_template_placeholders_in_user_text_are_not_expanded(client, mock_hub):
    mock_hub.post(f"{API}/google/madlad400-3b-mt", json=[{"translation_text": "x"}])
    post(client, "text-translation", {"inputs": "{tgt} {text}"}, query="?model_type=en2zh")
    assert sent(mock_hub.calls[0])["inputs"] == "<2zh> {tgt} {text}"


def test_model_name_alias_and_dedicated_url(client, mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    mock_hub.post("https://tgi.internal.test", json=[{"generated_text": "ok"}])
    assert (
        post(client, "text-translation", {"inputs": "x"}, query="?model_name=opus").get_json()["model"]
        == "Helsinki-NLP/opus-mt-zh-en"
    )
    assert post(client, "text-to-text", {"inputs": "x"}, query="?model_name=tgi-server").get_json()["result"] == ["ok"]


@pytest.mark.parametrize("answer", [{"choices": []}, {"choices": ["x"]}, {"nothing": 1}, [1]])
def test_openai_answers_without_choices_are_502(client, mock_hub, answer):
    mock_hub.post(f"{API}/org/vllm-model/v1/completions", json=answer)
    response = post(client, "text-completion", {"inputs": "hi"}, query="?model_name=completions-model")
    assert_error_shape(response, 502, "upstream_error")


def test_chat_translation_uses_configured_prompt_and_strips_wrapping(client, mock_hub):
    mock_hub.post(CHAT, json=chat_answer('"Dress"', "```\nOne-piece dress\n```"))
    response = post(
        client,
        "text-translation",
        {"inputs": "连衣裙", "args": {"num_sentences": 2, "max_new_tokens": 40}},
        query="?model_type=zh2en&model_name=chat-model",
    )
    assert response.get_json()["result"] == ["Dress", "One-piece dress"]
    payload = sent(mock_hub.calls[0])
    assert payload["model"] == "org/chat-model:novita"
    assert payload["messages"] == [
        {
            "role": "system",
            "content": "Translate from Simplified Chinese to English. Answer with the translation only.",
        },
        {"role": "user", "content": "连衣裙"},
    ]
    assert payload["max_tokens"] == 40 and payload["n"] == 2


def test_chat_greedy_sends_temperature_zero(client, mock_hub):
    mock_hub.post(CHAT, json=chat_answer("Dress"))
    post(
        client,
        "text-translation",
        {"inputs": "连衣裙", "args": {"do_sample": False, "num_sentences": 2}},
        query="?model_name=chat-model",
    )
    payload = sent(mock_hub.calls[0])
    assert payload["temperature"] == 0.0 and payload["n"] == 1


def test_image_keeps_the_type_the_upstream_sent(client, mock_hub):
    jpeg = recorded_jpeg()
    mock_hub.post(f"{API}/CompVis/stable-diffusion-v1-4", body=jpeg, content_type="image/jpeg")
    response = post(client, "text-to-image", {"inputs": "a dress"}, query="?model_name=CompVis/stable-diffusion-v1-4")
    result = response.get_json()["result"]
    assert result == [{"image_base64": base64.b64encode(jpeg).decode(), "content_type": "image/jpeg"}]
    assert mock_hub.calls[0].request.headers["Accept"] == "image/png"


def test_image_as_json_base64_is_decoded(client, mock_hub):
    jpeg = recorded_jpeg()
    mock_hub.post(
        f"{API}/CompVis/stable-diffusion-v1-4", json={"data": [{"b64_json": base64.b64encode(jpeg).decode()}]}
    )
    result = post(
        client, "text-to-image", {"inputs": "x"}, query="?model_name=CompVis/stable-diffusion-v1-4"
    ).get_json()["result"]
    assert result[0]["content_type"] == "image/jpeg"
    assert base64.b64decode(result[0]["image_base64"]) == jpeg


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"<html>oops</html>", "text/html"),
        (b"", "image/png"),
        (b'{"data": [{"b64_json": "!!"}]}', "application/json"),
        (b'{"data": [{"b64_json": "aGVsbG8="}]}', "application/json"),
    ],
)
def test_answers_that_are_not_images_are_502(client, mock_hub, body, content_type):
    mock_hub.post(f"{API}/CompVis/stable-diffusion-v1-4", body=body, content_type=content_type)
    response = post(client, "text-to-image", {"inputs": "x"}, query="?model_name=CompVis/stable-diffusion-v1-4")
    assert_error_shape(response, 502, "upstream_error")


def test_image_over_size_limit_is_refused(client, mock_hub):
    mock_hub.post(
        f"{API}/CompVis/stable-diffusion-v1-4", body=b"\xff\xd8\xff" + b"0" * (1024 * 1024), content_type="image/jpeg"
    )
    response = post(client, "text-to-image", {"inputs": "x"}, query="?model_name=CompVis/stable-diffusion-v1-4")
    assert "limit" in assert_error_shape(response, 502, "upstream_error")["message"]
    assert len(mock_hub.calls) == 1


def test_chat_message_of_the_wrong_shape_is_502(client, mock_hub):
    mock_hub.post(CHAT, json={"choices": [{"message": "hello"}]})
    response = post(client, "text-translation", {"inputs": "连衣裙"}, query="?model_name=chat-model")
    assert_error_shape(response, 502, "upstream_error")
