"""The 2026 Hub through real gunicorn: fallbacks, provider images by URL, and model liveness."""

import base64
import socket
import threading
import time

import pytest
import requests

from harness import recordings
from harness.catalogs import task_routes
from harness.gunicorn_server import GunicornServer
from harness.service import service_env
from harness.upstream import Step

FAL_ROUTE = "/fal-ai/fal-ai/flux/dev"
FAL_IMAGE = "/files/koala/7EQDw9PT6pMiX2fm7bYOC.png"
GONE = "/hf-inference/models/gone/model"
MADLAD = "/hf-inference/models/google/madlad400-3b-mt"

CONFIG = (
    task_routes(
        zh2en=("gone/model", "madlad400"),
        completion=("llama-completions",),
        text_to_text=("llama-chat",),
        text_to_image=("flux-fal",),
    )
    + """

[models.madlad400]
id = "google/madlad400-3b-mt"
input_template = "<2{{tgt}}> {{text}}"

[models.llama-completions]
id = "meta-llama/Llama-3.1-8B-Instruct"
protocol = "openai-completions"

[models.llama-chat]
id = "meta-llama/Llama-3.1-8B-Instruct"
protocol = "openai-chat"

[models.flux-fal]
id = "black-forest-labs/FLUX.1-dev"
protocol = "fal-ai"
provider_model = "fal-ai/flux/dev"

[providers.fal-ai]
download_hosts = ["{origin}", "fal.media", "*.fal.media"]
"""
)


def recorded_png() -> bytes:
    return recordings.recorded_body(FAL_IMAGE, recordings.PROVIDERS_FILE)


@pytest.fixture(scope="module")
def hub_service(loopback, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub2026")
    config = folder / "models.toml"
    config.write_text(CONFIG.format(origin=loopback.url))
    env = service_env(
        loopback,
        MODELS_CONFIG=str(config),
        HF_PROVIDERS_BASE=loopback.url,
        HF_HUB_API_BASE=f"{loopback.url}/api",
        MAX_IMAGE_BYTES=str(4 * 1024 * 1024),
    )
    loopback.alias(MADLAD, "/hf-inference/models/t5-base")
    with GunicornServer(env=env, log_path=folder / "service.log") as server:
        yield server
    assert "WORKER TIMEOUT" not in server.log_text()


def infer(server, task, body='{"inputs": "连衣裙"}', params=None):
    return requests.post(f"{server.url}/api/infer/{task}", data=body, params=params, timeout=30)


def test_fallback_taken_when_the_first_model_is_gone(hub_service, upstream):
    response = infer(hub_service, "text-translation")
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "google/madlad400-3b-mt"
    assert [r.path for r in upstream.requests] == [GONE, MADLAD]


def test_fallback_not_taken_for_the_callers_error(hub_service, upstream):
    upstream.script(
        GONE, Step(status=422, json={"error": "Input validation error: too long", "error_type": "validation"})
    )
    response = infer(hub_service, "text-translation")
    assert response.status_code == 422 and response.json()["error_type"] == "model_rejected_input"
    assert [r.path for r in upstream.requests] == [GONE]


def test_provider_image_is_fetched_by_url(hub_service, upstream):
    upstream.script(
        FAL_ROUTE, Step(json={"images": [{"url": f"{upstream.url}{FAL_IMAGE}", "content_type": "image/jpeg"}]})
    )
    response = infer(hub_service, "text-to-image")
    assert response.status_code == 200, response.text
    image = response.json()["result"][0]
    assert image["content_type"] == "image/png"
    assert base64.b64decode(image["image_base64"]) == recorded_png()
    download = upstream.requests_for(FAL_IMAGE)[0]
    assert download.method == "GET" and "authorization" not in {name.lower() for name in download.headers}


@pytest.mark.parametrize("url", ["https://images.example.com" + FAL_IMAGE, "http://localhost:{port}" + FAL_IMAGE])
def test_url_on_a_disallowed_host_is_refused(hub_service, upstream, url):
    upstream.script(FAL_ROUTE, Step(json={"images": [{"url": url.format(port=upstream.port)}]}))
    response = infer(hub_service, "text-to-image")
    assert response.status_code == 502 and response.json()["error_type"] == "upstream_error"
    assert "refused" in response.json()["message"]
    upstream.wait_idle()
    assert not upstream.requests_for(FAL_IMAGE)


class CountingListener:
    """A TCP listener on 127.0.0.1 that only counts the connections made to it."""

    def __init__(self, port: int = 0):
        self.sock = socket.create_server(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._running = True
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while self._running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._running = False
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener():
    counting = CountingListener()
    yield counting
    counting.close()


@pytest.fixture
def https_listener():
    """A listener where an https URL without a port would connect: 127.0.0.1:443."""
    try:
        counting = CountingListener(443)
    except OSError as exc:  # not root, or the port is taken
        pytest.skip(f"127.0.0.1:443 cannot be listened on here ({exc})")
    yield counting
    counting.close()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1\\.fal.media/x.png",
        "https://127.0.0.1\\@v3.fal.media/x.png",
        "https://127.0.0.1%2f.fal.media/x.png",
        "https://localhost/x.png",
        "https://127.1/x.png",
    ],
)
def test_a_result_url_that_could_reach_port_443_here_never_connects_to_it(hub_service, upstream, https_listener, url):
    upstream.script(FAL_ROUTE, Step(json={"images": [{"url": url}]}))
    response = infer(hub_service, "text-to-image")
    assert response.status_code == 502 and response.json()["error_type"] == "upstream_error", response.text
    time.sleep(0.3)
    assert https_listener.connections == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:{port}\\.fal.media/x.png",
        "https://127.0.0.1:{port}\\@v3.fal.media/x.png",
        "http://v3.fal.media@127.0.0.1:{port}/x.png",
        "http://127.0.0.1:{port}%2f.fal.media/x.png",
        "http://127.0.0.1:{port}#@v3.fal.media/x.png",
        "http://localhost:{port}/x.png",
        "http://127.1:{port}/x.png",
        "http://2130706433:{port}/x.png",
        "http://[::ffff:127.0.0.1]:{port}/x.png",
    ],
)
def test_a_result_url_that_could_reach_a_local_listener_never_connects_to_it(hub_service, upstream, listener, url):
    upstream.script(FAL_ROUTE, Step(json={"images": [{"url": url.format(port=listener.port)}]}))
    response = infer(hub_service, "text-to-image")
    assert response.status_code == 502 and response.json()["error_type"] == "upstream_error", response.text
    time.sleep(0.3)
    assert listener.connections == 0


