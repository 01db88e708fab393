"""A real khfsm server with real assessed sessions and users, and Debian's headless Chromium
driven by Selenium through Debian's chromedriver (both installed by `scripts/setup.sh
--test`; Selenium is given the driver's path, so Selenium Manager never downloads one).

Screenshots go to $KHFSM_ARTIFACTS (default: a `browser-artifacts` folder in pytest's temp
directory, printed at the end of the run); they are never committed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import unavailable
from tests.server.conftest import RunningServer, connect, op, prepare_body, running_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PASSWORD = "correct horse battery"
SIZE = (1280, 800)  # the tablet screen the pages are made for


@dataclass(frozen=True)
class Site:
    server: RunningServer
    session_id: str  # a finished push-up session, assessed live from the real clip
    artifacts: Path

    @property
    def url(self) -> str:
        return self.server.http_url


def _add_users(server: RunningServer) -> None:
    from khfsm.api.accounts import Accounts, Role

    accounts = Accounts(server.recorder().engine)
    accounts.add("rita", Role.REVIEWER, PASSWORD)
    accounts.add("otto", Role.OPERATOR, PASSWORD)


async def run_session(
    server: RunningServer, capture_id: int, duration: float, task: str = "pushup"
) -> str:
    """A whole live session on the server's copy of the clip; its session id."""
    async with connect(server) as tablet:
        body = prepare_body(capture_id, f"video/browser_{capture_id}.mp4", duration, fps=20)
        ack = await tablet.request(body)
        assert ack.body["result"] == "ok", ack.body
        ack = await tablet.request(op("start", capture_id, task))
        assert ack.body["result"] == "ok", ack.body
        _, final = await tablet.until_terminal(within=duration + 60)
        session: str = final.body["session"]
        return session


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    configured = os.environ.get("KHFSM_ARTIFACTS")
    path = Path(configured) if configured else tmp_path_factory.mktemp("browser-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    yield path
    print(f"\nbrowser test screenshots: {path}")


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, videos: Path, artifacts: Path) -> Iterator[Site]:
    with running_server(tmp_path_factory.mktemp("khfsm-web"), videos) as server:
        _add_users(server)
        session_id = anyio.run(run_session, server, 1, 40.0)
        yield Site(server, session_id, artifacts)


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[Path, Path]:
    if not CHROMIUM.is_file() or not CHROMEDRIVER.is_file():
        unavailable("Debian's chromium and chromium-driver are needed: scripts/setup.sh --test")
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture
def browser(chromium_paths: tuple[Path, Path]) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = chromium_paths
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for argument in (
        "--headless=new",
        f"--window-size={SIZE[0]},{SIZE[1]}",
        "--no-sandbox",  # the test may run as root in a container
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(chromedriver)), options=options)
    # The page's viewport itself is 1280x800 (a window of that size has less inside it).
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": SIZE[0], "height": SIZE[1], "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        yield driver
        # The pages must run without script errors; the one expected refusal is the 401 of
        # /api/v1/me that sends a browser without a login to the login page.
        errors = [
            entry["message"]
            for entry in driver.get_log("browser")
            if entry.get("level") == "SEVERE"
            and not ("/api/v1/me" in entry["message"] and "401" in entry["message"])
        ]
        assert not errors, f"errors in the browser console: {errors}"
    finally:
        driver.quit()


def log_in(driver: Any, site: Site, user: str, next_path: str = "/ui/") -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{site.url}{next_path}")
    WebDriverWait(driver, 15).until(ec.url_contains("/ui/login"))
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 15).until(lambda d: "/ui/login" not in d.current_url)
    WebDriverWait(driver, 15).until(ec.text_to_be_present_in_element((By.ID, "who"), user))


def wait_for(driver: Any, script: str, within: float = 20.0) -> Any:
    """Wait until the JavaScript expression `script` is truthy; its value."""
    deadline = time.monotonic() + within
    while True:
        value = driver.execute_script(f"return {script};")
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"within {within} s, never true: {script}")
        time.sleep(0.05)


def shoot(driver: Any, site: Site, name: str) -> Path:
    path = site.artifacts / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
