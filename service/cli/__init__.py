"""The `hf-infer` command line, also run as `python -m service`: `batch` (run a file of inputs),
`keys` (add and list client keys), `usage` (what each key spent), and for an operator `models`
(the configured routes and their live status) and `settings` (every setting, written out).

Only the parser is imported up front; each command imports what it needs when it runs, so
`hf-infer --help` is instant.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.batch.inputs import FORMATS, InputError
from service.catalog.tasks import TASK_TYPES
from service.cli.client_settings import DEFAULT_URL

EXIT_USAGE = 2
LIMIT_OPTIONS = (
    ("--rpm", "requests per minute"),
    ("--concurrency", "requests in flight at once"),
    ("--results-per-day", "results per UTC day (num_sentences counts each)"),
    ("--images-per-day", "images per UTC day"),
    ("--tokens-per-day", "tokens per UTC day, as the answers report them (prompt and completion)"),
)


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
    parser = argparse.ArgumentParser(
        prog="hf-infer", description="The hf-gateway command line: its clients and operator commands."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    batch = commands.add_parser(
        "batch",
        help="run a file of inputs through the service",
        description="Send one input per line to a running service; write one JSON result line per input, "
        "in input order. Ids already in OUTPUT are skipped, so rerunning resumes.",
    )
    batch.add_argument(
        "input", metavar="INPUT", help="input file, one input per line (plain text or JSONL); - for stdin"
    )
    batch.add_argument("output", metavar="OUTPUT", help="results file (JSONL, appended to); - for stdout")
    batch.add_argument("--task", required=True, choices=TASK_TYPES)
    batch.add_argument(
        "--url", default=None, help=f"the service's base URL (env HF_GATEWAY_URL, default {DEFAULT_URL})"
    )
    batch.add_argument("--model-type", default=None, help="translation direction, e.g. zh2en")
    batch.add_argument("--model-name", default=None, help="a model id or configured key; disables fallback")
    batch.add_argument(
        "--args", default="", help="args for every line, as a JSON object; a JSONL line's args override it key by key"
    )
    batch.add_argument(
        "--no-sample",
        action="store_true",
        help='text tasks: add "do_sample": false to every line\'s args (a line may still set its own), for the '
        "same answer every run, which the service can answer from its cache",
    )
    batch.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="input format (auto: JSONL when the first line is a JSON object)",
    )
    batch.add_argument("--concurrency", type=positive_int, default=8, help="requests in flight at once (default 8)")
    batch.add_argument(
        "--retries",
        type=non_negative_int,
        default=3,
        help="extra tries for a line on 502/503/504, an upstream's 429 or no answer (default 3); "
        "the key's own limits are waited out instead, see --limit-budget",
    )
    batch.add_argument(
        "--limit-budget",
        type=positive_float,
        default=3600.0,
        help="how long one line may wait out the key's own limits (429 with RateLimit-Policy) before it is "
        "written as an error (default 3600 s)",
    )
    batch.add_argument(
        "--max-wait",
        type=positive_float,
        default=60.0,
        help="longest wait before a retry, Retry-After included (default 60 s)",
    )
    batch.add_argument(
        "--timeout", type=positive_float, default=120.0, help="seconds to wait for one answer (default 120)"
    )
    batch.add_argument("--api-key", default=None, help="the service's API key (env HF_GATEWAY_API_KEY)")
    batch.add_argument(
        "--progress-seconds",
        type=positive_float,
        default=30.0,
        help="when stderr is not a terminal: a progress line this often (default 30 s)",
    )
    batch.add_argument(
        "--images-dir",
        type=Path,
        default=None,
        help="text-to-image: write images to DIR/<id>-<n>.<ext> and put paths in the results",
    )
    add_keys_commands(commands)
    add_usage_command(commands)
    add_operator_commands(commands)
    return parser


def add_keys_commands(commands) -> None:
    """`hf-infer keys add NAME ...` and `hf-infer keys list`."""
    keys = commands.add_parser("keys", help="add and list client keys in the key file")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    file_help = "the key file (default: API_KEYS_FILE from the environment or .env, else config/keys.toml)"
    add = actions.add_parser(
        "add",
        help="create a key: print its secret once, append its digest to the key file",
        description="Create a key. Its secret is printed once on stdout and kept nowhere; the key file gets "
        "its SHA-256. Reload the service (kill -HUP, systemctl reload) to use it.",
    )
    add.add_argument("name", metavar="NAME", help="the key's name: 1-64 letters, digits, '.', '_' or '-'")
    for option, meaning in LIMIT_OPTIONS:
        add.add_argument(option, type=positive_int, default=None, help=f"limit: {meaning} (default: [defaults])")
    add.add_argument("--admin", action="store_true", help="may read usage (GET /api/usage, hf-infer usage)")
    add.add_argument("--file", type=Path, default=None, help=file_help)
    listing = actions.add_parser("list", help="show the keys of the key file and their limits (never secrets)")
    listing.add_argument("--file", type=Path, default=None, help=file_help)


def add_usage_command(commands) -> None:
    """`hf-infer usage`: the ledger of a running service."""
    usage = commands.add_parser(
        "usage",
        help="what each key spent, per model and day (needs an admin key)",
        description="Read GET /api/usage of a running service: one row per UTC day, key and model, then totals.",
    )
    usage.add_argument(
        "--url", default=None, help=f"the service's base URL (env HF_GATEWAY_URL, default {DEFAULT_URL})"
    )
    usage.add_argument("--api-key", default=None, help="an admin key (env HF_GATEWAY_API_KEY)")
    usage.add_argument("--key", default=None, help="only this key's rows")
    usage.add_argument("--model", default=None, help="only this model's rows")
    usage.add_argument("--since", default=None, help="first UTC day, YYYY-MM-DD (default: six days before --until)")
    usage.add_argument("--until", default=None, help="last UTC day, YYYY-MM-DD (default: today)")
    usage.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output (default table)")
    usage.add_argument("--timeout", type=positive_float, default=30.0, help="seconds to wait (default 30)")


def add_operator_commands(commands) -> None:
    """`hf-infer models` and `hf-infer settings --env|--markdown`."""
    commands.add_parser(
        "models",
        help="the configured routes, each target's model, provider and live status",
        description="Ask the Hub whether each configured target is served (never an inference call); "
        "one row per target, in the order the service tries them.",
    )
    settings = commands.add_parser(
        "settings",
        help="write out every setting: .env.example or the table of docs/configuration.md",
        description="Print every setting from its declaration in service/settings.py.",
    )
    form = settings.add_mutually_exclusive_group(required=True)
    form.add_argument("--env", action="store_true", help="as .env.example")
    form.add_argument("--markdown", action="store_true", help="as the table of docs/configuration.md")


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


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run it; usage errors exit with 2."""
    options = build_parser().parse_args(argv)
    try:
        return run_command(options)
    except BrokenPipeError:
        return reader_left()


