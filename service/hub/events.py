"""Server-sent events as the OpenAI-style routes stream them: `data: ...` lines, a blank line
after each event, `data: [DONE]` at the end."""

import re

# An event ends at a blank line, whatever line endings the server uses.
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE_END = re.compile(rb"\r\n|\n|\r")
DONE = "[DONE]"


class EventReader:
    """Collects bytes as they arrive and hands out the data of each complete event."""

    def __init__(self, max_event_bytes: int):
        self._buffer = b""
        self._max_event_bytes = max_event_bytes

    def feed(self, data: bytes) -> list[str]:
        """Add what arrived; return the data of every event it completed (comments and
        events without data are skipped)."""
        self._buffer += data
        events = []
        while (end := _EVENT_END.search(self._buffer)) is not None:
            block, self._buffer = self._buffer[: end.start()], self._buffer[end.end() :]
            event = event_data(block)
            if event is not None:
                events.append(event)
        if len(self._buffer) > self._max_event_bytes:
            raise ValueError(f"an event is larger than the {self._max_event_bytes}-byte limit")
        return events

    def rest(self) -> str | None:
        """The data of an event the server did not end with a blank line before closing."""
        block, self._buffer = self._buffer, b""
        return event_data(block) if block.strip() else None


def event_data(block: bytes) -> str | None:
    """The `data` of one event (its data lines joined by newlines), None when it has none."""
    lines = []
    for line in _LINE_END.split(block):
        name, _, value = line.partition(b":")
        if name == b"data":
            lines.append(value[1:] if value.startswith(b" ") else value)
    if not lines:
        return None
    return b"\n".join(lines).decode("utf-8", "replace")
