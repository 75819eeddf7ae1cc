"""hf-infer batch: the worker pool, the bounded window, saved images and usage errors."""

import base64
import io
import json
import random
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from harness.paths import REPO_ROOT
from service import cli
from service.batch.image_files import ensure_ids_are_file_names, extension_for, save_images
from service.batch.inputs import BatchItem, InputError
from service.batch.output import OrderedWriter
from service.batch.runner import WINDOW_PER_WORKER, WorkerPool, run_batch
from service.cli import batch as command
from tests.support.documents import OPERATIONS, section


def written_ids(stream):
    return [json.loads(line)["id"] for line in stream.getvalue().splitlines()]


def test_lines_come_out_in_input_order_whatever_order_they_finish_in():
    delays = random.Random(7).sample(range(30), 30)

    def handle(item):
        time.sleep(delays[item.id] / 1000)
        return {"id": item.id, "result": [item.inputs]}

    stream = io.StringIO()
    items = [BatchItem(number, f"text {number}") for number in range(30)]
    assert run_batch(items, WorkerPool(handle, 6), OrderedWriter(stream), threading.Event())
    assert written_ids(stream) == list(range(30))


def test_a_slow_first_line_holds_back_at_most_a_window_of_work():
    release = threading.Event()
    started = []

    def handle(item):
        started.append(item.id)
        if item.id == 0:
            release.wait(5)
        return {"id": item.id, "result": []}

    pool, stream = WorkerPool(handle, 2), io.StringIO()
    runner = threading.Thread(
        target=run_batch, args=([BatchItem(n, "x") for n in range(40)], pool, OrderedWriter(stream), threading.Event())
    )
    runner.start()
    deadline = time.monotonic() + 5
    while len(started) < 2 * WINDOW_PER_WORKER and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # time enough to start more, were the window not full
    assert len(started) == 2 * WINDOW_PER_WORKER  # the window, not the whole input
    release.set()
    runner.join(5)
    assert written_ids(stream) == list(range(40))


def test_a_stop_writes_the_finished_prefix_and_returns_at_once():
    stop = threading.Event()

    def handle(item):
        if item.id == 3:
            stop.set()
            time.sleep(30)  # a request still in flight when the run is stopped
        return {"id": item.id, "result": []}

    stream = io.StringIO()
    began = time.monotonic()
    assert not run_batch([BatchItem(n, "x") for n in range(10)], WorkerPool(handle, 1), OrderedWriter(stream), stop)
    assert time.monotonic() - began < 10
    assert written_ids(stream) == [0, 1, 2]


def test_a_failing_handler_still_yields_an_error_line():
    def handle(item):
        raise ValueError("Incorrect padding")

    stream = io.StringIO()
    run_batch([BatchItem("a", "x")], WorkerPool(handle, 1), OrderedWriter(stream), threading.Event())
    line = json.loads(stream.getvalue())
    assert line == {"id": "a", "error": {"status": None, "error_type": "client_error", "message": "Incorrect padding"}}


def test_images_are_saved_as_files_named_by_id_and_number(tmp_path):
    result = [
        {"image_base64": base64.b64encode(b"\xff\xd8jpeg").decode(), "content_type": "image/jpeg"},
        {"image_base64": base64.b64encode(b"\x89PNG").decode(), "content_type": "image/png"},
    ]
    saved = save_images(result, "dress-7", tmp_path)
    assert saved == [
        {"path": str(tmp_path / "dress-7-1.jpg"), "content_type": "image/jpeg"},
        {"path": str(tmp_path / "dress-7-2.png"), "content_type": "image/png"},
    ]
    assert (tmp_path / "dress-7-1.jpg").read_bytes() == b"\xff\xd8jpeg"
    assert (tmp_path / "dress-7-2.png").read_bytes() == b"\x89PNG"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dress-7-1.jpg", "dress-7-2.png"]


@pytest.mark.parametrize(
    "content_type, extension",
    [
        ("image/jpeg", ".jpg"),
        ("image/PNG; q=1", ".png"),
        ("image/webp", ".webp"),
        (None, ".bin"),
        ("x/unknown", ".bin"),
    ],
)
def test_extension_for(content_type, extension):
    assert extension_for(content_type) == extension


@pytest.mark.parametrize("item_id", ["../etc/passwd", "a/b", ".hidden", "two words", "x" * 101, "逗号"])
def test_ids_that_cannot_name_a_file_are_refused(item_id):
    with pytest.raises(InputError, match="cannot name an image file"):
        ensure_ids_are_file_names([BatchItem(1, "x"), BatchItem(item_id, "y")])


