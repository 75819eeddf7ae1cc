"""The README's curl commands, run with the real curl against the real gunicorn process."""

import base64
import re
import subprocess

import pytest

from harness import recordings
from harness.upstream import Step
from tests.support.readme_curl import README_EXAMPLES, assert_documented_success, readme_curl_commands, run_curl


def recorded_jpeg() -> bytes:
    return recordings.recorded_body("CompVis/stable-diffusion-v1-4")


def test_readme_has_the_four_original_commands():
    outputs = [re.search(r"-o (\S+)", line).group(1) for line in readme_curl_commands()]
    assert outputs == ["out.translation.json", "out.completion.json", "out.t2t.json", "out.t2i.json"]


@pytest.mark.parametrize("index, task, model, count", README_EXAMPLES)
def test_readme_curl_writes_the_documented_json(service, upstream, tmp_path, index, task, model, count):
    body = run_curl(readme_curl_commands()[index], service.port, tmp_path)
    assert_documented_success(body, task, model, count)


def test_translation_reaches_upstream_with_the_model_prefix(service, upstream, tmp_path):
    body = run_curl(readme_curl_commands()[0], service.port, tmp_path)
    assert body["result"] == ["Mein Name ist Wolfgang und ich lebe in Berlin"] * 3  # the recorded answer
    sent = upstream.requests_for("/hf-inference/models/google/madlad400-3b-mt")
    assert [request.json["inputs"] for request in sent] == ["<2en> 连衣裙"] * 3
    assert all(request.headers["Authorization"].startswith("Bearer hf_") for request in sent)


def test_image_decodes_to_the_recorded_jpeg(service, upstream, tmp_path):
    body = run_curl(readme_curl_commands()[3], service.port, tmp_path)
    image = body["result"][0]
    assert image["content_type"] == "image/jpeg"
    assert base64.b64decode(image["image_base64"]) == recorded_jpeg()
    decoded = subprocess.run(
        [
            "sh",
            "-c",
            "python3 -c \"import json,sys; print(json.load(open('out.t2i.json'))['result'][0]['image_base64'])\" | base64 -d > x.jpg",
        ],
        cwd=tmp_path,
        check=True,
    )
    assert decoded.returncode == 0 and (tmp_path / "x.jpg").read_bytes() == recorded_jpeg()


def test_three_sentences_are_three_overlapping_upstream_calls(service, upstream, tmp_path):
    path = "/hf-inference/models/google/madlad400-3b-mt"
    upstream.script(path, Step(replay=True, delay=0.5, repeat=3))
    run_curl(readme_curl_commands()[0], service.port, tmp_path)
    upstream.wait_idle()
    calls = upstream.requests_for(path)
    assert len(calls) == 3
    assert upstream.max_in_flight == 3
    assert max(call.started for call in calls) < min(call.ended for call in calls)
    assert all(call.headers["x-use-cache"] == "false" for call in calls)
