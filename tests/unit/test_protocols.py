"""What the service sends upstream for each protocol, and how it reads the answers."""

import base64
import json
import threading
import time

import pytest
import responses

from tests.support import recordings
from tests.unit.conftest import API, ROUTER, post
from tests.unit.test_validation import assert_error_shape

OPUS = f"{API}/Helsinki-NLP/opus-mt-zh-en"
GPT2 = f"{API}/openai-community/gpt2"
CHAT = f"{ROUTER}/chat/completions"


def sent(call) -> dict:
    return json.loads(call.request.body)


def recorded_jpeg() -> bytes:
    return recordings.recorded_body("CompVis/stable-diffusion-v1-4")


def chat_answer(*contents):
    return {"choices": [{"index": i, "message": {"role": "assistant", "content": c}} for i, c in enumerate(contents)]}


def test_args_as_string_and_object_send_the_same_payload(client, upstream):
    upstream.post(OPUS, json=[{"translation_text": "Dress"}])
    args = {"top_k": 5, "top_p": 0.9, "temperature": 0.7, "max_new_tokens": 20}
    assert post(client, "text-translation", {"inputs": "连衣裙", "args": args}).status_code == 200
    assert post(client, "text-translation", {"inputs": "连衣裙", "args": json.dumps(args)}).status_code == 200
    first, second = (sent(call) for call in upstream.calls)
    assert first == second
    assert first == {
        "inputs": "连衣裙",
        "parameters": {"generate_parameters": {"do_sample": True, "max_new_tokens": 20, "top_k": 5, "top_p": 0.9, "temperature": 0.7}},
    }


def test_translation_answer_has_the_documented_shape(client, upstream):
    upstream.post(OPUS, json=[{"translation_text": "Dress"}])
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


def test_top_p_one_is_left_out_upstream(client, upstream):
    upstream.post(GPT2, json=[{"generated_text": " world"}])
    post(client, "text-completion", {"inputs": "hello", "args": {"top_p": 1.0}})
    parameters = sent(upstream.calls[0])["parameters"]
    assert "top_p" not in parameters
    assert parameters == {"do_sample": True, "max_new_tokens": 128, "top_k": 30, "return_full_text": False}


def test_empty_args_string_means_defaults(client, upstream):
    upstream.post(GPT2, json=[{"generated_text": " world"}])
    assert post(client, "text-completion", {"inputs": "hello", "args": ""}).status_code == 200
    assert sent(upstream.calls[0])["parameters"]["max_new_tokens"] == 128


def test_completion_strips_an_echoed_prompt(client, upstream):
    upstream.post(GPT2, json=[{"generated_text": "hello world, again"}])
    response = post(client, "text-completion", {"inputs": "hello", "args": {"do_sample": False}})
    assert response.get_json()["result"] == [" world, again"]


def test_return_full_text_keeps_the_prompt(client, upstream):
    upstream.post(GPT2, json=[{"generated_text": "hello world"}])
    response = post(client, "text-completion", {"inputs": "hello", "args": {"return_full_text": True, "do_sample": False}})
    assert response.get_json()["result"] == ["hello world"]
    assert sent(upstream.calls[0])["parameters"]["return_full_text"] is True


def test_greedy_decoding_asks_once_and_repeats(client, upstream):
    upstream.post(GPT2, json=[{"generated_text": " world"}])
    response = post(client, "text-completion", {"inputs": "hello", "args": {"do_sample": False, "num_sentences": 4}})
    assert response.get_json()["result"] == [" world"] * 4
    assert len(upstream.calls) == 1
    assert sent(upstream.calls[0])["parameters"] == {"do_sample": False, "max_new_tokens": 128, "return_full_text": False}
    assert "x-use-cache" not in upstream.calls[0].request.headers


class SlowGeneration:
    """A mocked generation route that answers after `seconds` and counts overlapping calls."""

    def __init__(self, seconds: float):
        self.seconds, self.in_flight, self.peak = seconds, 0, 0
        self._lock = threading.Lock()

    def __call__(self, request):
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(self.seconds)
        with self._lock:
            self.in_flight -= 1
        seed = json.loads(request.body)["parameters"].get("seed")
        return 200, {}, json.dumps([{"generated_text": f" seed {seed}"}])


