"""The try-it page in a real headless Chromium, against the real service under gunicorn and the
loopback upstream. Each task's result is saved as a screenshot under the test's temporary
directory, for a person to look at."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from harness import recordings
from harness.gunicorn_server import GunicornServer
from harness.service import service_env
from harness.upstream import Step
from tests.support.browser import console_errors, headless_chromium

MADLAD = "/hf-inference/models/google/madlad400-3b-mt"
WAIT_SECONDS = 30
INPUTS = "连衣裙"


@pytest.fixture(scope="module")
def page_service(loopback, tmp_path_factory):
    env = service_env(loopback, HF_HUB_API_BASE=f"{loopback.url}/api")
    with GunicornServer(env=env, log_path=tmp_path_factory.mktemp("page") / "service.log") as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with headless_chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    directory = tmp_path_factory.mktemp("screenshots")
    yield directory
    print(f"\ntry-it page screenshots: {directory}")


def open_page(browser, service, task: str | None = None):
    """Load the page, wait until its form and model list are built (no console error so far), pick `task`."""
    console_errors(browser)  # what an earlier test left (a 400 it asked for) is not this page's
    browser.get(service.url + "/")
    wait = WebDriverWait(browser, WAIT_SECONDS)
    wait.until(lambda driver: driver.find_element(By.TAG_NAME, "body").get_attribute("data-models") == "yes")
    assert console_errors(browser) == []
    if task:
        Select(browser.find_element(By.ID, "task")).select_by_value(task)
    return wait


def send(browser, wait, inputs: str = INPUTS) -> None:
    field = browser.find_element(By.ID, "inputs")
    field.clear()
    field.send_keys(inputs)
    browser.find_element(By.ID, "send").click()
    wait.until(ready.visibility_of_element_located((By.ID, "outcome")))
    wait.until(lambda driver: driver.find_element(By.ID, "send").is_enabled())


def facts(browser) -> dict:
    terms = browser.find_elements(By.CSS_SELECTOR, "#facts dt")
    values = browser.find_elements(By.CSS_SELECTOR, "#facts dd")
    return {term.text: value.text for term, value in zip(terms, values, strict=True)}


def api_result(service, task: str, body: dict) -> list:
    answer = requests.post(f"{service.url}/api/infer/{task}", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


@pytest.mark.parametrize("task", ["text-translation", "text-completion", "text-to-text"])
def test_a_text_task_end_to_end(browser, page_service, upstream, screenshots, task):
    wait = open_page(browser, page_service, task)
    send(browser, wait)
    shown = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#texts li")]
    assert shown and shown == api_result(page_service, task, {"inputs": INPUTS})
    seen = facts(browser)
    assert seen["Status"] == "200" and seen["Model"] and seen["Request id"] and seen["Cache"] == "MISS"
    assert seen["Duration"].endswith(" s")
    browser.save_screenshot(str(screenshots / f"{task}.png"))
    assert console_errors(browser) == []


def test_an_image_is_shown_decoded_with_the_upstreams_bytes(browser, page_service, upstream, screenshots):
    wait = open_page(browser, page_service, "text-to-image")
    send(browser, wait, "a red dress")
    image = wait.until(ready.visibility_of_element_located((By.CSS_SELECTOR, "#images img")))
    wait.until(lambda driver: driver.execute_script("return arguments[0].complete", image))
    assert browser.execute_script("return arguments[0].naturalWidth", image) > 0
    source = image.get_attribute("src")
    assert source.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(source.split(",", 1)[1]) == recordings.recorded_body("CompVis/stable-diffusion-v1-4")
    link = browser.find_element(By.CSS_SELECTOR, "#images a[download]")
    assert link.get_attribute("download") == "result-1.jpg" and link.get_attribute("href") == source
    browser.save_screenshot(str(screenshots / "text-to-image.png"))
    assert console_errors(browser) == []


def test_a_bad_argument_is_marked_and_the_apis_message_shown(browser, page_service, upstream):
    wait = open_page(browser, page_service, "text-translation")
    top_p = browser.find_element(By.ID, "arg-top_p")
    top_p.clear()
    top_p.send_keys("0")
    assert top_p.get_attribute("aria-invalid") == "true"
    assert "top_p must be > 0" in browser.find_element(By.ID, "arg-top_p-error").text
    send(browser, wait)
    assert "args.top_p" in browser.find_element(By.ID, "error").text
    seen = facts(browser)
    assert (seen["Status"], seen["Error type"]) == ("400", "invalid_request")
    assert not upstream.requests


def test_a_503_shows_its_retry_after(browser, page_service, upstream):
    upstream.script(MADLAD, Step(status=503, json={"error": "Model is currently loading", "estimated_time": 600.0}))
    wait = open_page(browser, page_service, "text-translation")
    Select(browser.find_element(By.ID, "model_name")).select_by_value("madlad400")
    send(browser, wait)
    seen = facts(browser)
    assert (seen["Status"], seen["Error type"]) == ("503", "model_unavailable")
    assert int(seen["Retry after"].removesuffix(" s")) >= 1
    assert browser.find_element(By.ID, "error").text


def test_the_copied_curl_command_gives_the_same_result(browser, page_service, upstream, tmp_path):
    wait = open_page(browser, page_service, "text-translation")
    Select(browser.find_element(By.ID, "model_name")).select_by_value("madlad400")
    browser.find_element(By.ID, "arg-num_sentences").clear()
    browser.find_element(By.ID, "arg-num_sentences").send_keys("2")
    browser.find_element(By.ID, "arg-do_sample").click()  # greedy: the same answer every time
    send(browser, wait)
    shown = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#texts li")]
    browser.find_element(By.ID, "copy-curl").click()
    command = wait.until(ready.visibility_of_element_located((By.ID, "curl"))).text
    assert command.startswith('curl -H "Content-Type: application/json" -X POST -d \'{"inputs":"连衣裙","args":"{')
    assert command.endswith(" -o out.translation.json") and "model_name=madlad400" in command
    subprocess.run(["sh", "-c", command + " --silent --show-error"], cwd=tmp_path, check=True, timeout=30)
    written = json.loads((tmp_path / "out.translation.json").read_text(encoding="utf-8"))
    assert written["result"] == shown and len(shown) == 2


def test_a_hostile_answer_is_shown_as_text(browser, page_service, upstream):
    hostile = "<img src=x onerror=alert(1)>"
    upstream.script(MADLAD, Step(json=[{"translation_text": hostile}]))
    wait = open_page(browser, page_service, "text-translation")
    Select(browser.find_element(By.ID, "model_name")).select_by_value("madlad400")
    send(browser, wait)
    [item] = browser.find_elements(By.CSS_SELECTOR, "#texts li")
    assert item.text == hostile
    assert browser.find_elements(By.CSS_SELECTOR, "#texts img") == []
    assert console_errors(browser) == []


def test_the_page_is_usable_at_phone_width_with_the_keyboard(page_service, upstream, screenshots):
    with headless_chromium(width=390, height=844, phone=True) as phone:
        wait = open_page(phone, page_service, "text-translation")
        assert phone.execute_script("return window.innerWidth") == 390
        assert phone.execute_script("return document.documentElement.scrollWidth") <= 390  # nothing wider
        labels = {label.get_attribute("for") for label in phone.find_elements(By.TAG_NAME, "label")}
        controls = phone.find_elements(By.CSS_SELECTOR, "input, select, textarea")
        assert all(control.get_attribute("id") in labels for control in controls)
        phone.find_element(By.ID, "inputs").send_keys(INPUTS)
        phone.switch_to.active_element.send_keys("\t")  # focus moves on to the arguments
        assert phone.switch_to.active_element.get_attribute("id").startswith("arg-")
        phone.find_element(By.ID, "send").send_keys("\n")  # Enter on the focused button sends
        wait.until(ready.visibility_of_element_located((By.ID, "outcome")))
        wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#texts li"))
        phone.save_screenshot(str(screenshots / "phone.png"))
        assert console_errors(phone) == []


def test_with_keys_the_page_asks_for_one_keeps_it_in_the_tab_and_never_copies_it(
    loopback, browser, upstream, tmp_path_factory
):
    key = "page-test-key-0123456789"
    env = service_env(loopback, HF_HUB_API_BASE=f"{loopback.url}/api", API_KEYS=key)
    with GunicornServer(env=env, log_path=tmp_path_factory.mktemp("keys") / "service.log") as guarded:
        wait = open_page(browser, guarded, "text-translation")
        assert browser.find_element(By.ID, "key-field").is_displayed()
        assert "Enter the API key" in browser.find_element(By.ID, "model-hint").text
        field = browser.find_element(By.ID, "api_key")
        assert field.get_attribute("type") == "password"
        field.send_keys(key + "\t")  # the change lists the models with the key
        wait.until(lambda driver: len(Select(driver.find_element(By.ID, "model_name")).options) > 1)
        send(browser, wait)
        assert facts(browser)["Status"] == "200"
        browser.find_element(By.ID, "copy-curl").click()
        command = browser.find_element(By.ID, "curl").text
        assert '-H "Authorization: Bearer $HF_GATEWAY_API_KEY"' in command and key not in command
        stored = browser.execute_script("return JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
        assert key not in stored and key not in browser.get_cookies().__repr__()
        assert console_errors(browser) == []