def test_chat_and_completions_routes(hub_service, upstream):
    t2t = infer(hub_service, "text-to-text", body='{"inputs": "Say hi", "args": {"num_sentences": 2}}')
    completion = infer(hub_service, "text-completion", body='{"inputs": "one plus two equals"}')
    assert t2t.status_code == 200 and len(t2t.json()["result"]) == 2
    assert completion.status_code == 200 and completion.json()["result"][0]
    chat = upstream.requests_for("/v1/chat/completions")[0].json
    assert chat["n"] == 2 and chat["messages"][-1] == {"role": "user", "content": "Say hi"}


def test_api_models_reports_liveness_from_the_hub(hub_service, upstream):
    live = {"inferenceProviderMapping": {"hf-inference": {"status": "live", "task": "translation"}}}
    upstream.script("/api/models/google/madlad400-3b-mt", Step(json=live, repeat=2))
    upstream.script(
        "/api/models/meta-llama/Llama-3.1-8B-Instruct",
        Step(json={"inferenceProviderMapping": [{"provider": "novita", "status": "live"}]}, repeat=2),
    )
    response = requests.get(f"{hub_service.url}/api/models", timeout=30)
    assert response.status_code == 200
    routes = {route["route"]: route["targets"] for route in response.json()["routes"]}
    assert [(t["model"], t["status"]) for t in routes["text-translation:zh2en"]] == [
        ("gone/model", "not_found"),
        ("google/madlad400-3b-mt", "live"),
    ]
    assert routes["text-to-text"][0]["status"] == "live"  # the router picks any live provider
    assert routes["text-completion"][0]["status"] == "not_served"  # hf-inference is not among its providers
    upstream.wait_idle()
    assert not [r for r in upstream.requests if not r.path.startswith("/api/models/")]
