"""Logging: one line per request, and the token redacted from every record."""

import logging
import sys
import time

from flask import g, request

from service.redaction import redact, secrets_of

log = logging.getLogger("service.access")


class RedactSecrets(logging.Filter):
    """Replace secrets in any record's final text, whatever logger produced it."""

    def __init__(self, secrets):
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = redact(text, self.secrets), None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


def configure_logging(settings, level: str = "INFO") -> None:
    """Send the service's logs to stderr, with secrets redacted (idempotent)."""
    root = logging.getLogger("service")
    root.setLevel(level)
    if not any(getattr(handler, "_gateway", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handler._gateway = True
        root.addHandler(handler)
        root.propagate = False
    for handler in root.handlers:
        handler.filters = [f for f in handler.filters if not isinstance(f, RedactSecrets)]
        handler.addFilter(RedactSecrets(secrets_of(settings)))


def start_request_timer() -> None:
    """Remember when the request started."""
    g.started = time.perf_counter()


def log_request(response):
    """Write the one line per request: id, task, model, status, attempts, duration."""
    stats = getattr(g, "call_stats", None)
    duration_ms = (time.perf_counter() - getattr(g, "started", time.perf_counter())) * 1000
    log.info(
        "request request_id=%s method=%s path=%s task=%s model=%s status=%d upstream_attempts=%d duration_ms=%.1f",
        getattr(g, "request_id", "-"),
        request.method,
        request.path,
        getattr(g, "task_type", "-"),
        getattr(g, "model", "-"),
        response.status_code,
        stats.attempts if stats else 0,
        duration_ms,
    )
    return response
