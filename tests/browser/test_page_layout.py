"""The try-it page at a common laptop size, in the real headless Chromium: everything needed to
send is in view without scrolling, and the schemas' bounds are shown exactly as the API states
them (2^63-1 is beyond what a JavaScript number holds exactly)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from harness.gunicorn_server import GunicornServer
from harness.service import service_env
from service.catalog.tasks import MAX_SEED
from tests.support.browser import console_errors, headless_chromium

WAIT_SECONDS = 30
TASKS = ["text-translation", "text-completion", "text-to-text", "text-to-image"]


@pytest.fixture(scope="module")
def page_service(loopback, tmp_path_factory):
    env = service_env(loopback, HF_HUB_API_BASE=f"{loopback.url}/api")
    with GunicornServer(env=env, log_path=tmp_path_factory.mktemp("layout") / "service.log") as server:
        yield server


@pytest.fixture(scope="module")
def laptop(page_service):
    with headless_chromium(width=1200, height=1400) as driver:
        driver.get(page_service.url + "/")
        WebDriverWait(driver, WAIT_SECONDS).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-models") == "yes"
        )
        yield driver
        assert console_errors(driver) == []


@pytest.mark.parametrize("task", TASKS)
def test_send_is_in_view_without_scrolling(laptop, task):
    Select(laptop.find_element(By.ID, "task")).select_by_value(task)
    laptop.execute_script("window.scrollTo(0, 0)")
    bottom, height = laptop.execute_script(
        "return [document.getElementById('send').getBoundingClientRect().bottom, window.innerHeight]"
    )
    assert 0 < bottom <= height, f"Send ends at {bottom} px of a {height} px window"


def test_the_seed_bound_is_shown_exactly(laptop):
    Select(laptop.find_element(By.ID, "task")).select_by_value("text-translation")
    hint = laptop.find_element(By.ID, "arg-seed-hint").text
    assert MAX_SEED == 9223372036854775807 and f"≤ {MAX_SEED}" in hint, hint
    assert laptop.find_element(By.ID, "arg-seed").get_attribute("max") == str(MAX_SEED)


def test_the_largest_seed_is_accepted_and_sent_exactly(laptop, page_service, upstream):
    Select(laptop.find_element(By.ID, "task")).select_by_value("text-completion")
    seed = laptop.find_element(By.ID, "arg-seed")
    seed.clear()
    seed.send_keys(str(MAX_SEED))
    assert seed.get_attribute("aria-invalid") == "false"
    laptop.find_element(By.ID, "inputs").clear()
    laptop.find_element(By.ID, "inputs").send_keys("连衣裙")
    laptop.find_element(By.ID, "send").click()
    WebDriverWait(laptop, WAIT_SECONDS).until(lambda d: d.find_element(By.ID, "outcome").is_displayed())
    WebDriverWait(laptop, WAIT_SECONDS).until(lambda d: d.find_element(By.ID, "send").is_enabled())
    upstream.wait_idle()
    seeds = [request.json.get("seed") for request in upstream.requests if request.json]
    assert MAX_SEED in seeds, seeds
