"""The nginx site and systemd unit agree with the service's own limits and timeouts."""

import configparser
import re

import pytest

from harness.paths import REPO_ROOT
from service.settings import Settings
from tests.support import gunicorn_conf

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


def environment_of() -> dict:
    """Every Environment= assignment of the unit's [Service] section."""
    lines = [line for line in UNIT.read_text().splitlines() if line.startswith("Environment=")]
    return dict(pair.split("=", 1) for line in lines for pair in line.removeprefix("Environment=").split())


def test_systemd_reloads_the_master_its_pidfile_names():
    service = unit_file()["Service"]
    pidfile = environment_of()["PIDFILE"]
    assert service["PIDFile"] == pidfile
    assert pidfile.startswith(f"/run/{service['RuntimeDirectory']}/")  # gone after a stop, never stale
    # systemd turns $$ into $ (and would expand a bare $NAME itself): the shell runs kill -HUP "$(cat <pidfile>)".
    assert service["ExecReload"].replace("$$", "").count("$") == 0
    reload = service["ExecReload"].replace("$$", "$")
    assert re.fullmatch(rf"""/bin/sh -c 'exec /bin/kill -HUP "\$\(cat {re.escape(pidfile)}\)"'""", reload)


def test_the_unit_and_the_docs_say_a_reload_brings_no_new_code():
    unit = " ".join(UNIT.read_text().split())
    deployment = " ".join((REPO_ROOT / "docs" / "deployment.md").read_text().split())
    assert "configuration and code" not in unit + deployment
    assert "Not new code" in unit and "(systemctl restart hf-gateway)" in unit
    assert "A reload (`HUP`) brings new configuration, never new code" in deployment


def test_the_docs_reload_through_the_pidfile_never_by_pgrep():
    for path in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        assert "pgrep -o" not in path.read_text(), path


def test_the_documented_server_install_installs_the_command_line_too():
    deployment = (REPO_ROOT / "docs" / "deployment.md").read_text()
    install = re.search(r"```sh\n(sudo useradd.*?)```", deployment, re.S).group(1)
    assert "pip install -r requirements.txt" in install and "pip install --no-deps -e ." in install


def test_the_deployment_guide_has_the_checklist_before_you_expose_it():
    deployment = (REPO_ROOT / "docs" / "deployment.md").read_text()
    checklist = deployment.split("\n## Before you expose it\n", 1)[1].split("\n## ", 1)[0]
    items = re.findall(r"^- \*\*(.+?)\*\*", checklist, re.M)
    assert items == [
        "Keys on.",
        "TLS.",
        "Loopback only, behind nginx.",
        "Backups of the store.",
        "Logs and their retention.",
    ]
    assert deployment.index("## Before you expose it") < deployment.index("## Upgrades")


def test_the_site_refuses_unknown_names_and_serves_its_own_over_tls_only():
    servers = re.findall(r"^server \{\n(.*?)^\}", NGINX, re.S | re.M)
    by_listen = {tuple(directive("listen", server)): server for server in servers}
    assert set(by_listen) == {("80 default_server",), ("443 ssl default_server",), ("80",), ("443 ssl",)}
    assert directive("return", by_listen[("80 default_server",)]) == ["444"]
    assert directive("ssl_reject_handshake", by_listen[("443 ssl default_server",)]) == ["on"]
    assert directive("return", by_listen[("80",)]) == ["301 https://$host$request_uri"]
    assert "proxy_pass" not in by_listen[("80",)] and "proxy_pass" in by_listen[("443 ssl",)]
