"""The `hf-infer` command line: `hf-infer batch --task TASK INPUT OUTPUT`."""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Iterator, TextIO

from tqdm import tqdm

from service.batch.client import GatewayClient
from service.batch.images import ensure_ids_are_file_names
from service.batch.inputs import FORMATS, BatchItem, InputError, id_key, parse_args_value, read_items
from service.batch.output import FinishedLines, OrderedWriter, read_finished
from service.batch.runner import WorkerPool, result_record, run_batch

TASKS = ("text-translation", "text-completion", "text-to-text", "text-to-image")
DEFAULT_URL = "http://127.0.0.1:8098"
STDIO = "-"
EXIT_FAILED_LINES = 1
EXIT_USAGE = 2


def positive_int(text: str) -> int:
    """Parse an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """Parse an integer of at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """Parse a number above 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Describe the command line."""
    parser = argparse.ArgumentParser(prog="hf-infer", description="Clients of the hf-gateway inference service.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    batch = commands.add_parser(
        "batch", help="run a file of inputs through the service",
        description="Send one input per line to a running service; write one JSON result line per input, "
                    "in input order. Ids already in OUTPUT are skipped, so rerunning resumes.",
    )
    batch.add_argument("input", metavar="INPUT", help="input file, one input per line (plain text or JSONL); - for stdin")
    batch.add_argument("output", metavar="OUTPUT", help="results file (JSONL, appended to); - for stdout")
    batch.add_argument("--task", required=True, choices=TASKS)
    batch.add_argument("--url", default=None, help=f"the service's base URL (env HF_GATEWAY_URL, default {DEFAULT_URL})")
    batch.add_argument("--model-type", default=None, help="translation direction, e.g. zh2en")
    batch.add_argument("--model-name", default=None, help="a model id or configured key; disables fallback")
    batch.add_argument("--args", default="", help="args for every line, as a JSON object; a JSONL line's args override it key by key")
    batch.add_argument("--format", choices=FORMATS, default="auto", help="input format (auto: JSONL when the first line is a JSON object)")
    batch.add_argument("--concurrency", type=positive_int, default=8, help="requests in flight at once (default 8)")
    batch.add_argument("--retries", type=non_negative_int, default=3, help="extra tries for a line on 429/502/503/504 or no answer (default 3)")
    batch.add_argument("--max-wait", type=positive_float, default=60.0, help="longest wait before a retry, Retry-After included (default 60 s)")
    batch.add_argument("--timeout", type=positive_float, default=120.0, help="seconds to wait for one answer (default 120)")
    batch.add_argument("--api-key", default=None, help="the service's API key (env HF_GATEWAY_API_KEY)")
    batch.add_argument("--images-dir", type=Path, default=None, help="text-to-image: write images to DIR/<id>-<n>.<ext> and put paths in the results")
    return parser


@dataclass
class BatchPlan:
    """What a run has to do: the items left, and what an earlier run already wrote."""

    todo: list[BatchItem]
    skipped: int
    skipped_failed: int


def load_items(path: str, input_format: str, defaults: dict) -> list[BatchItem]:
    """Read the items of INPUT (a file, or stdin for -)."""
    try:
        if path == STDIO:
            return read_items(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig"), input_format, defaults)
        with open(path, encoding="utf-8-sig") as stream:
            return read_items(stream, input_format, defaults)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc.reason})") from None


def plan_run(items: list[BatchItem], output: str) -> BatchPlan:
    """Leave out the items whose ids OUTPUT already holds."""
    try:
        finished = read_finished(Path(output)) if output != STDIO else FinishedLines()
    except OSError as exc:
        raise InputError(f"cannot read {output}: {exc.strerror}") from None
    todo = [item for item in items if id_key(item.id) not in finished.ids]
    skipped_failed = sum(id_key(item.id) in finished.failed_ids for item in items)
    return BatchPlan(todo, len(items) - len(todo), skipped_failed)


