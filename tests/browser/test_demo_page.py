"""The try-it page in demo mode (`DEMO=1 sh start.sh`), in the real headless Chromium: the page
says the answers are recorded; the recorded English sentence, sent en2de, comes back in German,
and 连衣裙 zh2en in English ("dress", the answer written for the demo, labelled so), each from
models shown live. The screenshot of the second is the README's picture (docs/try-it.png): copy
it there when the page changes."""

from __future__ import annotations

import sys

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import console_errors, headless_chromium
from tests.support.demo import running_demo

WAIT_SECONDS = 30


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with running_demo([sys.executable, "-m", "service.demo"], tmp_path_factory.mktemp("demo-page") / "demo.log") as url:
        yield url


RECORDED_INPUT = "My name is Wolfgang and I live in Berlin"  # t5-base's recording (huggingface.js)
RECORDED_ANSWER = "Mein Name ist Wolfgang und ich lebe in Berlin"


def send(browser, wait, direction: str, model: str, text: str) -> dict:
    """Ask one translation on the page; return the result's facts."""
    Select(browser.find_element(By.ID, "task")).select_by_value("text-translation")
    Select(browser.find_element(By.ID, "model_type")).select_by_value(direction)
    wait.until(lambda driver: model in driver.find_element(By.ID, "model-hint").text)
    shown = browser.find_element(By.ID, "model-hint").text.removeprefix("In fallback order: ").split(" → ")
    assert all(target.endswith(" · live") for target in shown), shown  # every model shown is live
    field = browser.find_element(By.ID, "inputs")
    field.clear()
    field.send_keys(text)
    browser.find_element(By.ID, "send").click()
    wait.until(ready.visibility_of_element_located((By.ID, "outcome")))
    wait.until(lambda driver: driver.find_element(By.ID, "send").is_enabled())
    wait.until(lambda driver: model in driver.find_element(By.ID, "facts").text)
    terms = [term.text for term in browser.find_elements(By.CSS_SELECTOR, "#facts dt")]
    values = [value.text for value in browser.find_elements(By.CSS_SELECTOR, "#facts dd")]
    return dict(zip(terms, values, strict=True))


def texts(browser) -> list[str]:
    return [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#texts li")]


def test_the_demo_page_says_recorded_and_answers_what_was_recorded(demo, tmp_path_factory):
    screenshots = tmp_path_factory.mktemp("demo-screenshots")
    with headless_chromium(width=1200, height=1400) as browser:
        browser.get(demo + "/")
        wait = WebDriverWait(browser, WAIT_SECONDS)
        wait.until(lambda driver: driver.find_element(By.TAG_NAME, "body").get_attribute("data-models") == "yes")
        banner = browser.find_element(By.ID, "demo-banner")
        assert banner.is_displayed() and "recorded answers" in banner.text

        facts = send(browser, wait, "en2de", "t5-base", RECORDED_INPUT)
        assert texts(browser) == [RECORDED_ANSWER]
        assert facts["Status"] == "200" and facts["Recorded"].startswith("yes")
        assert facts["Recorded input"] == RECORDED_INPUT
        assert facts["Recording"].startswith("huggingface/huggingface.js@")

        facts = send(browser, wait, "zh2en", "Helsinki-NLP/opus-mt-zh-en", "连衣裙")
        assert texts(browser) == ["dress"]
        assert facts["Status"] == "200" and facts["Model"] == "Helsinki-NLP/opus-mt-zh-en"
        assert facts["Recorded"].startswith("no: a written answer") and facts["Written for"] == "连衣裙"
        assert facts["Source"].startswith("hf-gateway demo: written")
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(screenshots / "try-it.png"))
        assert console_errors(browser) == []
    print(f"\nthe README's picture, taken in demo mode: {screenshots / 'try-it.png'}")
