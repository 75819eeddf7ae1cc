"""`hf-infer usage`: the ledger of a running service (GET /api/usage), as a table, CSV or JSON."""

from __future__ import annotations

import argparse
import csv
import json
import sys

import requests

from service.cli.client_settings import api_key, service_url
from service.cli.text_table import text_table

EXIT_FAILED = 1
COLUMNS = (
    "date",
    "key",
    "model",
    "requests",
    "results",
    "images",
    "errors",
    "upstream_attempts",
    "upstream_seconds",
    "input_chars",
    "prompt_tokens",
    "completion_tokens",
)


def run_usage_command(options: argparse.Namespace) -> int:
    """Fetch the rows and print them; a refused or failed call exits with 1 and says why."""
    url = service_url(options.url) + "/api/usage"
    key = api_key(options.api_key)
    params = {name: getattr(options, name) for name in ("key", "model", "since", "until") if getattr(options, name)}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = requests.get(url, params=params, headers=headers, timeout=options.timeout)
    except requests.RequestException as exc:
        print(f"hf-infer: cannot reach {url}: {type(exc).__name__}", file=sys.stderr)
        return EXIT_FAILED
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code != 200 or not isinstance(answer, dict):
        message = answer.get("message") if isinstance(answer, dict) else response.reason
        print(f"hf-infer: {url} answered {response.status_code}: {message}", file=sys.stderr)
        return EXIT_FAILED
    write(answer, options.format)
    return 0


def flat(row: dict) -> list:
    """One row's cells, errors as `type=n` pairs."""
    errors = " ".join(f"{name}={count}" for name, count in row["errors"].items())
    return [errors if column == "errors" else row.get(column, "") for column in COLUMNS]


def write(answer: dict, output_format: str) -> None:
    """Print the answer as asked."""
    if output_format == "json":
        json.dump(answer, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    rows = [flat(row) for row in answer["rows"]]
    if output_format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerows([COLUMNS, *rows])
        return
    totals = flat({**answer["totals"], "date": "total", "key": "", "model": ""})
    sys.stdout.write(text_table([COLUMNS, *rows, totals]))
    sys.stdout.write(f"{answer['since']} to {answer['until']} (UTC), {len(rows)} rows\n")
