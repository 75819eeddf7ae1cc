"""Several results: greedy answers asked once, sampled ones fanned out with their own seeds (or
asked at once with OpenAI's n, topped up when a server ignores it), never more at once than
FANOUT_CONCURRENCY."""

import json
import threading
import time

import responses

from harness import recordings
from service import create_app
from tests.support.app import API, make_settings, post
from tests.support.assertions import assert_error_shape

GPT2 = f"{API}/openai-community/gpt2"


def sent(call) -> dict:
    return json.loads(call.request.body)


def recorded_jpeg() -> bytes:
    return recordings.recorded_body("CompVis/stable-diffusion-v1-4")


def test_greedy_decoding_asks_once_and_repeats(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": " world"}])
    response = post(client, "text-completion", {"inputs": "hello", "args": {"do_sample": False, "num_sentences": 4}})
    assert response.get_json()["result"] == [" world"] * 4
    assert len(mock_hub.calls) == 1
    assert sent(mock_hub.calls[0])["parameters"] == {
        "do_sample": False,
        "max_new_tokens": 128,
        "return_full_text": False,
    }
    assert "x-use-cache" not in mock_hub.calls[0].request.headers


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


def test_sampling_fans_out_concurrently_with_distinct_seeds(client, mock_hub):
    generation = SlowGeneration(0.2)
    mock_hub.add_callback(responses.POST, GPT2, callback=generation)
    response = post(client, "text-completion", {"inputs": "hello", "args": {"num_sentences": 3, "seed": 40}})
    assert response.get_json()["result"] == [" seed 40", " seed 41", " seed 42"]
    assert generation.peak == 3
    assert all(call.request.headers["x-use-cache"] == "false" for call in mock_hub.calls)


def test_random_seeds_differ_between_fanned_out_calls(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": " x"}])
    post(client, "text-completion", {"inputs": "hello", "args": {"num_sentences": 5}})
    seeds = {sent(call)["parameters"]["seed"] for call in mock_hub.calls}
    assert len(seeds) == 5


def test_one_failed_fan_out_call_fails_the_request(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": " x"}])
    mock_hub.post(GPT2, json={"error": "bad"}, status=422)
    response = post(client, "text-completion", {"inputs": "hello", "args": {"num_sentences": 2}})
    assert_error_shape(response, 422, "model_rejected_input")


def test_openai_completions_asks_once_with_n(client, mock_hub):
    mock_hub.post(
        f"{API}/org/vllm-model/v1/completions",
        json={"choices": [{"index": i, "text": f" t{i}"} for i in range(3)]},
    )
    response = post(
        client,
        "text-completion",
        {"inputs": "hi", "args": {"num_sentences": 3, "top_p": 0.5, "seed": 1}},
        query="?model_name=completions-model",
    )
    assert response.get_json()["result"] == [" t0", " t1", " t2"]
    assert len(mock_hub.calls) == 1
    assert sent(mock_hub.calls[0]) == {
        "model": "org/vllm-model",
        "prompt": "hi",
        "max_tokens": 128,
        "n": 3,
        "top_p": 0.5,
        "seed": 1,
        "top_k": 30,
    }


def test_server_ignoring_n_is_topped_up_with_single_calls(client, mock_hub):
    mock_hub.post(f"{API}/org/vllm-model/v1/completions", json={"choices": [{"text": "a"}]})
    response = post(
        client, "text-completion", {"inputs": "hi", "args": {"num_sentences": 3}}, query="?model_name=completions-model"
    )
    assert response.get_json()["result"] == ["a", "a", "a"]
    asked = [json.loads(call.request.body)["n"] for call in mock_hub.calls]
    assert asked == [3, 1, 1]


def test_image_fan_out_sends_image_parameters_and_seeds(client, mock_hub):
    mock_hub.post(f"{API}/CompVis/stable-diffusion-v1-4", body=recorded_jpeg(), content_type="image/jpeg")
    args = {
        "num_sentences": 2,
        "seed": 7,
        "width": 512,
        "height": 512,
        "negative_prompt": "blur",
        "guidance_scale": 7.5,
        "num_inference_steps": 20,
    }
    response = post(
        client, "text-to-image", {"inputs": "a dress", "args": args}, query="?model_name=CompVis/stable-diffusion-v1-4"
    )
    assert len(response.get_json()["result"]) == 2
    sent_parameters = sorted((sent(call)["parameters"] for call in mock_hub.calls), key=lambda p: p["seed"])
    assert sent_parameters[0] == {
        "negative_prompt": "blur",
        "guidance_scale": 7.5,
        "num_inference_steps": 20,
        "width": 512,
        "height": 512,
        "seed": 7,
    }
    assert sent_parameters[1]["seed"] == 8


def test_large_seeds_stay_consecutive(client, mock_hub):
    mock_hub.post(GPT2, json=[{"generated_text": " x"}])
    post(client, "text-completion", {"inputs": "hello", "args": {"num_sentences": 2, "seed": 3_000_000_000}})
    assert sorted(sent(call)["parameters"]["seed"] for call in mock_hub.calls) == [3_000_000_000, 3_000_000_001]


def test_top_up_calls_continue_the_callers_seeds(client, mock_hub):
    mock_hub.post(f"{API}/org/vllm-model/v1/completions", json={"choices": [{"text": "a"}]})
    post(
        client,
        "text-completion",
        {"inputs": "hi", "args": {"num_sentences": 3, "seed": 10}},
        query="?model_name=completions-model",
    )
    assert sorted(sent(call)["seed"] for call in mock_hub.calls) == [10, 11, 12]


def test_fan_out_never_exceeds_its_concurrency(clock, mock_hub):
    generation = SlowGeneration(0.05)
    mock_hub.add_callback(responses.POST, GPT2, callback=generation)
    app = create_app(make_settings(fanout_concurrency=2))
    response = post(
        app.test_client(),
        "text-completion",
        {"inputs": "hello", "args": {"num_sentences": 5}},
        query="?model_name=openai-community/gpt2",
    )
    assert len(response.get_json()["result"]) == 5
    assert generation.peak == 2
