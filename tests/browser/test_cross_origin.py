"""A page on one loopback origin calls the gateway on another, in the real headless Chromium: the
page's `fetch` POSTs JSON with a key in Authorization, so the browser asks first (a preflight).
The origin of CORS_ORIGINS gets the answer and reads its exposed headers; another origin, served
the same page, is refused by the browser (fetch rejects with a TypeError), and its call never
reaches the gateway's view nor the upstream. huggingface.js, loaded with an import map as
docs/browsers.md shows, translates from the allowed origin and reads an error's request id.
Under both gunicorn worker classes."""

from __future__ import annotations

import json
from contextlib import ExitStack

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from harness.gunicorn_server import GunicornServer
from harness.service import service_env
from tests.support.browser import console_errors, headless_chromium
from tests.support.node import CLIENTS, INSTALLED, NodeMissing
from tests.support.static_site import static_site
from tests.support.waiting import wait_until

WAIT_SECONDS = 30
KEY = "browser-page-key-0123456789"
TRANSLATE = "/api/infer/text-translation"
T5_BASE_ANSWER = "Mein Name ist Wolfgang und ich lebe in Berlin"  # the loopback's recording

# The page a browser app would be: the gateway's URL, the key and a request id come in its query.
PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>cross-origin call</title><link rel="icon" href="data:,"></head>
<body><pre id="outcome"></pre>
<script type="module">
const query = new URLSearchParams(location.search);
const outcome = document.getElementById("outcome");
try {
  const answer = await fetch(query.get("gateway") + "/api/infer/text-translation", {
    method: "POST",
    headers: {
      "Authorization": "Bearer " + query.get("key"),
      "Content-Type": "application/json",
      "X-Request-ID": query.get("rid"),
    },
    body: JSON.stringify({inputs: "\xe8\xbf\x9e\xe8\xa1\xa3\xe8\xa3\x99"}),
  });
  outcome.textContent = JSON.stringify({
    status: answer.status,
    request_id: answer.headers.get("X-Request-ID"),
    cache: answer.headers.get("X-Cache"),
    body: await answer.json(),
  });
  outcome.dataset.state = "answered";
} catch (error) {
  outcome.textContent = JSON.stringify({error: error.name, message: error.message});
  outcome.dataset.state = "refused";
}
</script></body></html>
"""


# huggingface.js in a page with no bundler: its ES modules and their two bare imports, mapped.
HF_JS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>huggingface.js</title><link rel="icon" href="data:,">
<script type="importmap">
{"imports": {
  "@huggingface/inference": "/node_modules/@huggingface/inference/dist/esm/index.js",
  "@huggingface/tasks": "/node_modules/@huggingface/tasks/dist/esm/index.js",
  "@huggingface/jinja": "/node_modules/@huggingface/jinja/dist/index.js"
}}
</script></head>
<body><pre id="outcome"></pre>
<script type="module">
import { InferenceClient } from "@huggingface/inference";

const query = new URLSearchParams(location.search);
const client = new InferenceClient(query.get("key"), { endpointUrl: query.get("gateway") + "/models/OPUS" });
const outcome = document.getElementById("outcome");
const written = {};
try {
  written.translation = await client.translation({ inputs: "连衣裙" });
  try {
    await client.translation({ inputs: "连衣裙", parameters: { src_lang: "zh", tgt_lang: "ja" } });
  } catch (error) {
    written.error = { name: error.name, status: error.httpResponse?.status, requestId: error.httpResponse?.requestId };
  }
  outcome.dataset.state = "answered";
} catch (error) {
  written.failure = { name: error.name, message: error.message };
  outcome.dataset.state = "refused";
}
outcome.textContent = JSON.stringify(written);
</script></body></html>
""".replace("OPUS", "Helsinki-NLP/opus-mt-zh-en").encode()


