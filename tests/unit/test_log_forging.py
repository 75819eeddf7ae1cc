"""A caller's text can never break a log line: control characters and line separators in any
logged field (path, query, model, headers, messages, exception text) are escaped, in the text
format and the JSON one alike, for the service's loggers and gunicorn's."""

import io
import json
import logging
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from gunicorn.glogging import Logger as GunicornLogger

from service.telemetry.logs import configure_logging
from service.telemetry.redaction import Redactor
from tests.support.app import TOKEN, post

FORGED = "2026-12-04 03:09:00,000 INFO service.access request method=GET path=/ status=200"
BREAKS = ["\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]


@contextmanager
def service_log(log_format: str = "text"):
    """The service's own handler, configured as at start-up, writing to a string."""
    configure_logging(Redactor((TOKEN,)), "INFO", log_format)
    handler = next(h for h in logging.getLogger("service").handlers if getattr(h, "_gateway", False))
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)
        configure_logging(Redactor((TOKEN,)), "INFO", "text")


def lines_of(stream) -> list:
    """Split the way any log reader would, on every line boundary Python knows."""
    return stream.getvalue().splitlines()


@pytest.mark.parametrize("line_break", BREAKS, ids=[repr(b) for b in BREAKS])
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_message_argument_cannot_start_a_line(line_break, log_format):
    with service_log(log_format) as stream:
        logging.getLogger("service.access").info("request path=%s status=%s", f"/nothing{line_break}{FORGED}", 404)
    lines = lines_of(stream)
    assert len(lines) == 1, lines
    text = json.loads(lines[0])["message"] if log_format == "json" else lines[0]
    assert FORGED in text and line_break not in text


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_preformatted_message_and_an_object_argument_are_escaped_too(log_format):
    class Shown:
        def __str__(self):
            return f"x\r\nSet-Cookie: a=b\n{FORGED}"

    with service_log(log_format) as stream:
        logging.getLogger("service.x").warning(f"upstream said: ok\n{FORGED}")
        logging.getLogger("service.x").warning("failed: %s", Shown())
    lines = lines_of(stream)
    assert len(lines) == 2, lines
    assert not any(line.startswith(("Set-Cookie", FORGED[:16])) for line in lines)


def test_the_extra_fields_of_a_json_line_are_escaped():
    with service_log("json") as stream:
        logging.getLogger("service.access").info(
            "request", extra={"path": f"/a\n{FORGED}", "model": "m\u2028x", "status": 200}
        )
    (line,) = [json.loads(line) for line in lines_of(stream)]
    assert line["path"] == f"/a\\n{FORGED}" and line["model"] == "m\\u2028x" and line["status"] == 200


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_exception_text_cannot_start_a_line_and_the_traceback_stays_readable(log_format):
    with service_log(log_format) as stream:
        try:
            try:
                raise KeyError(f"first\n{FORGED}")
            except KeyError as exc:
                raise ValueError(f"model x\r\n{FORGED} {TOKEN}") from exc
        except ValueError:
            logging.getLogger("service.x").exception("unhandled error request_id=%s", "abc")
    lines = lines_of(stream)
    if log_format == "json":
        assert len(lines) == 1
        text = json.loads(lines[0])["exc_info"]
        assert text.startswith("Traceback (most recent call last):\n")  # its own lines, as lines
    else:
        text = "\n".join(lines[1:])
        assert lines[0].endswith("unhandled error request_id=abc")
        assert "Traceback (most recent call last):" in lines and "ValueError: model x\\r\\n" + FORGED in text
        assert "The above exception was the direct cause of the following exception:" in lines
        assert any(line.startswith('  File "') for line in lines)  # the frames keep their lines
    assert not any(line.startswith(FORGED[:16]) for line in text.splitlines())
    assert TOKEN not in stream.getvalue()
    assert "KeyError: 'first\\n" in text


def test_a_request_path_with_a_line_break_is_one_log_line(client, mock_hub):
    with service_log("text") as stream:
        response = client.get("/nothing%0a" + FORGED.replace(" ", "%20") + "%0d%0aSet-Cookie:%20a=b")
    assert response.status_code == 404
    access = [line for line in lines_of(stream) if " service.access " in line]
    assert len(access) == 1, lines_of(stream)
    assert "path=/nothing\\n2026-12-04 03:09" in access[0] and "\\r\\nSet-Cookie: a=b task=-" in access[0]
    assert not any(line.startswith((FORGED[:16], "Set-Cookie")) for line in lines_of(stream))


def test_a_model_name_with_a_line_break_is_escaped(client, mock_hub):
    with service_log("json") as stream:
        post(client, "text-completion", {"inputs": "Once"}, query="?model_name=a%0a" + FORGED.replace(" ", "%20"))
    for line in lines_of(stream):
        parsed = json.loads(line)
        assert all("\n" not in value for value in parsed.values() if isinstance(value, str)), parsed


def gunicorn_logger(stream) -> GunicornLogger:
    """gunicorn's own logger (text, as the service runs it by default), writing to `stream`."""
    cfg = SimpleNamespace(
        errorlog="-",
        accesslog="-",
        loglevel="info",
        logconfig=None,
        logconfig_dict={},
        logconfig_json=None,
        syslog=False,
        capture_output=False,
        disable_redirect_access_to_syslog=False,
        access_log_format='%(h)s "%(r)s" %(s)s',
        user=None,
        group=None,
    )
    logger = GunicornLogger(cfg)
    for handler in (*logger.error_log.handlers, *logger.access_log.handlers):
        handler.setStream(stream)
    return logger


def test_gunicorn_own_lines_are_escaped():
    configure_logging(Redactor(), "INFO", "text")  # as every process of the service does at start
    stream = io.StringIO()
    logger = gunicorn_logger(stream)
    logger.error("Invalid request from ip=%s: %s", "10.0.0.1", f"bad\n{FORGED}")
    logger.access(
        SimpleNamespace(status="200 OK", headers=[], sent=0, response_length=0),
        SimpleNamespace(headers=[]),
        {
            "REQUEST_METHOD": "GET",
            "RAW_URI": f"/x\r\n{FORGED}",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "1.2.3.4",
        },
        __import__("datetime").timedelta(seconds=0.1),
    )
    lines = lines_of(stream)
    assert len(lines) == 2, lines
    assert not any(line.startswith(FORGED[:16]) for line in lines)


def test_ordinary_text_is_untouched():
    with service_log("text") as stream:
        logging.getLogger("service.x").info('连衣裙 model=a/b-c_d.e tab\tand quote " and \\n stay %s', "as is")
    (line,) = lines_of(stream)
    assert line.endswith('连衣裙 model=a/b-c_d.e tab\\tand quote " and \\n stay as is')
