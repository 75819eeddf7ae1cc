"""The /docs page (Swagger UI) in a real headless Chromium under its Content-Security-Policy:
it renders the API's operations and the browser refuses nothing it needs."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from harness.gunicorn_server import GunicornServer
from harness.service import service_env
from tests.support.browser import console_errors, headless_chromium

WAIT_SECONDS = 30


@pytest.fixture(scope="module")
def docs_service(loopback, tmp_path_factory):
    env = service_env(loopback)
    with GunicornServer(env=env, log_path=tmp_path_factory.mktemp("docs") / "service.log") as server:
        yield server


def test_swagger_ui_renders_under_the_pages_policy(docs_service):
    with headless_chromium() as browser:
        browser.get(docs_service.url + "/docs")
        WebDriverWait(browser, WAIT_SECONDS).until(
            lambda driver: driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        )
        paths = {
            element.text.replace("\u200b", "")
            for element in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        }
        browser.find_element(By.CSS_SELECTOR, ".opblock-summary").click()  # an operation opens: its styles apply
        WebDriverWait(browser, WAIT_SECONDS).until(
            lambda driver: driver.find_elements(By.CSS_SELECTOR, ".opblock-body")
        )
        errors = console_errors(browser)
    assert "/api/infer/{task_type}" in paths or any(path.startswith("/api/") for path in paths), paths
    assert errors == [], errors  # a refused script, style, image or fetch is logged as an error
