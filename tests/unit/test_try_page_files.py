"""The try-it page's files: served by the service alone, under a strict Content-Security-Policy."""

import re

import pytest

from service.api.page import CONTENT_SECURITY_POLICY, WEB


def test_the_page_is_served_with_a_strict_policy(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy and "default-src 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name, mimetype", [("try.js", "text/javascript"), ("try.css", "text/css")])
def test_the_pages_files_are_served(client, name, mimetype):
    response = client.get(f"/try/{name}")
    assert response.status_code == 200 and response.mimetype == mimetype
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("path", ["/try/index.html", "/try/../app.py", "/try/%2e%2e/settings.py", "/try/"])
def test_nothing_else_is_served(client, path):
    assert client.get(path).status_code == 404


def test_the_page_has_no_inline_script_and_no_remote_file():
    html = (WEB / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all('src="/try/' in tag for tag in scripts)
    assert not re.search(r"\son\w+\s*=", html) and " style=" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_model_output_is_only_ever_written_as_text():
    script = (WEB / "try.js").read_text(encoding="utf-8")
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function", script)