def test_sampling_fans_out_concurrently_with_distinct_seeds(client, upstream):
    generation = SlowGeneration(0.2)
    upstream.add_callback(responses.POST, GPT2, callback=generation)
    response = post(client, "text-completion", {"inputs": "hello", "args": {"num_sentences": 3, "seed": 40}})
    assert response.get_json()["result"] == [" seed 40", " seed 41", " seed 42"]
    assert generation.peak == 3
    assert all(call.request.headers["x-use-cache"] == "false" for call in upstream.calls)


def test_random_seeds_differ_between_fanned_out_calls(client, upstream):
    upstream.post(GPT2, json=[{"generated_text": " x"}])
    post(client, "text-completion", {"inputs": "hello", "args": {"num_sentences": 5}})
    seeds = {sent(call)["parameters"]["seed"] for call in upstream.calls}
    assert len(seeds) == 5


def test_one_failed_fan_out_call_fails_the_request(client, upstream):
    upstream.post(GPT2, json=[{"generated_text": " x"}])
    upstream.post(GPT2, json={"error": "bad"}, status=422)
    response = post(client, "text-completion", {"inputs": "hello", "args": {"num_sentences": 2}})
    assert_error_shape(response, 422, "model_rejected_input")


def test_input_template_decorates_translation_input(client, upstream):
    upstream.post(f"{API}/google/madlad400-3b-mt", json=[{"translation_text": "连衣裙"}])
    response = post(client, "text-translation", {"inputs": "a dress"}, query="?model_type=en2zh")
    assert response.get_json()["model"] == "google/madlad400-3b-mt"
    assert sent(upstream.calls[0])["inputs"] == "<2zh> a dress"


def test_template_placeholders_in_user_text_are_not_expanded(client, upstream):
    upstream.post(f"{API}/google/madlad400-3b-mt", json=[{"translation_text": "x"}])
    post(client, "text-translation", {"inputs": "{tgt} {text}"}, query="?model_type=en2zh")
    assert sent(upstream.calls[0])["inputs"] == "<2zh> {tgt} {text}"


def test_model_name_alias_and_dedicated_url(client, upstream):
    upstream.post(OPUS, json=[{"translation_text": "Dress"}])
    upstream.post("https://tgi.internal.test", json=[{"generated_text": "ok"}])
    assert post(client, "text-translation", {"inputs": "x"}, query="?model_name=opus").get_json()["model"] == "Helsinki-NLP/opus-mt-zh-en"
    assert post(client, "text-to-text", {"inputs": "x"}, query="?model_name=tgi-server").get_json()["result"] == ["ok"]


def test_openai_completions_asks_once_with_n(client, upstream):
    upstream.post(
        f"{API}/org/vllm-model/v1/completions",
        json={"choices": [{"index": i, "text": f" t{i}"} for i in range(3)]},
    )
    response = post(client, "text-completion", {"inputs": "hi", "args": {"num_sentences": 3, "top_p": 0.5, "seed": 1}}, query="?model_name=completions-model")
    assert response.get_json()["result"] == [" t0", " t1", " t2"]
    assert len(upstream.calls) == 1
    assert sent(upstream.calls[0]) == {"model": "org/vllm-model", "prompt": "hi", "max_tokens": 128, "n": 3, "top_p": 0.5, "seed": 1, "top_k": 30}


def test_server_ignoring_n_is_topped_up_with_single_calls(client, upstream):
    upstream.post(f"{API}/org/vllm-model/v1/completions", json={"choices": [{"text": "a"}]})
    response = post(client, "text-completion", {"inputs": "hi", "args": {"num_sentences": 3}}, query="?model_name=completions-model")
    assert response.get_json()["result"] == ["a", "a", "a"]
    asked = [json.loads(call.request.body)["n"] for call in upstream.calls]
    assert asked == [3, 1, 1]


@pytest.mark.parametrize("answer", [{"choices": []}, {"choices": ["x"]}, {"nothing": 1}, [1]])
def test_openai_answers_without_choices_are_502(client, upstream, answer):
    upstream.post(f"{API}/org/vllm-model/v1/completions", json=answer)
    response = post(client, "text-completion", {"inputs": "hi"}, query="?model_name=completions-model")
    assert_error_shape(response, 502, "upstream_error")


