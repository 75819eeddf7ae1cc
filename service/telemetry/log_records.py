"""Log records whose text cannot break their line, whoever logs them and whatever they quote.

A caller's path, query, model name or header, an upstream's message or an exception's text
may hold a line break: written as is, it would start a line of the caller's making (a forged
request line, a forged Set-Cookie). Every record the process creates is an `EscapedRecord`
(the logging module's record factory is the one place every record passes through, gunicorn's
included): its message and its exception text come out with control characters, line and
paragraph separators and the invisible characters that reorder or hide text escaped, for the
text format and the JSON one alike. A traceback keeps its own lines; only the exceptions'
texts within it are escaped. A backslash is left as is: an escape in a line may be the
caller's own, never a line break.
"""

import logging
import re
import traceback

# C0 and C1 controls (tab and line breaks included), DEL, line and paragraph separators, and
# the zero-width and bidirectional format characters.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def _escape_one(match: re.Match) -> str:
    character = match.group()
    return _SHORT_ESCAPES.get(character) or (
        f"\\x{ord(character):02x}" if ord(character) < 0x100 else f"\\u{ord(character):04x}"
    )


def escape(text: str) -> str:
    """Return `text` on one line: every unsafe character as a Python-style escape."""
    return _UNSAFE.sub(_escape_one, text)


def escaped_traceback(exc_info) -> str:
    """Format a traceback as logging does, each exception's own text escaped, the oldest first."""
    exception = traceback.TracebackException(*exc_info)
    parts = []
    while exception is not None:
        lines = ["Traceback (most recent call last):\n", *exception.stack.format()] if exception.stack else []
        lines.append(escape("".join(exception.format_exception_only()).rstrip("\n")) + "\n")
        parts.append("".join(lines))
        if exception.__cause__ is not None:
            parts.append(_CAUSE)
            exception = exception.__cause__
        elif exception.__context__ is not None and not exception.__suppress_context__:
            parts.append(_CONTEXT)
            exception = exception.__context__
        else:
            exception = None
    return "".join(reversed(parts)).rstrip("\n")


class EscapedRecord(logging.LogRecord):
    """A record whose message and exception text are escaped when a formatter asks for them."""

    def getMessage(self) -> str:  # noqa: N802 (logging's name)
        return escape(super().getMessage())

    @property
    def exc_text(self) -> str | None:
        """The traceback, escaped (formatters use it instead of formatting exc_info themselves)."""
        if self._exc_text is None and self.exc_info and self.exc_info[0] is not None:
            self._exc_text = escaped_traceback(self.exc_info)
        return self._exc_text

    @exc_text.setter
    def exc_text(self, text: str | None) -> None:
        self._exc_text = text


def escape_every_record() -> None:
    """Make every record the process creates from now on an EscapedRecord (idempotent)."""
    if logging.getLogRecordFactory() is not EscapedRecord:
        logging.setLogRecordFactory(EscapedRecord)
