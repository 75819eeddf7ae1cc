"""Every HTML page the service serves carries a Content-Security-Policy that forbids framing it."""

import re

import pytest

from service.api.page import DEFAULT_HTML_POLICY

# What fills a route's variables when the route is walked (a name that exists where one is needed).
SAMPLE_VALUES = {"name": "try.js", "task_type": "text-translation"}


def html_answers(app, client):
    """GET every route the app has (variables filled in) and keep the answers that are HTML."""
    answers = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda match: SAMPLE_VALUES.get(match.group(1), "x"), rule.rule)
        response = client.get(path)
        if response.mimetype == "text/html":
            answers[path] = response
    return answers


def directives(policy: str) -> dict:
    pairs = (part.strip().split(None, 1) for part in policy.split(";") if part.strip())
    return {pair[0]: (pair[1] if len(pair) > 1 else "") for pair in pairs}


def test_every_html_route_carries_a_policy_that_forbids_framing(app, client, mock_hub):
    answers = html_answers(app, client)
    assert {"/", "/docs"} <= set(answers), sorted(answers)
    for path, response in answers.items():
        policy = directives(response.headers.get("Content-Security-Policy", ""))
        assert policy.get("frame-ancestors") == "'none'", (path, policy)
        assert policy.get("default-src") == "'none'", (path, policy)
        assert response.headers.get("X-Content-Type-Options") == "nosniff", path


def test_the_docs_page_allows_its_own_files_and_nothing_else(client):
    response = client.get("/docs")
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["script-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]
    assert not any("http" in value or "*" in value for value in policy.values()), policy
    for tag in re.findall(r"<script\b[^>]*>", response.get_data(as_text=True)):
        assert 'src="/docs/' in tag  # no inline script: the policy would refuse it


def test_an_html_answer_without_a_policy_of_its_own_gets_the_strictest(app):
    @app.get("/an-html-page-with-no-policy")
    def html_page():
        return "<p>hello</p>"

    response = app.test_client().get("/an-html-page-with-no-policy")
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == DEFAULT_HTML_POLICY


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json"])
def test_json_answers_are_left_alone(client, path):
    assert client.get(path).mimetype == "application/json"
