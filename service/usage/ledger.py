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

from service.store.contract import UsageEntry

COUNTS = ("requests", "results", "images", "upstream_attempts", "input_chars", "prompt_tokens", "completion_tokens")
ERROR_PREFIX = "errors."


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