@contextmanager
def open_output(path: str) -> Iterator[TextIO]:
    """Open OUTPUT for appending (stdout for -), always as UTF-8."""
    try:
        if path == STDIO:
            stream = open(sys.stdout.fileno(), "w", encoding="utf-8", closefd=False)
        else:
            stream = open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None
    with stream:
        yield stream


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """Turn SIGINT/SIGTERM into a graceful stop (a second one ends the process at once), then restore the handlers."""
    received: list[int] = []

    def handle(signal_number, frame):
        received.append(signal_number)
        stop.set()
        signal.signal(signal_number, signal.SIG_DFL)

    previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def prepare_images_dir(options: argparse.Namespace, items: list[BatchItem]) -> None:
    """Check --images-dir fits the task and the ids, and create the folder."""
    if options.images_dir is None:
        return
    if options.task != "text-to-image":
        raise InputError("--images-dir only applies to --task text-to-image")
    ensure_ids_are_file_names(items)
    try:
        options.images_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {options.images_dir}: {exc.strerror}") from None


def make_client(options: argparse.Namespace, stop: threading.Event) -> GatewayClient:
    """Build the client from the options and the environment."""
    return GatewayClient(
        url=options.url or os.environ.get("HF_GATEWAY_URL") or DEFAULT_URL,
        task=options.task,
        params={"model_type": options.model_type, "model_name": options.model_name},
        api_key=options.api_key or os.environ.get("HF_GATEWAY_API_KEY"),
        timeout=options.timeout,
        retries=options.retries,
        max_wait=options.max_wait,
        stop_event=stop,
    )


class Progress:
    """A progress bar with rate and ETA on a terminal (silent otherwise) that counts failures too."""

    def __init__(self, total: int):
        self.bar = tqdm(total=total, unit="line", file=sys.stderr, disable=None, dynamic_ncols=True)
        self.failed = 0

    def __enter__(self) -> Progress:
        """Show the bar."""
        return self

    def __exit__(self, *exc_info) -> None:
        """Close the bar, so the summary starts on a clean line."""
        self.bar.close()

    def line_done(self, line: dict) -> None:
        """Advance by one finished line."""
        if "error" in line:
            self.failed += 1
            self.bar.set_postfix(failed=self.failed, refresh=False)
        self.bar.update()


def summary(writer: OrderedWriter, plan: BatchPlan, elapsed: float, complete: bool, resumable: bool) -> str:
    """Describe the run in one or two lines."""
    text = f"hf-infer: {writer.succeeded} done, {writer.failed} failed, {plan.skipped} skipped, {elapsed:.1f} s"
    if plan.skipped_failed:
        text += f" ({plan.skipped_failed} skipped lines are errors from an earlier run)"
    if not complete:
        text += f"\nhf-infer: interrupted with {len(plan.todo) - writer.written} lines not written"
        text += "; run the same command again to resume" if resumable else ""
    return text


def run_batch_command(options: argparse.Namespace, stop: threading.Event) -> int:
    """Run `hf-infer batch` until done or `stop` is set, and return its exit code."""
    started = time.monotonic()
    items = load_items(options.input, options.format, parse_args_value(options.args, "--args"))
    prepare_images_dir(options, items)
    plan = plan_run(items, options.output)
    with open_output(options.output) as stream, Progress(len(plan.todo)) as progress:
        handle = partial(result_record, make_client(options, stop), images_dir=options.images_dir)
        pool = WorkerPool(handle, options.concurrency)
        writer = OrderedWriter(stream)
        complete = run_batch(plan.todo, pool, writer, stop, on_done=progress.line_done)
    print(summary(writer, plan, time.monotonic() - started, complete, resumable=options.output != STDIO), file=sys.stderr)
    return EXIT_FAILED_LINES if writer.failed or plan.skipped_failed or not complete else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run it; usage errors exit with 2."""
    options = build_parser().parse_args(argv)
    stop = threading.Event()
    with stop_on_signals(stop) as signals:
        try:
            exit_code = run_batch_command(options, stop)
        except InputError as exc:
            print(f"hf-infer: {exc}", file=sys.stderr)
            return EXIT_USAGE
    return 128 + signals[0] if signals else exit_code