def test_chat_translation_uses_configured_prompt_and_strips_wrapping(client, upstream):
    upstream.post(CHAT, json=chat_answer('"Dress"', "```\nOne-piece dress\n```"))
    response = post(client, "text-translation", {"inputs": "连衣裙", "args": {"num_sentences": 2, "max_new_tokens": 40}}, query="?model_type=zh2en&model_name=chat-model")
    assert response.get_json()["result"] == ["Dress", "One-piece dress"]
    payload = sent(upstream.calls[0])
    assert payload["model"] == "org/chat-model:novita"
    assert payload["messages"] == [
        {"role": "system", "content": "Translate from Simplified Chinese to English. Answer with the translation only."},
        {"role": "user", "content": "连衣裙"},
    ]
    assert payload["max_tokens"] == 40 and payload["n"] == 2


def test_chat_greedy_sends_temperature_zero(client, upstream):
    upstream.post(CHAT, json=chat_answer("Dress"))
    post(client, "text-translation", {"inputs": "连衣裙", "args": {"do_sample": False, "num_sentences": 2}}, query="?model_name=chat-model")
    payload = sent(upstream.calls[0])
    assert payload["temperature"] == 0.0 and payload["n"] == 1


def test_image_keeps_the_type_the_upstream_sent(client, upstream):
    jpeg = recorded_jpeg()
    upstream.post(f"{API}/CompVis/stable-diffusion-v1-4", body=jpeg, content_type="image/jpeg")
    response = post(client, "text-to-image", {"inputs": "a dress"}, query="?model_name=CompVis/stable-diffusion-v1-4")
    result = response.get_json()["result"]
    assert result == [{"image_base64": base64.b64encode(jpeg).decode(), "content_type": "image/jpeg"}]
    assert upstream.calls[0].request.headers["Accept"] == "image/png"


def test_image_fan_out_sends_image_parameters_and_seeds(client, upstream):
    upstream.post(f"{API}/CompVis/stable-diffusion-v1-4", body=recorded_jpeg(), content_type="image/jpeg")
    args = {"num_sentences": 2, "seed": 7, "width": 512, "height": 512, "negative_prompt": "blur", "guidance_scale": 7.5, "num_inference_steps": 20}
    response = post(client, "text-to-image", {"inputs": "a dress", "args": args}, query="?model_name=CompVis/stable-diffusion-v1-4")
    assert len(response.get_json()["result"]) == 2
    sent_parameters = sorted((sent(call)["parameters"] for call in upstream.calls), key=lambda p: p["seed"])
    assert sent_parameters[0] == {"negative_prompt": "blur", "guidance_scale": 7.5, "num_inference_steps": 20, "width": 512, "height": 512, "seed": 7}
    assert sent_parameters[1]["seed"] == 8


def test_image_as_json_base64_is_decoded(client, upstream):
    jpeg = recorded_jpeg()
    upstream.post(f"{API}/CompVis/stable-diffusion-v1-4", json={"data": [{"b64_json": base64.b64encode(jpeg).decode()}]})
    result = post(client, "text-to-image", {"inputs": "x"}, query="?model_name=CompVis/stable-diffusion-v1-4").get_json()["result"]
    assert result[0]["content_type"] == "image/jpeg"
    assert base64.b64decode(result[0]["image_base64"]) == jpeg


@pytest.mark.parametrize(
    "body, content_type",
    [(b"<html>oops</html>", "text/html"), (b"", "image/png"), (b'{"data": [{"b64_json": "!!"}]}', "application/json"), (b'{"data": [{"b64_json": "aGVsbG8="}]}', "application/json")],
)
def test_answers_that_are_not_images_are_502(client, upstream, body, content_type):
    upstream.post(f"{API}/CompVis/stable-diffusion-v1-4", body=body, content_type=content_type)
    response = post(client, "text-to-image", {"inputs": "x"}, query="?model_name=CompVis/stable-diffusion-v1-4")
    assert_error_shape(response, 502, "upstream_error")


