"""The nginx site and systemd unit agree with the service's own limits and timeouts."""

import configparser
import re

import pytest

from service.settings import Settings
from tests.support import gunicorn_conf
from tests.support.paths import REPO_ROOT

NGINX = (REPO_ROOT / "deploy" / "nginx.conf").read_text()
UNIT = REPO_ROOT / "deploy" / "hf-gateway.service"
SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2}


def directive(name: str, text: str = NGINX) -> list[str]:
    """Return the arguments of every use of an nginx directive."""
    return [match.group(1).strip() for match in re.finditer(rf"^\s*{name}\s+([^;]+);", text, re.MULTILINE)]


def seconds(value: str) -> float:
    """Read an nginx time such as 120s or 2m."""
    number, unit = re.fullmatch(r"(\d+)(s|m)?", value).groups()
    return int(number) * (60 if unit == "m" else 1)


def unit_file() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str
    parser.read(UNIT)
    return parser


@pytest.fixture
def defaults(monkeypatch):
    """The gunicorn configuration and settings a default .env gives."""
    unset = {name: None for name in ("TEXT_DEADLINE_SECONDS", "IMAGE_DEADLINE_SECONDS", "KEEPALIVE_SECONDS")}
    return gunicorn_conf.load(unset), Settings.from_env({})


def test_nginx_waits_longer_than_the_longest_deadline(defaults):
    _, settings = defaults
    [read_timeout] = directive("proxy_read_timeout")
    assert seconds(read_timeout) > settings.longest_deadline


def test_nginx_body_limit_is_the_services(defaults):
    _, settings = defaults
    [limit] = directive("client_max_body_size")
    number, unit = re.fullmatch(r"(\d+)([km]?)", limit.lower()).groups()
    assert int(number) * SIZE_UNITS[unit] == settings.max_body_bytes


def test_nginx_closes_idle_upstream_connections_before_gunicorn_does(defaults):
    conf, _ = defaults
    [keepalive_timeout] = directive("keepalive_timeout")
    assert seconds(keepalive_timeout) < conf["keepalive"]
    assert directive("proxy_http_version") == ["1.1"]
    assert directive("proxy_set_header Connection") == ['""']


def test_systemd_waits_for_the_graceful_stop(defaults):
    conf, _ = defaults
    service = unit_file()["Service"]
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > conf["graceful_timeout"]
    assert service["Restart"] == "on-failure"
    assert service["EnvironmentFile"].endswith("/.env")
    assert service["ExecStart"].split()[0].endswith(("/gunicorn", "/start.sh"))
    assert (service["NoNewPrivileges"], service["ProtectSystem"]) == ("true", "strict")


def test_systemd_lets_each_worker_hold_its_connections(defaults):
    _, settings = defaults
    assert int(unit_file()["Service"]["LimitNOFILE"]) >= settings.open_files_needed