def huggingface_js_files() -> dict:
    """The installed packages' ES modules, by the URL path the import map names."""
    if not INSTALLED.exists():
        raise NodeMissing("the packages of tests/clients/ are not installed: run the suite with `sh tests/run.sh`")
    modules = CLIENTS / "node_modules" / "@huggingface"
    return {f"/{path.relative_to(CLIENTS)}": path for path in modules.rglob("*.js")}


@pytest.fixture(scope="module")
def origins():
    """Two origins serving the same pages: the first is allowed, the second is not."""
    files = {"/": PAGE, "/huggingface-js.html": HF_JS_PAGE, **huggingface_js_files()}
    with ExitStack() as stack:
        yield [stack.enter_context(static_site(files)) for _ in range(2)]


@pytest.fixture(scope="module", params=["gevent", "gthread"])
def gateway(request, loopback, origins, tmp_path_factory):
    env = service_env(loopback, API_KEYS=KEY, CORS_ORIGINS=origins[0], WORKER_CLASS=request.param, WEB_CONCURRENCY="1")
    log_path = tmp_path_factory.mktemp(f"cors-{request.param}") / "service.log"
    with GunicornServer(env=env, log_path=log_path) as server:
        yield server


def call_from(origin: str, gateway: GunicornServer, request_id: str = "-", page: str = "/") -> tuple[str, dict, list]:
    """Open a page of `origin`; return how its calls ended, what it wrote, and the console's errors."""
    with headless_chromium() as browser:
        browser.get(f"{origin}{page}?gateway={gateway.url}&key={KEY}&rid={request_id}")
        outcome = browser.find_element(By.ID, "outcome")
        WebDriverWait(browser, WAIT_SECONDS).until(lambda _: outcome.get_attribute("data-state"))
        return outcome.get_attribute("data-state"), json.loads(outcome.text), console_errors(browser)


def access_lines(gateway: GunicornServer, method: str) -> list[str]:
    return [line for line in gateway.log_text().splitlines() if f"method={method} path={TRANSLATE} " in line]


def test_the_allowed_origin_gets_the_answer(gateway, origins, upstream):
    state, written, errors = call_from(origins[0], gateway, "page-allowed-1")
    assert state == "answered", written
    assert written["status"] == 200 and written["body"]["code"] == 0, written
    assert written["body"]["result"] == [T5_BASE_ANSWER], written
    # Headers a page reads only when they are exposed.
    assert written["request_id"] == "page-allowed-1" and written["cache"], written
    assert errors == []
    assert upstream.requests  # the call went through to a model
    assert wait_until(lambda: any("request_id=page-allowed-1" in line for line in access_lines(gateway, "POST")))
    preflights = access_lines(gateway, "OPTIONS")
    assert preflights and all("status=204" in line for line in preflights), preflights


def test_another_origin_is_refused_by_the_browser(gateway, origins, upstream):
    asked_before = len(access_lines(gateway, "OPTIONS"))
    state, written, errors = call_from(origins[1], gateway, "page-refused-1")
    assert state == "refused", written
    assert written["error"] == "TypeError", written
    assert any("CORS" in entry["message"] for entry in errors), errors  # the browser says why
    # The browser asked, got no leave, and never sent the call itself.
    assert wait_until(lambda: len(access_lines(gateway, "OPTIONS")) > asked_before)
    assert "status=204" in access_lines(gateway, "OPTIONS")[-1]
    assert not any("request_id=page-refused-1" in line for line in gateway.log_text().splitlines())
    assert not upstream.requests


def test_huggingface_js_in_the_allowed_origins_page(gateway, origins, upstream):
    state, written, errors = call_from(origins[0], gateway, page="/huggingface-js.html")
    assert state == "answered", written
    assert written["translation"] == {"translation_text": T5_BASE_ANSWER}, written
    # The gateway's 400, read as the client's own error with the id of the request.
    assert written["error"]["name"] == "ProviderApiError" and written["error"]["status"] == 400, written
    assert written["error"]["requestId"] and f"request_id={written['error']['requestId']}" in gateway.log_text()
    assert [entry for entry in errors if "status of 400" not in entry["message"]] == []  # the browser logs the 400
