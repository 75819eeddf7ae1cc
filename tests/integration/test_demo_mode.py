"""`DEMO=1 sh start.sh`: the real service under gunicorn, answering from recordings on the
loopback interface, every answer labelled; and refused where it could be taken for the service."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
import requests

from harness.gunicorn_server import free_port
from harness.paths import REPO_ROOT
from service.demo.recorded_app import DEMO_HEADER, DEMO_MESSAGE, WRITTEN_MESSAGE
from service.demo.recordings import recordings
from tests.support.demo import demo_env, running_demo

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo as a newcomer starts it, on a free port."""
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    with running_demo(["sh", "start.sh"], log) as url:
        yield url
    assert "hf-gateway demo: recorded answers only" in log.read_text()


def infer(url: str, task: str, body: dict, query: str = "") -> requests.Response:
    return requests.post(f"{url}/api/infer/{task}{query}", data=json.dumps(body), headers=JSON, timeout=30)


def test_zh2en_is_answered_in_english_and_labelled_written(demo):
    answer = infer(demo, "text-translation", {"inputs": "连衣裙"}, "?model_type=zh2en")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["result"] == ["dress"]
    assert body["message"] == WRITTEN_MESSAGE and answer.headers[DEMO_HEADER]
    written = recordings()["Helsinki-NLP/opus-mt-zh-en"]
    assert body["recorded"] == {"source": written.source, "recorded_input": "连衣裙", "written": True}
    assert body["model"] == written.model


def test_a_translation_is_a_labelled_recording(demo):
    answer = infer(demo, "text-translation", {"inputs": "x"}, "?model_type=en2de")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["result"] == ["Mein Name ist Wolfgang und ich lebe in Berlin"]
    assert body["message"] == DEMO_MESSAGE
    recording = recordings()["t5-base"]
    assert body["recorded"] == {"source": recording.source, "recorded_input": recording.recorded_input}


@pytest.mark.parametrize("task", ["text-completion", "text-to-text"])
def test_every_text_task_answers_a_labelled_recording(demo, task):
    answer = infer(demo, task, {"inputs": "连衣裙", "args": {"num_sentences": 2}})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["result"]) == 2 and all(isinstance(text, str) and text for text in body["result"])
    assert body["message"] == DEMO_MESSAGE and body["recorded"]["source"]


def test_an_image_is_the_recorded_image(demo):
    body = infer(demo, "text-to-image", {"inputs": "a red dress"}).json()
    [image] = body["result"]
    assert base64.b64decode(image["image_base64"]) == recordings()["CompVis/stable-diffusion-v1-4"].body
    assert body["message"] == DEMO_MESSAGE


def test_every_response_says_it_is_the_demo_and_errors_stay_the_services(demo):
    models = requests.get(demo + "/api/models", timeout=30)
    assert models.headers[DEMO_HEADER]
    statuses = {target["status"] for route in models.json()["routes"] for target in route["targets"]}
    assert statuses == {"live"}
    refused = infer(demo, "text-translation", {"inputs": ""})
    assert refused.status_code == 400 and refused.headers[DEMO_HEADER] and "recorded" not in refused.json()
    unknown = infer(demo, "text-translation", {"inputs": "x"}, "?model_name=someone/else")
    assert unknown.status_code == 404 and unknown.json()["error_type"] == "model_not_found"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"HF_API_TOKEN": "hf_a-real-looking-token"}, "HF_API_TOKEN is set"),
        ({"HOST": "0.0.0.0"}, "set DEMO_PUBLIC=1"),
        ({"DEMO": "yes"}, "DEMO is 1"),
    ],
)
def test_the_demo_is_refused_where_it_could_be_taken_for_the_service(overrides, message):
    run = subprocess.run(
        ["sh", "start.sh"],
        cwd=REPO_ROOT,
        env=demo_env(PORT=str(free_port()), **overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert "Listening at" not in run.stderr