def reader_left() -> int:
    """stdout's reader left early (`| head`): end quietly, as a shell tool would, with the
    status of a process SIGPIPE ended; stdout goes to /dev/null so that the interpreter's
    last flush at exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def run_command(options: argparse.Namespace) -> int:
    """Run the command the options name."""
    if options.command == "keys":
        from service.cli.keys import run_keys_command

        return run_keys_command(options)
    if options.command == "usage":
        from service.cli.usage_report import run_usage_command  # requests: only when it runs

        return run_usage_command(options)
    if options.command == "models":
        from service.cli.models_table import print_models_table  # the Hub client: only when it runs

        print_models_table()
        return 0
    if options.command == "settings":
        from service.cli import settings_docs

        sys.stdout.write(settings_docs.env_example() if options.env else settings_docs.markdown_table() + "\n")
        return 0
    return run_batch(options)


def run_batch(options: argparse.Namespace) -> int:
    """Run `hf-infer batch`, stopping gracefully on SIGINT/SIGTERM."""
    from service.cli.batch import run_batch_command  # requests, tqdm: only when a batch runs

    stop = threading.Event()
    with stop_on_signals(stop) as signals:
        try:
            exit_code = run_batch_command(options, stop)
        except InputError as exc:
            print(f"hf-infer: {exc}", file=sys.stderr)
            return EXIT_USAGE
    return 128 + signals[0] if signals else exit_code
