"""Debian's headless Chromium driven by selenium: the system browser and driver, nothing downloaded."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/usr/lib/chromium"])


class BrowserMissing(RuntimeError):
    """chromium or chromium-driver is not installed."""


def system_binary(*names: str) -> str:
    """The first of `names` found on the system; tests/run.sh installs Debian's packages."""
    for name in names:
        found = shutil.which(name, path=SEARCH)
        if found:
            return found
    raise BrowserMissing(f"{names[0]} is not installed: run the suite with `sh tests/run.sh`, which installs it")


@contextmanager
def headless_chromium(width: int = 1100, height: int = 1400, phone: bool = False):
    """A headless Chromium window of `width` x `height` (a phone's screen, emulated, when `phone`:
    a desktop window is never narrower than 500 px), its console kept for the test to read."""
    options = webdriver.ChromeOptions()
    if phone:
        options.add_experimental_option(
            "mobileEmulation", {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2}}
        )
    options.binary_location = system_binary("chromium", "chromium-browser")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument("--lang=en-US")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never fetch a browser or a driver
    driver = webdriver.Chrome(service=Service(executable_path=system_binary("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver) -> list:
    """What the page logged as errors (SEVERE) since the last read."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
