"""Logging: one line per request, the token redacted from every record, and no record able to
break its line (service/telemetry/log_records.py)."""

import logging
import sys

from service.catalog import Catalog, CatalogError
from service.settings import Settings
from service.telemetry.json_logs import json_formatter
from service.telemetry.log_records import escape_every_record
from service.telemetry.redaction import Redactor, secrets_of

log = logging.getLogger("service.access")

# Attributes every record has; anything else was passed with `extra=` and may need redacting.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class RedactSecrets(logging.Filter):
    """Replace secrets in any record's final text, whatever logger produced it."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redact:
            return True
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self.redact(text), None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, self.redact(value))
        return True


def redaction_filter_from_env() -> RedactSecrets:
    """Return the redaction filter with the secrets of the environment (for gunicorn's logconfig_dict)."""
    settings = Settings.from_env()
    try:
        catalog = Catalog.from_file(settings.models_config)
    except CatalogError:  # start-up reports a broken configuration; its own tokens are unknown
        catalog = None
    return RedactSecrets(Redactor(secrets_of(settings, catalog)))


def configure_logging(redactor: Redactor, level: str = "INFO", log_format: str = "text") -> None:
    """Send the service's logs to stderr, as text or JSON lines, with secrets redacted and every
    record of the process escaped, gunicorn's included (idempotent)."""
    escape_every_record()
    root = logging.getLogger("service")
    root.setLevel(level.upper())
    if not any(getattr(handler, "_gateway", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler._gateway = True
        root.addHandler(handler)
        root.propagate = False
    for handler in root.handlers:
        if getattr(handler, "_gateway", False):
            handler.setFormatter(_formatter(log_format))
        handler.filters = [f for f in handler.filters if not isinstance(f, RedactSecrets)]
        handler.addFilter(RedactSecrets(redactor))


def _formatter(log_format: str) -> logging.Formatter:
    """Return the formatter of the service's own lines."""
    if log_format == "json":
        return json_formatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")


def write_access_line(fields: dict) -> None:
    """Write the one line per request: id, task, model, status, attempts, duration."""
    # The same line as text, and as fields for LOG_FORMAT=json.
    log.info("request " + " ".join(f"{name}=%s" for name in fields), *fields.values(), extra=fields)
