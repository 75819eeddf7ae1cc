"""`hf-infer batch` run as a command against the real gunicorn process and a loopback upstream."""

import fcntl
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
import termios
import time
from pathlib import Path

import pytest
import requests

from harness import recordings
from harness.gunicorn_server import GunicornServer
from harness.keys import write_key_file
from harness.paths import REPO_ROOT
from harness.service import service_env
from harness.upstream import Step
from tests.support.documents import OPERATIONS, shell_blocks

MADLAD = "/hf-inference/models/google/madlad400-3b-mt"
OPUS = "/hf-inference/models/Helsinki-NLP/opus-mt-zh-en"
CHAT = "/v1/chat/completions"
RECORDED_TRANSLATION = "Mein Name ist Wolfgang und ich lebe in Berlin"
LOADING = {"error": "Model is currently loading", "estimated_time": 30.0}


def batch_command(service, *args):
    """The command line of `hf-infer batch` against the test service."""
    return [sys.executable, "-m", "service", "batch", "--url", service.url, *args]


def hf_infer(service, *args, stdin=None):
    """Run `hf-infer batch` to the end and return the finished process."""
    return subprocess.run(
        batch_command(service, *args), cwd=REPO_ROOT, input=stdin, capture_output=True, text=True, timeout=60
    )