def test_image_over_size_limit_is_refused(client, upstream):
    upstream.post(f"{API}/CompVis/stable-diffusion-v1-4", body=b"\xff\xd8\xff" + b"0" * (1024 * 1024), content_type="image/jpeg")
    response = post(client, "text-to-image", {"inputs": "x"}, query="?model_name=CompVis/stable-diffusion-v1-4")
    assert "limit" in assert_error_shape(response, 502, "upstream_error")["message"]
    assert len(upstream.calls) == 1


def test_fallback_on_missing_model_names_the_serving_model(client, upstream):
    upstream.post(f"{API}/missing/image-model", json={"error": "Model missing/image-model does not exist"}, status=404)
    upstream.post(f"{API}/CompVis/stable-diffusion-v1-4", body=recorded_jpeg(), content_type="image/jpeg")
    response = post(client, "text-to-image", {"inputs": "x"})
    assert response.status_code == 200
    assert response.get_json()["model"] == "CompVis/stable-diffusion-v1-4"


def test_fallback_on_loading_model_within_its_share_of_the_deadline(client, upstream, clock):
    upstream.post(f"{API}/missing/model", json={"error": "loading", "estimated_time": 20}, status=503)
    upstream.post(CHAT, json=chat_answer("Kleid"))
    response = post(client, "text-translation", {"inputs": "连衣裙"}, query="?model_type=zh2de")
    assert response.get_json()["model"] == "org/chat-model"
    assert sum(clock.sleeps) <= 15.0  # half of the 30 s deadline for the first of two targets


def test_no_fallback_on_the_callers_own_error(client, upstream):
    upstream.post(f"{API}/missing/model", json={"error": "input too long"}, status=422)
    response = post(client, "text-translation", {"inputs": "连衣裙"}, query="?model_type=zh2de")
    assert_error_shape(response, 422, "model_rejected_input")
    assert all("/missing/model" in call.request.url for call in upstream.calls)


def test_chat_message_of_the_wrong_shape_is_502(client, upstream):
    upstream.post(CHAT, json={"choices": [{"message": "hello"}]})
    response = post(client, "text-translation", {"inputs": "连衣裙"}, query="?model_name=chat-model")
    assert_error_shape(response, 502, "upstream_error")


@pytest.mark.parametrize(
    "answer",
    [
        {"error": "The requested model 'missing/model' is not supported by any provider you have enabled."},
        {"error": {"message": "unavailable here", "type": "invalid_request_error", "code": "model_not_supported"}},
    ],
)
def test_not_served_anywhere_falls_back(client, upstream, answer):
    upstream.post(f"{API}/missing/model", json=answer, status=400)
    upstream.post(CHAT, json=chat_answer("Kleid"))
    response = post(client, "text-translation", {"inputs": "连衣裙"}, query="?model_type=zh2de")
    assert response.get_json()["model"] == "org/chat-model"


def test_large_seeds_stay_consecutive(client, upstream):
    upstream.post(GPT2, json=[{"generated_text": " x"}])
    post(client, "text-completion", {"inputs": "hello", "args": {"num_sentences": 2, "seed": 3_000_000_000}})
    assert sorted(sent(call)["parameters"]["seed"] for call in upstream.calls) == [3_000_000_000, 3_000_000_001]


def test_top_up_calls_continue_the_callers_seeds(client, upstream):
    upstream.post(f"{API}/org/vllm-model/v1/completions", json={"choices": [{"text": "a"}]})
    post(client, "text-completion", {"inputs": "hi", "args": {"num_sentences": 3, "seed": 10}}, query="?model_name=completions-model")
    assert sorted(sent(call)["seed"] for call in upstream.calls) == [10, 11, 12]


def test_fan_out_never_exceeds_its_concurrency(clock, upstream):
    from service import create_app
    from tests.unit.conftest import make_settings

    generation = SlowGeneration(0.05)
    upstream.add_callback(responses.POST, GPT2, callback=generation)
    app = create_app(make_settings(fanout_concurrency=2))
    response = post(app.test_client(), "text-completion", {"inputs": "hello", "args": {"num_sentences": 5}}, query="?model_name=openai-community/gpt2")
    assert len(response.get_json()["result"]) == 5
    assert generation.peak == 2