@pytest.mark.parametrize(
    "options, input_name, message",
    [
        (["--args", "{nope"], "in.txt", "--args: args is not valid JSON"),
        (["--args", "[1]"], "in.txt", "--args: args must be a JSON object"),
        (["--images-dir", "imgs"], "in.txt", "--images-dir only applies to --task text-to-image"),
        ([], "missing.txt", "cannot read missing.txt"),
        ([], "bad.jsonl", 'line 2: "inputs" is missing'),
    ],
)
def test_usage_errors_exit_2_before_sending_anything(tmp_path, monkeypatch, capsys, options, input_name, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("连衣裙\n")
    (tmp_path / "bad.jsonl").write_text('{"inputs": "a"}\n{"id": 2}\n')
    code = cli.main(
        ["batch", "--task", "text-translation", "--url", "http://127.0.0.1:9", *options, input_name, "out.jsonl"]
    )
    assert code == cli.EXIT_USAGE
    assert capsys.readouterr().err.startswith(f"hf-infer: {message}")
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--task", "text-translation", "--concurrency", "0", "in.txt", "out.jsonl"],
        ["--task", "text-translation", "--retries", "-1", "in.txt", "out.jsonl"],
        ["--task", "text-translation", "--timeout", "0", "in.txt", "out.jsonl"],
        ["--task", "summarize", "in.txt", "out.jsonl"],
        ["--task", "text-translation", "in.txt"],
        ["in.txt", "out.jsonl"],
    ],
)
def test_bad_options_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["batch", *argv])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert "usage: hf-infer batch" in capsys.readouterr().err


def test_the_url_and_api_key_come_from_the_environment_unless_given(monkeypatch):
    monkeypatch.setenv("HF_GATEWAY_URL", "http://gateway.internal:9000")
    monkeypatch.setenv("HF_GATEWAY_API_KEY", "key-from-env")
    from_env = command.make_client(
        cli.build_parser().parse_args(["batch", "--task", "text-to-text", "in", "out"]), threading.Event()
    )
    assert (from_env.endpoint, from_env.api_key) == (
        "http://gateway.internal:9000/api/infer/text-to-text",
        "key-from-env",
    )
    given = command.make_client(
        cli.build_parser().parse_args(
            ["batch", "--task", "text-to-text", "--url", "http://127.0.0.1:1", "--api-key", "k2", "in", "out"]
        ),
        threading.Event(),
    )
    assert (given.endpoint, given.api_key) == ("http://127.0.0.1:1/api/infer/text-to-text", "k2")


def test_without_environment_the_default_url_is_the_local_service(monkeypatch):
    monkeypatch.delenv("HF_GATEWAY_URL", raising=False)
    monkeypatch.delenv("HF_GATEWAY_API_KEY", raising=False)
    client = command.make_client(
        cli.build_parser().parse_args(["batch", "--task", "text-to-image", "in", "out"]), threading.Event()
    )
    assert (client.endpoint, client.api_key) == ("http://127.0.0.1:8098/api/infer/text-to-image", None)


def test_every_option_the_readme_documents_exists(capsys):
    documented = set(re.findall(r"`(--[a-z-]+)", section(OPERATIONS, "Batch jobs")))
    with pytest.raises(SystemExit):
        cli.main(["batch", "--help"])
    offered = set(re.findall(r"(--[a-z-]+)", capsys.readouterr().out))
    assert len(documented) >= 10 and documented <= offered, documented - offered


@pytest.mark.parametrize(
    "output, message", [("a-folder", "cannot read a-folder"), ("missing/out.jsonl", "cannot write missing/out.jsonl")]
)
def test_an_unusable_output_is_a_usage_error_and_signal_handlers_are_restored(
    tmp_path, monkeypatch, capsys, output, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("连衣裙\n")
    (tmp_path / "a-folder").mkdir()
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert (
        cli.main(["batch", "--task", "text-translation", "--url", "http://127.0.0.1:9", "in.txt", output])
        == cli.EXIT_USAGE
    )
    assert capsys.readouterr().err.startswith(f"hf-infer: {message}")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_the_command_line_loads_only_its_parser_until_a_batch_runs():
    probe = "import sys, service.cli; print(sorted({'flask', 'requests', 'tqdm', 'marshmallow', 'service.app', 'redis', 'limits'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert loaded.stdout.strip() == "[]"
