"""The shipped nginx site over TLS, with the real nginx in front of the real gunicorn: the site
answers its own name over HTTPS, plain HTTP to that name moves to HTTPS, and any other name
(or none, a scanner asking by address) is refused on both ports."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests

from harness.gunicorn_server import LOOPBACK_HOST
from harness.nginx_server import NginxServer


@pytest.fixture(scope="module")
def tls_site(service, tmp_path_factory):
    with NginxServer(upstream_port=service.port, work=tmp_path_factory.mktemp("nginx-tls"), tls=True) as proxy:
        yield proxy


def test_the_site_answers_over_https_and_keeps_browsers_on_it(tls_site):
    answer = requests.get(tls_site.url + "/healthz", verify=str(tls_site.certificate), timeout=10)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_a_too_large_body_is_refused_in_the_services_shape_over_https_too(tls_site):
    answer = requests.post(
        tls_site.url + "/api/infer/text-translation",
        data=b"x" * (1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
        verify=str(tls_site.certificate),
        timeout=10,
    )
    assert answer.status_code == 413 and answer.json()["error_type"] == "payload_too_large"
    assert "Strict-Transport-Security" in answer.headers


def test_plain_http_to_the_sites_name_moves_to_https(tls_site):
    answer = requests.get(tls_site.http_url + "/api/models?x=1", allow_redirects=False, timeout=10)
    assert answer.status_code == 301
    assert answer.headers["Location"] == f"https://{LOOPBACK_HOST}/api/models?x=1"


@pytest.mark.parametrize("host", ["gateway.attacker.test", "203.0.113.7"])
def test_plain_http_for_any_other_name_gets_no_answer(tls_site, host):
    with pytest.raises(requests.ConnectionError):
        requests.get(tls_site.http_url + "/healthz", headers={"Host": host}, timeout=10)


def test_tls_for_any_other_name_is_refused_in_the_handshake(tls_site):
    context = ssl.create_default_context(cafile=str(tls_site.certificate))
    context.check_hostname = False
    with socket.create_connection((LOOPBACK_HOST, tls_site.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
            context.wrap_socket(raw, server_hostname="gateway.attacker.test")
