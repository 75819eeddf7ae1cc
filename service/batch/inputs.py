"""Reading a batch's inputs: plain text (one input per line) or JSONL (id, inputs, args)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

FORMATS = ("auto", "jsonl", "text")
JSONL_KEYS = frozenset({"id", "inputs", "args"})


class InputError(ValueError):
    """An input file, or an --args value, that cannot be run; the message names the line."""


@dataclass(frozen=True)
class BatchItem:
    """One input to send: its id, its text and the args merged for it."""

    id: int | str
    inputs: Any
    args: dict = field(default_factory=dict)


def id_key(item_id: Any) -> str:
    """Return a key that tells ids apart by value and type (1 and "1" differ)."""
    return json.dumps(item_id, ensure_ascii=False)


def parse_args_value(value: Any, where: str) -> dict:
    """Turn an args value (an object, or a string holding one; "" means none) into a dict."""
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InputError(f"{where}: args is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InputError(f"{where}: args must be a JSON object")
    return value


def numbered_lines(stream: TextIO) -> list[tuple[int, str]]:
    """Return (line number, text) for every non-blank line, line endings removed."""
    lines = []
    for number, line in enumerate(stream, start=1):
        text = line.rstrip("\r\n")
        if text.strip():
            lines.append((number, text))
    return lines


def detect_format(lines: list[tuple[int, str]]) -> str:
    """Call a file JSONL when its first line is a JSON object, else plain text."""
    if not lines:
        return "text"
    try:
        first = json.loads(lines[0][1])
    except ValueError:
        return "text"
    return "jsonl" if isinstance(first, dict) else "text"


def item_from_text(number: int, text: str, defaults: dict) -> BatchItem:
    """Build the item of a plain-text line: its line number is its id."""
    return BatchItem(id=number, inputs=text, args=dict(defaults))


def item_from_jsonl(number: int, text: str, defaults: dict) -> BatchItem:
    """Build the item of a JSONL line; its args are laid over the defaults key by key."""
    where = f"line {number}"
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise InputError(f'{where}: expected a JSON object with "inputs"')
    unknown = sorted(set(record) - JSONL_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown keys {', '.join(unknown)} (allowed: id, inputs, args)")
    if "inputs" not in record:
        raise InputError(f'{where}: "inputs" is missing')
    item_id = record.get("id", number)
    if isinstance(item_id, bool) or not isinstance(item_id, (int, str)) or item_id == "":
        raise InputError(f"{where}: id must be a non-empty string or an integer")
    args = {**defaults, **parse_args_value(record.get("args", {}), where)}
    return BatchItem(id=item_id, inputs=record["inputs"], args=args)


def read_items(stream: TextIO, input_format: str = "auto", defaults: dict | None = None) -> list[BatchItem]:
    """Read every item of an input stream, refusing repeated ids."""
    lines = numbered_lines(stream)
    if input_format == "auto":
        input_format = detect_format(lines)
    build = item_from_jsonl if input_format == "jsonl" else item_from_text
    items = [build(number, text, defaults or {}) for number, text in lines]
    ensure_unique_ids(items, [number for number, _ in lines])
    return items


def ensure_unique_ids(items: Iterable[BatchItem], line_numbers: list[int]) -> None:
    """Refuse two lines with the same id: resuming could not tell them apart."""
    first_line: dict[str, int] = {}
    for item, number in zip(items, line_numbers, strict=True):
        key = id_key(item.id)
        if key in first_line:
            raise InputError(f"line {number}: id {key} repeats line {first_line[key]}")
        first_line[key] = number
