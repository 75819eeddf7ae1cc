"""The results file: one JSON line per input, written in input order, resumable."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from service.batch.inputs import InputError, id_key


@dataclass
class FinishedLines:
    """What an earlier run already wrote: the keys of its ids, and of those that failed."""

    ids: set[str] = field(default_factory=set)
    failed_ids: set[str] = field(default_factory=set)


class OrderedWriter:
    """Take results in any order and write them in input order, each line flushed at once.

    A result that arrives early waits in memory until every result before it is written,
    so an interrupted run leaves a file that is a clean prefix of the input.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.written = 0
        self.succeeded = 0
        self.failed = 0
        self._waiting: dict[int, dict] = {}

    @property
    def waiting(self) -> int:
        """Return how many results wait for an earlier one."""
        return len(self._waiting)

    def add(self, position: int, record: dict) -> None:
        """Accept the result at `position` and write every result now in order."""
        self._waiting[position] = record
        while self.written in self._waiting:
            self._write(self._waiting.pop(self.written))

    def _write(self, record: dict) -> None:
        """Write one record as one line, and flush it."""
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.stream.flush()
        self.written += 1
        if "error" in record:
            self.failed += 1
        else:
            self.succeeded += 1


def drop_partial_last_line(path: Path) -> None:
    """Cut a last line left without its newline by a run that was killed mid-write."""
    with open(path, "rb+") as file:
        data = file.read()
        if data and not data.endswith(b"\n"):
            file.truncate(data.rfind(b"\n") + 1)


def parse_result_line(number: int, line: str) -> dict[str, Any]:
    """Parse one line of an earlier run's output, refusing anything that is not a result."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict) or "id" not in record or not ({"result", "error"} & set(record)):
        raise InputError(f"output line {number} is not a result line: refusing to append to this file")
    return record


def read_finished(path: Path) -> FinishedLines:
    """Return the ids an earlier run wrote to `path` (none when the file does not exist)."""
    finished = FinishedLines()
    if not path.exists():
        return finished
    drop_partial_last_line(path)
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            record = parse_result_line(number, line)
            key = id_key(record["id"])
            finished.ids.add(key)
            if "error" in record:
                finished.failed_ids.add(key)
    return finished
