"""Models on servers of one's own, through `url`: an OpenAI-compatible server (vLLM, llama.cpp's
server, Ollama) for chat and completions, and a dedicated Inference Endpoint for the classic
payload; each with a token of its own (`token_env`) or none, never the Hub token by default."""

import pytest
import requests

from harness.catalogs import task_routes
from harness.gunicorn_server import GunicornServer
from harness.service import TOKEN, service_env

SERVER_TOKEN = "local-server-secret-5f1e2d3c4b"
ENDPOINT_PATH = "/endpoint/my-translator"

CONFIG = (
    task_routes(zh2en=("endpoint-with-hub-token",), completion=("vllm-completions",), text_to_text=("ollama-chat",))
    + """

[models.ollama-chat]
# Ollama's OpenAI-compatible API, without a token.
id = "llama3.1:8b"
protocol = "openai-chat"
url = "{origin}/ollama"

[models.vllm-chat]
# vLLM with --api-key: its own token, from MY_VLLM_TOKEN.
id = "meta-llama/Llama-3.1-8B-Instruct"
protocol = "openai-chat"
url = "{origin}/vllm"
token_env = "MY_VLLM_TOKEN"

[models.vllm-completions]
id = "meta-llama/Llama-3.1-8B-Instruct"
protocol = "openai-completions"
url = "{origin}/vllm"
token_env = "MY_VLLM_TOKEN"

[models.endpoint-with-hub-token]
# A dedicated Inference Endpoint takes the Hugging Face token: said so, explicitly.
id = "Helsinki-NLP/opus-mt-zh-en"
url = "{origin}/endpoint/my-translator"
token_env = "HF_API_TOKEN"

[models.tgi-no-token]
id = "my-tgi"
url = "{origin}/endpoint/my-translator"
"""
)


@pytest.fixture(scope="module")
def self_hosted(loopback, tmp_path_factory):
    folder = tmp_path_factory.mktemp("self-hosted")
    config = folder / "models.toml"
    config.write_text(CONFIG.format(origin=loopback.url), encoding="utf-8")
    loopback.alias(ENDPOINT_PATH, "/hf-inference/models/t5-base")
    env = service_env(loopback, MODELS_CONFIG=str(config), MY_VLLM_TOKEN=SERVER_TOKEN)
    with GunicornServer(env=env, log_path=folder / "service.log") as server:
        yield server
    assert SERVER_TOKEN not in server.log_text() and TOKEN not in server.log_text()


def infer(server, task, model_name=None):
    params = {"model_name": model_name} if model_name else None
    return requests.post(f"{server.url}/api/infer/{task}", json={"inputs": "连衣裙"}, params=params, timeout=30)


def authorization(upstream, path_start: str):
    [request] = [r for r in upstream.requests if r.path.startswith(path_start)]
    return request.headers.get("Authorization")


def test_an_openai_compatible_server_without_a_token_gets_none(self_hosted, upstream):
    response = infer(self_hosted, "text-to-text")
    assert response.status_code == 200, response.text
    assert authorization(upstream, "/ollama/v1/chat/completions") is None
    assert upstream.requests[0].json["model"] == "llama3.1:8b"


def test_an_openai_compatible_server_gets_its_own_token_for_chat_and_completions(self_hosted, upstream):
    assert infer(self_hosted, "text-to-text", "vllm-chat").status_code == 200
    assert infer(self_hosted, "text-completion").status_code == 200
    assert authorization(upstream, "/vllm/v1/chat/completions") == f"Bearer {SERVER_TOKEN}"
    assert authorization(upstream, "/vllm/v1/completions") == f"Bearer {SERVER_TOKEN}"


def test_an_inference_endpoint_gets_the_hub_token_only_when_its_entry_asks_for_it(self_hosted, upstream):
    response = infer(self_hosted, "text-translation")
    assert response.status_code == 200, response.text
    assert authorization(upstream, ENDPOINT_PATH) == f"Bearer {TOKEN}"
    upstream.reset_log()
    assert infer(self_hosted, "text-translation", "tgi-no-token").status_code == 200
    assert authorization(upstream, ENDPOINT_PATH) is None
