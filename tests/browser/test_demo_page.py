"""The try-it page in demo mode (`DEMO=1 sh start.sh`), in the real headless Chromium: the page
says the answers are recorded, and 连衣裙 zh2en comes back in English from a model shown live.
The screenshot it saves is the README's picture (docs/try-it.png): copy it there when the page
changes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import console_errors, headless_chromium
from tests.support.gunicorn_server import free_port
from tests.support.paths import REPO_ROOT

WAIT_SECONDS = 30
START_SECONDS = 120


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name not in ("HF_API_TOKEN", "HOST")}
    log = tmp_path_factory.mktemp("demo-page") / "demo.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.demo"],
            cwd=REPO_ROOT,
            env={**env, "PORT": str(port)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_the_demo_page_says_recorded_and_translates_into_english(demo, tmp_path_factory):
    screenshots = tmp_path_factory.mktemp("demo-screenshots")
    with headless_chromium(width=1200, height=1400) as browser:
        browser.get(demo + "/")
        wait = WebDriverWait(browser, WAIT_SECONDS)
        wait.until(lambda driver: driver.find_element(By.TAG_NAME, "body").get_attribute("data-models") == "yes")
        banner = browser.find_element(By.ID, "demo-banner")
        assert banner.is_displayed() and "recorded answers" in banner.text
        Select(browser.find_element(By.ID, "task")).select_by_value("text-translation")
        Select(browser.find_element(By.ID, "model_type")).select_by_value("zh2en")
        wait.until(lambda driver: "live" in driver.find_element(By.ID, "model-hint").text)
        assert "facebook/mbart-large-50-many-to-many-mmt" in browser.find_element(By.ID, "model-hint").text
        browser.find_element(By.ID, "inputs").send_keys("连衣裙")
        browser.find_element(By.ID, "send").click()
        wait.until(ready.visibility_of_element_located((By.ID, "outcome")))
        wait.until(lambda driver: driver.find_element(By.ID, "send").is_enabled())
        assert [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#texts li")] == ["Hello world"]
        terms = [term.text for term in browser.find_elements(By.CSS_SELECTOR, "#facts dt")]
        values = [value.text for value in browser.find_elements(By.CSS_SELECTOR, "#facts dd")]
        facts = dict(zip(terms, values, strict=True))
        assert facts["Status"] == "200" and facts["Recorded"].startswith("yes")
        assert facts["Recording"].startswith("huggingface/huggingface_hub@")
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(screenshots / "try-it.png"))
        assert console_errors(browser) == []
    print(f"\nthe README's picture, taken in demo mode: {screenshots / 'try-it.png'}")
