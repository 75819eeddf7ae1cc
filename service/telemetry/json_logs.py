"""LOG_FORMAT=json: one JSON object per line for the service's logs and gunicorn's own."""

import copy
import logging

from pythonjsonlogger.json import JsonFormatter

from service.telemetry.log_records import escape, escape_every_record

# gunicorn's access-log atoms worth a field; never the request headers, which carry the keys.
_ACCESS_ATOMS = {
    "remote_addr": "h",
    "method": "m",
    "path": "U",
    "query": "q",
    "status": "s",
    "bytes": "B",
    "duration_ms": "M",
    "user_agent": "a",
    "request_id": "{x-request-id}o",
}


class JsonLineFormatter(JsonFormatter):
    """One JSON object per record, reusing the traceback the redaction filter already cleaned."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and record.exc_text:
            # JsonFormatter would render exc_info afresh, secrets included.
            record = copy.copy(record)
            record.exc_info = None
        return super().format(record)

    def process_log_record(self, log_data: dict) -> dict:
        """Escape every text field as the message is (the extras come from the caller too); a
        traceback keeps its lines, its exceptions' texts already escaped by the record."""
        return {name: value if name in _MULTILINE else _escaped(value) for name, value in log_data.items()}


_MULTILINE = frozenset({"exc_info", "stack_info"})


def _escaped(value):
    """Return a field with its texts escaped, in lists and objects too."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {name: _escaped(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_escaped(item) for item in value]
    return value


def json_formatter() -> logging.Formatter:
    """Return the formatter of every JSON line: time (ISO 8601, UTC), level, logger, pid, message, fields."""
    return JsonLineFormatter(
        "%(levelname)s %(name)s %(process)d %(message)s",
        rename_fields={"levelname": "level", "name": "logger", "process": "pid"},
        timestamp="time",
    )


class AccessFields(logging.Filter):
    """Copy a few of gunicorn's access-log atoms onto the record, as JSON fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args if isinstance(record.args, dict) else None
        if atoms is not None:
            for field, atom in _ACCESS_ATOMS.items():
                value = atoms.get(atom)
                if value not in (None, "-", ""):
                    setattr(record, field, int(value) if field in ("status", "bytes", "duration_ms") else value)
        return True


def gunicorn_logconfig(level: str, access_log: str | None) -> dict:
    """Return gunicorn's `logconfig_dict` for JSON lines: errors, access log and root, redacted."""
    escape_every_record()  # from gunicorn's first lines on
    handlers = {
        "json_stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "json",
            "filters": ["redact"],
        },
    }
    access_handlers = []
    if access_log:
        # AccessFields must run before the redaction, which flattens the record's arguments.
        access_handler = {"formatter": "json", "filters": ["access_fields", "redact"]}
        if access_log == "-":
            access_handler.update({"class": "logging.StreamHandler", "stream": "ext://sys.stderr"})
        else:
            access_handler.update({"class": "logging.handlers.WatchedFileHandler", "filename": access_log})
        handlers["json_access"] = access_handler
        access_handlers = ["json_access"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "service.telemetry.json_logs.json_formatter"}},
        "filters": {
            "redact": {"()": "service.telemetry.logs.redaction_filter_from_env"},
            "access_fields": {"()": "service.telemetry.json_logs.AccessFields"},
        },
        "handlers": handlers,
        "root": {"level": level.upper(), "handlers": ["json_stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": ["json_stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": access_handlers, "propagate": False},
        },
    }