def output_lines(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def recorded_jpeg() -> bytes:
    return recordings.recorded_body("CompVis/stable-diffusion-v1-4")


def test_plain_text_lines_in_order_with_args_for_every_line(service, upstream, tmp_path):
    (tmp_path / "in.txt").write_text("连衣裙\n\n裙子\n外套\n", encoding="utf-8")
    run = hf_infer(
        service,
        "--task",
        "text-translation",
        "--args",
        '{"num_sentences": 2}',
        str(tmp_path / "in.txt"),
        str(tmp_path / "out.jsonl"),
    )
    assert run.returncode == 0, run.stderr
    assert output_lines(tmp_path / "out.jsonl") == [
        {"id": number, "result": [RECORDED_TRANSLATION] * 2} for number in (1, 3, 4)
    ]
    upstream.wait_idle()
    assert sorted(request.json["inputs"] for request in upstream.requests_for(MADLAD)) == sorted(
        ["<2en> 连衣裙", "<2en> 裙子", "<2en> 外套"] * 2
    )
    assert run.stderr.startswith("hf-infer: 3 done, 0 failed, 0 skipped, ")
    assert "line/s" not in run.stderr and "\r" not in run.stderr  # no progress bar when stderr is not a terminal


def test_jsonl_per_line_args_and_a_refused_line(service, upstream, tmp_path):
    lines = [
        {"id": "three", "inputs": "连衣裙", "args": {"num_sentences": 3}},
        {"id": "typo", "inputs": "裙子", "args": {"num_sentence": 3}},
        {"id": "default", "inputs": "外套"},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = hf_infer(
        service,
        "--task",
        "text-translation",
        "--args",
        '{"num_sentences": 2}',
        str(tmp_path / "in.jsonl"),
        str(tmp_path / "out.jsonl"),
    )
    assert run.returncode == 1, run.stderr
    three, typo, default = output_lines(tmp_path / "out.jsonl")
    assert three == {"id": "three", "result": [RECORDED_TRANSLATION] * 3}
    assert typo["id"] == "typo" and set(typo) == {"id", "error"}
    assert (typo["error"]["status"], typo["error"]["error_type"]) == (400, "invalid_request")
    assert "num_sentence" in typo["error"]["message"]
    assert default == {"id": "default", "result": [RECORDED_TRANSLATION] * 2}
    upstream.wait_idle()
    assert len(upstream.requests_for(MADLAD)) == 3 + 2  # the refused line never went upstream
    assert run.stderr.startswith("hf-infer: 2 done, 1 failed, 0 skipped, ")


def test_a_line_the_model_rejects_is_an_error_line_and_not_retried(service, upstream, tmp_path):
    # One line at a time, so the second upstream call belongs to the second line.
    upstream.script(
        MADLAD, Step(), Step(status=422, json={"error": "Input validation error", "error_type": "validation"})
    )
    (tmp_path / "in.txt").write_text("连衣裙\n裙子\n外套\n", encoding="utf-8")
    run = hf_infer(
        service,
        "--task",
        "text-translation",
        "--concurrency",
        "1",
        str(tmp_path / "in.txt"),
        str(tmp_path / "out.jsonl"),
    )
    assert run.returncode == 1, run.stderr
    first, rejected, third = output_lines(tmp_path / "out.jsonl")
    assert first == {"id": 1, "result": [RECORDED_TRANSLATION]} and third == {"id": 3, "result": [RECORDED_TRANSLATION]}
    assert rejected["id"] == 2
    assert (rejected["error"]["status"], rejected["error"]["error_type"]) == (422, "model_rejected_input")
    assert "Input validation error" in rejected["error"]["message"]
    upstream.wait_idle()
    assert len(upstream.requests_for(MADLAD)) == 3


@pytest.mark.parametrize("retries, exit_code", [(1, 0), (0, 1)])
def test_an_unavailable_model_is_retried_a_bounded_number_of_times(service, upstream, tmp_path, retries, exit_code):
    # Every model of the chain is loading for longer than the service's deadline: it answers 503 at once.
    for path in (MADLAD, OPUS, CHAT):
        upstream.script(path, Step(status=503, json=LOADING, headers={"Retry-After": "30"}))
    (tmp_path / "in.txt").write_text("连衣裙\n", encoding="utf-8")
    run = hf_infer(
        service,
        "--task",
        "text-translation",
        "--retries",
        str(retries),
        "--max-wait",
        "0.2",
        str(tmp_path / "in.txt"),
        str(tmp_path / "out.jsonl"),
    )
    assert run.returncode == exit_code, run.stderr
    [line] = output_lines(tmp_path / "out.jsonl")
    upstream.wait_idle()
    if retries:
        assert line == {"id": 1, "result": [RECORDED_TRANSLATION]}
        assert [request.status for request in upstream.requests_for(MADLAD)] == [503, 200]
    else:
        assert (line["error"]["status"], line["error"]["error_type"]) == (503, "model_unavailable")
        assert [request.status for request in upstream.requests_for(MADLAD)] == [503]


def test_images_are_written_to_a_folder(service, upstream, tmp_path):
    lines = [
        {"id": "red", "inputs": "红色连衣裙", "args": {"num_sentences": 2}},
        {"id": "blue", "inputs": "蓝色连衣裙"},
    ]
    (tmp_path / "in.jsonl").write_text(
        "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8"
    )
    images = tmp_path / "images"
    run = hf_infer(
        service,
        "--task",
        "text-to-image",
        "--images-dir",
        str(images),
        str(tmp_path / "in.jsonl"),
        str(tmp_path / "out.jsonl"),
    )
    assert run.returncode == 0, run.stderr
    red, blue = output_lines(tmp_path / "out.jsonl")
    assert red == {
        "id": "red",
        "result": [{"path": str(images / f"red-{n}.jpg"), "content_type": "image/jpeg"} for n in (1, 2)],
    }
    assert blue == {"id": "blue", "result": [{"path": str(images / "blue-1.jpg"), "content_type": "image/jpeg"}]}
    assert sorted(path.name for path in images.iterdir()) == ["blue-1.jpg", "red-1.jpg", "red-2.jpg"]
    assert all(path.read_bytes() == recorded_jpeg() for path in images.iterdir())


def test_no_sample_makes_every_line_deterministic(service, upstream, tmp_path):
    (tmp_path / "in.jsonl").write_text(
        '{"id": 1, "inputs": "连衣裙"}\n{"id": 2, "inputs": "裙子", "args": {"do_sample": true}}\n', encoding="utf-8"
    )
    run = hf_infer(
        service, "--task", "text-translation", "--no-sample", str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl")
    )
    assert run.returncode == 0, run.stderr
    upstream.wait_idle()
    sent = {
        request.json["inputs"]: request.json["parameters"]["generate_parameters"]["do_sample"]
        for request in upstream.requests_for(MADLAD)
    }
    assert sent == {"<2en> 连衣裙": False, "<2en> 裙子": True}  # a line's own args still win


def test_no_sample_refuses_args_that_say_otherwise_and_images(service, upstream, tmp_path):
    (tmp_path / "in.txt").write_text("连衣裙\n", encoding="utf-8")
    contradicted = hf_infer(
        service, "--task", "text-translation", "--no-sample", "--args", '{"do_sample": true}', "in.txt", "out.jsonl"
    )
    images = hf_infer(service, "--task", "text-to-image", "--no-sample", str(tmp_path / "in.txt"), "out.jsonl")
    assert contradicted.returncode == images.returncode == 2
    assert "--no-sample contradicts --args" in contradicted.stderr
    assert "--no-sample applies to text tasks" in images.stderr and '"seed"' in images.stderr
    upstream.wait_idle()
    assert not upstream.requests


def test_stdin_to_stdout(service, upstream):
    run = hf_infer(service, "--task", "text-completion", "-", "-", stdin="连衣裙\n裙子\n")
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["id"] for line in lines] == [1, 2]
    assert all(len(line["result"]) == 1 and isinstance(line["result"][0], str) for line in lines)


def wait_for_lines(path: Path, count: int, process: subprocess.Popen, timeout: float = 20) -> None:
    """Wait until the output holds at least `count` lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if path.exists() and path.read_text().count("\n") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} lines in {path}")


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_resumes_where_it_stopped(service, upstream, tmp_path, signal_number):
    upstream.script(MADLAD, Step(replay=True, delay=0.3, repeat=100))
    total = 12
    (tmp_path / "in.txt").write_text("".join(f"连衣裙 {n}\n" for n in range(1, total + 1)), encoding="utf-8")
    output = tmp_path / "out.jsonl"
    args = ("--task", "text-translation", "--concurrency", "2", str(tmp_path / "in.txt"), str(output))
    process = subprocess.Popen(batch_command(service, *args), cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(output, 2, process)
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 128 + signal_number, stderr
    assert "interrupted" in stderr
    first_ids = [line["id"] for line in output_lines(output)]
    assert 2 <= len(first_ids) < total
    assert first_ids == list(range(1, len(first_ids) + 1))  # a clean prefix of the input

    upstream.wait_idle()
    upstream.clear_scripts()
    rerun = hf_infer(service, *args)
    assert rerun.returncode == 0, rerun.stderr
    assert [line["id"] for line in output_lines(output)] == list(range(1, total + 1))
    assert all(line["result"] == [RECORDED_TRANSLATION] for line in output_lines(output))
    assert rerun.stderr.startswith(f"hf-infer: {total - len(first_ids)} done, 0 failed, {len(first_ids)} skipped, ")


def test_a_finished_run_resumes_to_nothing_and_still_reports_old_failures(service, upstream, tmp_path):
    (tmp_path / "in.txt").write_text("连衣裙\n裙子\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    output.write_text('{"id": 1, "result": ["Dress"]}\n{"id": 2, "error": {"status": 422}}\n')
    run = hf_infer(service, "--task", "text-translation", str(tmp_path / "in.txt"), str(output))
    assert run.returncode == 1  # a line of this output failed, even if in an earlier run
    assert run.stderr.startswith("hf-infer: 0 done, 0 failed, 2 skipped, ")
    assert len(output_lines(output)) == 2
    upstream.wait_idle()
    assert not upstream.requests


def installed_command() -> str:
    """Return the path of the installed hf-infer command; skip when the project is not installed."""
    # Installed means metadata in this environment's site-packages, not an egg-info left in the work tree.
    if not list(Path(sysconfig.get_path("purelib")).glob("hf_gateway-*.dist-info")):
        pytest.skip("the project is not installed in this environment: run `sh tests/run.sh`")
    command = shutil.which("hf-infer", path=str(Path(sys.executable).parent))
    assert command, "hf-gateway is installed but its hf-infer command is not"
    return command


def test_the_installed_command_runs_a_batch(service, upstream, tmp_path):
    command = installed_command()
    (tmp_path / "in.txt").write_text("连衣裙\n", encoding="utf-8")
    run = subprocess.run(
        [command, "batch", "--url", service.url, "--task", "text-translation", "in.txt", "out.jsonl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert output_lines(tmp_path / "out.jsonl") == [{"id": 1, "result": [RECORDED_TRANSLATION]}]


def read_all(fd: int) -> str:
    """Read a pty's master side until the other side has closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO once the child's side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def test_a_terminal_shows_a_progress_bar_with_rate_and_eta(service, upstream, tmp_path):
    upstream.script(MADLAD, Step(), Step(status=422, json={"error": "Input validation error"}))
    (tmp_path / "in.txt").write_text("连衣裙\n裙子\n外套\n", encoding="utf-8")
    master, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a new pty has 0 columns
    args = ("--task", "text-translation", "--concurrency", "1", str(tmp_path / "in.txt"), str(tmp_path / "out.jsonl"))
    process = subprocess.Popen(batch_command(service, *args), cwd=REPO_ROOT, stderr=terminal)
    os.close(terminal)
    try:
        shown = read_all(master)
        assert process.wait(timeout=30) == 1
    finally:
        os.close(master)
        process.kill()
    assert re.search(r"3/3 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+line/s, failed=1\]", shown), shown
    assert "hf-infer: 2 done, 1 failed, 0 skipped" in shown


def test_off_a_terminal_a_resumed_run_prints_plain_progress_from_the_lines_already_done(service, upstream, tmp_path):
    upstream.script(MADLAD, Step(replay=True, delay=0.3, repeat=100))
    (tmp_path / "in.txt").write_text("".join(f"连衣裙 {n}\n" for n in range(1, 7)), encoding="utf-8")
    output = tmp_path / "out.jsonl"
    output.write_text("".join(json.dumps({"id": n, "result": ["Dress"]}) + "\n" for n in (1, 2, 3)))
    run = hf_infer(
        service,
        "--task",
        "text-translation",
        "--concurrency",
        "1",
        "--progress-seconds",
        "0.5",
        str(tmp_path / "in.txt"),
        str(output),
    )
    assert run.returncode == 0, run.stderr
    shown = re.findall(r"^hf-infer: (\d)/6 lines, 0 failed, [\d.]+ lines/s, about \w+ left$", run.stderr, re.M)
    assert shown and all(int(done) > 3 for done in shown), run.stderr  # counted from the 3 lines of the first run
    assert "\r" not in run.stderr
    assert run.stderr.splitlines()[-1].startswith("hf-infer: 3 done, 0 failed, 3 skipped, ")


def documented_batch_script(command: str) -> str:
    """Return the shell blocks of the 'Batch jobs' section of docs/operations.md, calling `command`."""
    script = "\n".join(shell_blocks(OPERATIONS, "Batch jobs")).replace(".venv/bin/hf-infer", command)
    if not shutil.which("jq"):
        script = "\n".join(line for line in script.splitlines() if "| jq" not in line)
    return script


def test_the_documented_batch_examples_run_as_written(service, upstream, tmp_path):
    script = documented_batch_script(installed_command())
    run = subprocess.run(
        ["sh", "-e", "-c", script],
        cwd=tmp_path,
        env=dict(os.environ, HF_GATEWAY_URL=service.url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert output_lines(tmp_path / "translations.jsonl") == [
        {"id": number, "result": [RECORDED_TRANSLATION] * 2} for number in (1, 2, 3)
    ]
    assert [line["id"] for line in output_lines(tmp_path / "images.jsonl")] == ["dress", "coat"]
    images = sorted((tmp_path / "images").iterdir())
    assert [path.name for path in images] == ["coat-1.jpg", "dress-1.jpg", "dress-2.jpg"]
    assert all(path.read_bytes() == recorded_jpeg() for path in images)


def refused_by_rpm(url: str) -> float:
    """hf_gateway_refused_total{policy="rpm"} as the service's /metrics shows it."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    found = re.search(r'^hf_gateway_refused_total\{policy="rpm"\} ([\d.]+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_a_batch_over_its_keys_rpm_waits_the_limit_out_and_loses_no_line(loopback, tmp_path):
    """30 lines with a key of 20 requests per minute: a third of the lines must wait for the
    window to move (about a minute), and none may fail for it, with no retries allowed at all."""
    key_file = write_key_file(tmp_path / "keys.toml", {"nightly": {"secret": "secret-nightly", "rpm": 20}})
    (tmp_path / "in.txt").write_text("".join(f"连衣裙 {n}\n" for n in range(1, 31)), encoding="utf-8")
    with GunicornServer(env=service_env(loopback, API_KEYS_FILE=str(key_file))) as limited:
        run = subprocess.run(
            batch_command(limited, "--task", "text-translation", "--retries", "0", "in.txt", "out.jsonl"),
            cwd=tmp_path,
            env=dict(os.environ, HF_GATEWAY_API_KEY="secret-nightly", PYTHONPATH=str(REPO_ROOT)),
            capture_output=True,
            text=True,
            timeout=240,
        )
        refused = refused_by_rpm(limited.url)
    assert run.returncode == 0, run.stderr
    lines = output_lines(tmp_path / "out.jsonl")
    assert [line["id"] for line in lines] == list(range(1, 31))
    assert all(line["result"] == [RECORDED_TRANSLATION] for line in lines)
    assert refused == 0  # paced from the RateLimit-Policy of its answers, it never met a 429
