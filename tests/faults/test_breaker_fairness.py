"""No single caller can open a breaker for everyone, nor have a model run for a task it cannot
serve, through the real gunicorn process under both worker classes and on both stores."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
import requests

from harness.gunicorn_server import GunicornServer
from harness.redis_server import RedisServer
from harness.upstream import Step
from tests.support.fault_service import fault_env

KEY_A, KEY_B = "fault-fairness-key-a-0123456789", "fault-fairness-key-b-0123456789"
TEXT_TO_TEXT_PATH = "/hf-inference/models/google/flan-t5-xxl"
FAILURES_TO_OPEN = 5


@pytest.fixture(scope="module", params=["gevent-sqlite", "gthread-redis", "gevent-redis", "gthread-sqlite"])
def keyed_service(request, loopback, models_config, tmp_path_factory):
    """Two client keys, breakers on after 5 failures, the model API on the loopback upstream."""
    worker_class, store = request.param.split("-")
    with ExitStack() as stack:
        stores = {"STORE": "sqlite", "DATA_DIR": str(tmp_path_factory.mktemp("fairness-data"))}
        if store == "redis":
            redis = stack.enter_context(RedisServer(tmp_path_factory.mktemp("fairness-redis")))
            stores = {"STORE": "redis", "REDIS_URL": redis.url}
        env = fault_env(
            loopback,
            models_config,
            WORKER_CLASS=worker_class,
            API_KEYS=f"{KEY_A},{KEY_B}",
            BREAKER_FAILURES=str(FAILURES_TO_OPEN),
            BREAKER_OPEN_SECONDS="60",
            HF_HUB_API_BASE=f"{loopback.url}/api",
            **stores,
        )
        log_path = tmp_path_factory.mktemp(f"fairness-{request.param}") / "service.log"
        yield stack.enter_context(GunicornServer(env=env, log_path=log_path))


def post(service, task: str, key: str, query: str = "", inputs: str = "a red dress") -> requests.Response:
    return requests.post(
        f"{service.url}/api/infer/{task}{query}",
        json={"inputs": inputs},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def breaker(service, model: str) -> dict:
    routes = requests.get(f"{service.url}/api/models", headers={"X-API-Key": KEY_A}, timeout=30).json()["routes"]
    return next(target["breaker"] for route in routes for target in route["targets"] if target["model"] == model)


def test_failures_on_the_input_never_lock_out_another_key(keyed_service, upstream):
    generation_failed = {"error": "CUDA error: device-side assert triggered", "error_type": "generation"}
    upstream.script(TEXT_TO_TEXT_PATH, Step(status=500, json=generation_failed, repeat=FAILURES_TO_OPEN))
    for _ in range(FAILURES_TO_OPEN):
        assert post(keyed_service, "text-to-text", KEY_A).status_code == 502
    assert breaker(keyed_service, "google/flan-t5-xxl")["state"] == "closed"
    answer = post(keyed_service, "text-to-text", KEY_B)
    assert answer.status_code == 200, answer.text
    assert len(upstream.requests_for(TEXT_TO_TEXT_PATH)) == FAILURES_TO_OPEN + 1


def test_one_keys_failures_never_lock_out_another_key(keyed_service, upstream):
    upstream.script(TEXT_TO_TEXT_PATH, Step(status=501, json={"error": "not implemented"}, repeat=FAILURES_TO_OPEN + 1))
    for _ in range(FAILURES_TO_OPEN + 1):
        assert post(keyed_service, "text-to-text", KEY_A).status_code == 502
    assert breaker(keyed_service, "google/flan-t5-xxl")["state"] == "closed"
    answer = post(keyed_service, "text-to-text", KEY_B)
    assert answer.status_code == 200, answer.text


def test_a_model_named_for_a_task_it_cannot_serve_is_never_called(keyed_service, upstream):
    # Placed by the catalog (text-to-image's target): refused without asking anyone.
    refused = post(keyed_service, "text-translation", KEY_A, "?model_name=CompVis/stable-diffusion-v1-4", "连衣裙")
    assert refused.status_code == 400 and "serves text-to-image" in refused.json()["message"]
    # Not in the catalog: the Hub's model API says what it is, once.
    model = "stabilityai/stable-diffusion-3-medium-diffusers"
    for _ in range(3):
        refused = post(keyed_service, "text-completion", KEY_B, f"?model_name={model}")
        assert refused.status_code == 400, refused.text
        assert f"{model} serves text-to-image" in refused.json()["message"]
    upstream.wait_idle()
    paths = [entry.path for entry in upstream.requests]
    assert not any(path.startswith("/hf-inference/") for path in paths)  # nothing run, nothing billed
    assert 1 <= paths.count(f"/api/models/{model}") <= 2  # at most once per worker


def test_a_named_model_that_serves_the_task_is_called(keyed_service, upstream):
    answer = post(keyed_service, "text-translation", KEY_A, "?model_name=Helsinki-NLP/opus-mt-zh-en", "连衣裙")
    assert answer.status_code == 200, answer.text
