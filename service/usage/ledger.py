"""The ledger: per key, per model, per UTC day, what the requests cost.

One row per (day, key, model) holds sums: requests, results, images, errors by type,
upstream attempts and seconds, input characters, and the tokens OpenAI-style answers
report. A request is counted once when it ends, however many calls its fan-out or fallback
made, under the model that answered (or the last one tried), as service/usage/labels.py
names it. The row is written with the request's settlement (service/keys/admission.py), in
the same step, so a stop, reload or recycled worker loses nothing; a request a crash cut off
is booked by the store as `interrupted` (service/keys/admission.py says how).
"""

from __future__ import annotations

from flask import current_app, request

from service.keys.admission import Ticket
from service.keys.keyring import OPEN_ACCESS
from service.pipeline import context
from service.pipeline.context import RequestContext
from service.store.contract import UsageEntry, utc_day
from service.usage.labels import model_label

COUNTS = ("requests", "results", "images", "upstream_attempts", "input_chars", "prompt_tokens", "completion_tokens")
ERROR_PREFIX = "errors."


def usage_entry(current: RequestContext, status: int, day: str) -> UsageEntry:
    """What one request adds to its key's row."""
    counts: dict[str, float] = {"requests": 1}
    if status == 200:
        counts["results"] = current.results
        if current.task is not None and current.task.makes_images:
            counts["images"] = current.results
    else:
        counts[ERROR_PREFIX + (current.error_type or f"http_{status}")] = 1
    usage = current.usage
    optional = {
        "upstream_attempts": usage.attempts,
        "upstream_seconds": round(usage.seconds, 6),
        "input_chars": current.input_chars,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
    }
    counts.update({name: value for name, value in optional.items() if value})
    key = (current.client_key or OPEN_ACCESS).name
    return UsageEntry(day, key, model_label(current.model), counts)


def settle_request(response):
    """After every inference request: settle its admission and write its ledger row."""
    current = context.current()
    if current is None or current.task is None or not request.path.startswith("/api/infer/"):
        return response
    admission = current_app.extensions["gateway"].admission
    ticket = current.ticket or Ticket((current.client_key or OPEN_ACCESS).name, utc_day(admission.clock.time()))
    entry = usage_entry(current, response.status_code, ticket.day)
    confirm = admission.settle(ticket, delivered=response.status_code == 200, usage=entry)
    response.call_on_close(confirm)  # the store's reply is awaited once the answer has gone
    return response


def row_shape(entry: UsageEntry) -> dict:
    """One row as /api/usage answers it: whole numbers as integers, errors by type."""
    counts = entry.counts
    row = {"date": entry.day, "key": entry.key, "model": entry.model}
    row.update({name: int(counts.get(name, 0)) for name in COUNTS})
    row["upstream_seconds"] = round(counts.get("upstream_seconds", 0.0), 3)
    row["errors"] = {
        name.removeprefix(ERROR_PREFIX): int(value)
        for name, value in sorted(counts.items())
        if name.startswith(ERROR_PREFIX)
    }
    return row


def totals_of(rows: list[dict]) -> dict:
    """The sums of the rows, in the same shape."""
    totals = {name: sum(row[name] for row in rows) for name in COUNTS}
    totals["upstream_seconds"] = round(sum(row["upstream_seconds"] for row in rows), 3)
    errors: dict[str, int] = {}
    for row in rows:
        for name, value in row["errors"].items():
            errors[name] = errors.get(name, 0) + value
    totals["errors"] = dict(sorted(errors.items()))
    return totals
