"""`hf-infer batch`: read the inputs, send them, write the results in order, resumably.

Imported only when a batch runs, so that `hf-infer --help` loads nothing but the parser.
"""

from __future__ import annotations

import argparse
import io
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from service.batch.gateway_client import GatewayClient
from service.batch.image_files import ensure_ids_are_file_names
from service.batch.inputs import (
    BatchItem,
    InputError,
    id_key,
    parse_args_value,
    read_items,
)
from service.batch.output import FinishedLines, OrderedWriter, read_finished
from service.batch.runner import WorkerPool, result_record, run_batch
from service.catalog.tasks import TASKS, TEXT_TO_IMAGE
from service.cli.client_settings import api_key, service_url

STDIO = "-"
EXIT_FAILED_LINES = 1


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


def default_args(options: argparse.Namespace) -> dict:
    """--args, with "do_sample": false when --no-sample asks for stable answers."""
    defaults = parse_args_value(options.args, "--args")
    if not options.no_sample:
        return defaults
    if TASKS[options.task].makes_images:
        raise InputError('--no-sample applies to text tasks; give images a "seed" in --args for stable answers')
    if defaults.get("do_sample", False) is not False:
        raise InputError(f"--no-sample contradicts --args {options.args}")
    return {**defaults, "do_sample": False}


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


def prepare_images_dir(options: argparse.Namespace, items: list[BatchItem]) -> None:
    """Check --images-dir fits the task and the ids, and create the folder."""
    if options.images_dir is None:
        return
    if not TASKS[options.task].makes_images:
        raise InputError(f"--images-dir only applies to --task {TEXT_TO_IMAGE.name}")
    ensure_ids_are_file_names(items)
    try:
        options.images_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {options.images_dir}: {exc.strerror}") from None


def make_client(options: argparse.Namespace, stop: threading.Event) -> GatewayClient:
    """Build the client from the options and the environment."""
    return GatewayClient(
        url=service_url(options.url),
        task=options.task,
        params={"model_type": options.model_type, "model_name": options.model_name},
        api_key=api_key(options.api_key),
        timeout=options.timeout,
        retries=options.retries,
        max_wait=options.max_wait,
        limit_budget=options.limit_budget,
        stop_event=stop,
    )


class BarProgress:
    """A progress bar with rate and ETA on a terminal, counting failures too."""

    def __init__(self, total: int, skipped: int, stream: TextIO):
        self.bar = tqdm(total=total, initial=skipped, unit="line", file=stream, dynamic_ncols=True)
        self.failed = 0

    def __enter__(self) -> BarProgress:
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


class PlainProgress:
    """Where no one watches a bar (cron, a log file): one plain line every `interval` seconds
    with done/total, failures, this run's rate and the time left."""

    def __init__(self, total: int, skipped: int, stream: TextIO, interval: float, clock: Callable[[], float]):
        self.total, self.done, self.failed = total, skipped, 0
        self.stream, self.interval, self.clock = stream, interval, clock
        self.started = self.last_shown = clock()
        self.done_this_run = 0

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def line_done(self, line: dict) -> None:
        """Count one finished line; say where the run is when the interval has passed."""
        self.done += 1
        self.done_this_run += 1
        self.failed += "error" in line
        now = self.clock()
        if now - self.last_shown >= self.interval:
            self.last_shown = now
            print(self.status(now), file=self.stream, flush=True)

    def status(self, now: float) -> str:
        rate = self.done_this_run / max(now - self.started, 1e-9)
        left = (self.total - self.done) / rate if rate else 0.0
        return (
            f"hf-infer: {self.done}/{self.total} lines, {self.failed} failed, {rate:.1f} lines/s, "
            f"about {duration(left)} left"
        )


def duration(seconds: float) -> str:
    """2m50s, 1h05m, 30s."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def make_progress(
    total: int,
    skipped: int,
    stream: TextIO | None = None,
    interval: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
) -> BarProgress | PlainProgress:
    """A bar on a terminal, plain lines anywhere else; both count from the lines already written."""
    stream = stream or sys.stderr
    if stream.isatty():
        return BarProgress(total, skipped, stream)
    return PlainProgress(total, skipped, stream, interval, clock)


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
    items = load_items(options.input, options.format, default_args(options))
    prepare_images_dir(options, items)
    plan = plan_run(items, options.output)
    progress = make_progress(len(items), plan.skipped, interval=options.progress_seconds)
    with open_output(options.output) as stream, progress:
        handle = partial(result_record, make_client(options, stop), images_dir=options.images_dir)
        pool = WorkerPool(handle, options.concurrency)
        writer = OrderedWriter(stream)
        complete = run_batch(plan.todo, pool, writer, stop, on_done=progress.line_done)
    print(
        summary(writer, plan, time.monotonic() - started, complete, resumable=options.output != STDIO), file=sys.stderr
    )
    return EXIT_FAILED_LINES if writer.failed or plan.skipped_failed or not complete else 0
