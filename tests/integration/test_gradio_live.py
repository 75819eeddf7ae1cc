"""Gradio apps as chain targets, live: gunicorn in front of real Gradio apps on loopback
(tests/gradio_apps/apps.py), one process per app for the module."""

import base64
import io
from contextlib import ExitStack

import pytest
import requests
from PIL import Image

from harness.catalogs import task_routes
from harness.gunicorn_server import GunicornServer
from harness.service import TOKEN, service_env
from tests.support.gradio_apps import gradio_app

MODELS = """
[models.raising-app]
protocol = "gradio"
url = "{raises}"
api_name = "translate"
inputs = ["text", "source_language", "target_language"]

[models.echo-app]
protocol = "gradio"
url = "{echo}"
api_name = "translate"
inputs = ["text", "source_language", "target_language"]

[models.image-app]
protocol = "gradio"
url = "{image}"
api_name = "draw"
inputs = ["text", "seed", "width", "height"]

[models.sleeping-app]
protocol = "gradio"
url = "{sleeps}"
api_name = "complete"
"""
CONFIG = (
    task_routes(
        zh2en=("raising-app", "echo-app"),
        completion=("sleeping-app",),
        text_to_image=("image-app",),
    )
    + MODELS
)


@pytest.fixture(scope="module")
def gateway(loopback, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gradio")
    with ExitStack() as stack:
        urls = {name: stack.enter_context(gradio_app(name, folder)) for name in ("raises", "echo", "image", "sleeps")}
        config = folder / "models.toml"
        config.write_text(CONFIG.format(**urls), encoding="utf-8")
        env = service_env(loopback, MODELS_CONFIG=str(config), TEXT_DEADLINE_SECONDS="3")
        with GunicornServer(env=env, log_path=folder / "service.log") as server:
            yield server
        assert TOKEN not in server.log_text()


def infer(server, task, inputs, args=None):
    body = {"inputs": inputs, "args": args or {}}
    return requests.post(f"{server.url}/api/infer/{task}", json=body, timeout=30)


def test_a_function_that_raises_falls_back_to_the_next_gradio_app(gateway):
    response = infer(gateway, "text-translation", "hello")
    assert response.status_code == 200, response.text
    assert response.json()["result"] == ["HELLO [zh->en]"]
    assert "fallback" in gateway.log_text() and "model_unavailable" in gateway.log_text()


def test_an_image_drawn_by_a_gradio_app_is_answered_as_a_real_image(gateway):
    response = infer(gateway, "text-to-image", "a cat", {"seed": 200, "width": 80, "height": 64})
    assert response.status_code == 200, response.text
    [item] = response.json()["result"]
    assert item["content_type"] == "image/png"
    image = Image.open(io.BytesIO(base64.b64decode(item["image_base64"])))
    assert image.size == (80, 64)
    assert image.getpixel((79, 63)) == (200, 80, 160)


def test_an_app_that_never_finishes_answers_504_within_the_deadline(gateway):
    response = infer(gateway, "text-completion", "once upon a time")
    assert response.status_code == 504, response.text
    assert response.json()["error_type"] == "upstream_timeout"
    assert response.elapsed.total_seconds() < 3 + 2
