"""LOG_FORMAT=json: the formatter, the redaction of fields, gunicorn's access fields and config."""

import io
import json
import logging
import logging.config

import pytest

from service.settings import Settings, SettingsError
from service.telemetry.json_logs import AccessFields, gunicorn_logconfig, json_formatter
from service.telemetry.logs import RedactSecrets, configure_logging
from service.telemetry.redaction import Redactor, secrets_of
from tests.support.app import TOKEN, make_settings, post


def json_handler(stream, secrets=(TOKEN,)) -> logging.Handler:
    """A handler writing JSON lines to a stream, redacting like the service does."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(RedactSecrets(Redactor(secrets)))
    return handler


def emit(record: logging.LogRecord, *filters) -> dict:
    """Format one record as the JSON handler would and parse it back."""
    stream = io.StringIO()
    handler = json_handler(stream)
    handler.filters[:0] = list(filters)
    handler.handle(record)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def record(msg, args=(), **extra) -> logging.LogRecord:
    entry = logging.LogRecord("service.access", logging.INFO, __file__, 1, msg, args, None)
    entry.__dict__.update(extra)
    return entry


@pytest.mark.parametrize("raw, expected", [("", "text"), ("json", "json"), (" JSON ", "json"), ("text", "text")])
def test_log_format_from_env(raw, expected):
    assert Settings.from_env({"LOG_FORMAT": raw}).log_format == expected


def test_unknown_log_format_is_refused():
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        Settings.from_env({"LOG_FORMAT": "xml"})


def test_json_line_has_the_standard_fields_and_the_extras():
    line = emit(record("request status=%s", (200,), status=200, request_id="abc"))
    assert line["message"] == "request status=200"
    assert (line["level"], line["logger"], line["status"], line["request_id"]) == ("INFO", "service.access", 200, "abc")
    assert line["time"].endswith("+00:00") and isinstance(line["pid"], int)


def test_secrets_are_redacted_from_the_message_and_every_field():
    line = emit(record("upstream said %s", (f"bad token {TOKEN}",), request_id=TOKEN, model=f"x{TOKEN}y"))
    assert TOKEN not in json.dumps(line)
    assert line["request_id"] == "[REDACTED]" and line["model"] == "x[REDACTED]y"


def test_exceptions_are_one_line_and_redacted():
    try:
        raise RuntimeError(f"boom {TOKEN}")
    except RuntimeError:
        entry = logging.LogRecord("service", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info())
    stream = io.StringIO()
    json_handler(stream).handle(entry)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert "RuntimeError" in line["exc_info"] and TOKEN not in lines[0]


def test_access_fields_come_from_gunicorn_atoms_never_headers():
    atoms = {
        "h": "10.0.0.1",
        "m": "POST",
        "U": "/api/infer/text-to-text",
        "q": "",
        "s": "200",
        "B": 120,
        "M": 35,
        "a": "curl/8",
        "{x-request-id}o": "req-1",
        "{authorization}i": f"Bearer {TOKEN}",
        "r": "POST / HTTP/1.1",
    }
    entry = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(r)s %(s)s", (atoms,), None)
    line = emit(entry, AccessFields())
    assert line["message"] == "POST / HTTP/1.1 200"
    assert (line["status"], line["bytes"], line["duration_ms"], line["request_id"]) == (200, 120, 35, "req-1")
    assert (line["remote_addr"], line["method"], line["path"]) == ("10.0.0.1", "POST", "/api/infer/text-to-text")
    assert "query" not in line  # empty atoms are left out
    assert TOKEN not in json.dumps(line) and "authorization" not in json.dumps(line).lower()


@pytest.mark.parametrize("access_log, access_handlers", [(None, []), ("-", ["json_access"])])
def test_gunicorn_logconfig_is_accepted_by_dictconfig(monkeypatch, access_log, access_handlers):
    config = gunicorn_logconfig("info", access_log)
    assert config["loggers"]["gunicorn.access"]["handlers"] == access_handlers
    for handler in config["handlers"].values():
        assert "redact" in handler["filters"]
    configurator = logging.config.DictConfigurator(config)
    filters = {name: configurator.configure_filter(dict(spec)) for name, spec in config["filters"].items()}
    assert isinstance(filters["redact"], RedactSecrets) and isinstance(filters["access_fields"], AccessFields)
    assert (
        configurator.configure_formatter(dict(config["formatters"]["json"])).__class__.__name__ == "JsonLineFormatter"
    )


def test_request_line_as_json(app, client, mock_hub, captured_logs):
    handler = json_handler(stream := io.StringIO())
    logging.getLogger("service").addHandler(handler)
    try:
        mock_hub.add(
            "POST", "https://hub.test/hf-inference/models/openai-community/gpt2", json=[{"generated_text": "Once upon"}]
        )
        response = post(
            client,
            "text-completion",
            {"inputs": "Once", "args": {"num_sentences": 2}},
            headers={"X-Request-ID": "caller-id-7"},
        )
    finally:
        logging.getLogger("service").removeHandler(handler)
    assert response.status_code == 200
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    request_line = next(line for line in lines if line["logger"] == "service.access")
    assert request_line["request_id"] == "caller-id-7"
    assert (request_line["task"], request_line["model"], request_line["status"]) == (
        "text-completion",
        "openai-community/gpt2",
        200,
    )
    assert request_line["upstream_attempts"] == len(mock_hub.calls) == 2
    assert isinstance(request_line["duration_ms"], float)


def test_configure_logging_switches_the_formatter():
    logger = logging.getLogger("service")
    configure_logging(Redactor(secrets_of(make_settings())), "INFO", "json")
    try:
        formatters = [h.formatter for h in logger.handlers if getattr(h, "_gateway", False)]
        assert formatters and all(f.__class__.__name__ == "JsonLineFormatter" for f in formatters)
    finally:
        configure_logging(Redactor(secrets_of(make_settings())), "INFO", "text")
    assert all(h.formatter.__class__ is logging.Formatter for h in logger.handlers if getattr(h, "_gateway", False))
