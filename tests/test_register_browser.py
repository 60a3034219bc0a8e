"""The register in a real browser: Debian's headless Chromium driven by Selenium against the
real ASGI app under uvicorn on 127.0.0.1, signing in through local fakes of Microsoft Entra ID
and Sign in with Slack, with axe-core run inside every page.

Skipped when /usr/bin/chromium or /usr/bin/chromedriver is missing, except on CI (CI=true),
where `.ci/run` installs them and a missing browser is a failure."""

from __future__ import annotations

import base64
import io
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.app import create_app
from bot.settings import Settings
from bot.web import create_web_app
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.oidc_idp import TENANT, FakeIdentityProvider
from tests.fakes.slack_api import ServedApp
from tests.test_register_web import SECRET_ITEMS, _trail

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BROWSER_PRESENT = CHROMIUM.exists() and CHROMEDRIVER.exists()
ON_CI = os.environ.get("CI") == "true"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not BROWSER_PRESENT and not ON_CI,
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
        "chromium-driver); .ci/run installs them",
    ),
]

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)
SERIOUS = ("serious", "critical")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (starting it is the slow part), fresh profile."""
    if not BROWSER_PRESENT:
        pytest.fail(
            f"CI=true but {CHROMIUM} or {CHROMEDRIVER} is missing: .ci/run should have installed "
            "chromium and chromium-driver with apt-get."
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Never let Selenium Manager look for (or download) a browser or a driver.
    os.environ["SE_OFFLINE"] = "true"
    profile = tempfile.mkdtemp(prefix="register-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Site:
    """The running register and the two identity providers it trusts."""

    base: str
    entra: FakeIdentityProvider
    slack: FakeIdentityProvider
    seed: Seed


@pytest.fixture
def site(settings: Settings, engine: Engine, seed: Seed) -> Iterator[Site]:
    """The real ASGI app under uvicorn on 127.0.0.1 (port chosen by the system) in a daemon
    thread, trusting the two fake identity providers."""
    entra = FakeIdentityProvider("entra", "register-entra", "entra-secret", NOW).start()
    slack = FakeIdentityProvider("slack", "register-slack", "slack-secret", NOW).start()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    configured = settings.model_copy(
        update={
            "web_session_secret": "browser-" + "s" * 40,
            "web_base_url": base,
            "web_entra_client_id": entra.client_id,
            "web_entra_client_secret": entra.client_secret,
            "web_entra_metadata_url": entra.metadata_url,
            "graph_tenant_id": TENANT,
            "web_slack_client_id": slack.client_id,
            "web_slack_client_secret": slack.client_secret,
            "web_slack_metadata_url": slack.metadata_url,
        }
    )
    asgi = create_web_app(create_app(configured, engine), clock=lambda: NOW)
    try:
        with ServedApp(asgi, listener):
            yield Site(base, entra, slack, seed)
    finally:
        listener.close()
        entra.stop()
        slack.stop()
    # The server's worker threads end with its event loop: nothing may keep the run alive.
    for leftover in _non_daemon_threads():
        leftover.join(10)
    assert not _non_daemon_threads()


def _non_daemon_threads() -> list[threading.Thread]:
    main = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive()]


def open_page(browser: Any, site: Site, path: str) -> None:
    browser.get(f"{site.base}{path}")


def assert_accessible(browser: Any) -> None:
    """axe-core, run inside the page: no serious or critical violation."""
    from axe_selenium_python import Axe

    axe = Axe(browser)
    axe.inject()
    results = axe.run(options="{resultTypes: ['violations']}")
    bad = [v for v in results["violations"] if v.get("impact") in SERIOUS]
    assert not bad, f"{browser.current_url}\n{axe.report(bad)}"


def sign_in(browser: Any, site: Site, slug: str, provider: str) -> None:
    """Through the sign-in page and the fake provider, as a person would."""
    from selenium.webdriver.common.by import By

    member = site.seed.members[slug]
    if provider == "entra":
        assert member.entra_object_id
        site.entra.user = {"oid": member.entra_object_id, "tid": TENANT}
        label = "Sign in with Microsoft"
    else:
        assert member.slack_user_id
        site.slack.user = {"sub": member.slack_user_id}
        label = "Sign in with Slack"
    open_page(browser, site, "/healthz")  # a page of the site, so its cookies can be cleared
    browser.delete_all_cookies()
    open_page(browser, site, "/decisions")
    assert "/signin" in browser.current_url
    assert_accessible(browser)
    click_through(browser, By.LINK_TEXT, label)
    assert browser.current_url.startswith(f"{site.base}/decisions")
    assert f"Signed in as {member.name}" in text_of(browser) or "Wedi mewngofnodi" in text_of(
        browser
    )


def click_through(browser: Any, by: str, value: str) -> None:
    """Click a link or button and wait until the next page has replaced this one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(by, value).click()
    WebDriverWait(browser, 20).until(expected_conditions.staleness_of(page))
    WebDriverWait(browser, 20).until(
        lambda b: b.execute_script("return document.readyState") == "complete"
    )


def text_of(browser: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.find_element(By.TAG_NAME, "body").text)


def fetch_text(browser: Any, path: str) -> str:
    """What the page's own session downloads from `path` (exports are attachments)."""
    script = (
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'})"
        ".then(r => r.arrayBuffer()).then(b => {"
        "  let s = ''; const a = new Uint8Array(b);"
        "  for (let i = 0; i < a.length; i++) s += String.fromCharCode(a[i]);"
        "  done(btoa(s)); });"
    )
    return base64.b64decode(browser.execute_async_script(script, path)).decode("latin-1")


def test_scrutiny_member_searches_follows_the_trail_and_switches_to_welsh(
    browser: Any, site: Site, session: Session
) -> None:
    from selenium.webdriver.common.by import By

    _trail(session, site.seed)
    sign_in(browser, site, "rhys-evans", "entra")
    assert_accessible(browser)
    search = browser.find_element(By.ID, "q")
    search.send_keys("data centre")
    click_through(browser, By.CSS_SELECTOR, "form[role=search] button[type=submit]")
    assert "q=data+centre" in browser.current_url
    listing = text_of(browser)
    assert "SB-2026-031" in listing and "FG-2026-044" not in listing
    assert_accessible(browser)

    click_through(browser, By.LINK_TEXT, "SB-2026-031")
    assert browser.current_url == f"{site.base}/decisions/SB-2026-031"
    page = text_of(browser)
    assert "TP-001" in page and "TP-004" in page and "Q-SB-2026-12-001" in page
    assert_accessible(browser)

    click_through(browser, By.LINK_TEXT, "TP-001")
    assert browser.current_url == f"{site.base}/actions/TP-001"
    page = text_of(browser)
    assert "SB-2026-031" in page and "When will phase 2 finish?" in page
    assert_accessible(browser)

    click_through(browser, By.CSS_SELECTOR, "button[name=lang][value=cy]")
    assert browser.current_url == f"{site.base}/actions/TP-001"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "cy"
    assert_accessible(browser)
    for path in ("/decisions", "/actions", "/meetings", "/attendance", "/calendars"):
        open_page(browser, site, path)
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "cy"
        assert_accessible(browser)
    open_page(browser, site, f"/meetings/{site.seed.meetings[0].id}")
    assert "Q-SB-2026-12-001" in text_of(browser)
    assert_accessible(browser)


def test_member_without_exempt_access_finds_nothing_withheld_anywhere(
    browser: Any, site: Site, session: Session
) -> None:
    from selenium.webdriver.common.by import By

    _trail(session, site.seed)
    sign_in(browser, site, "eleri-jones", "slack")
    # Eleri reads Welsh: the register greets her in Welsh.
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "cy"
    seen: list[str] = []
    for path in (
        "/decisions",
        "/decisions?q=exempt+procurement",
        "/decisions?q=police+records",
        "/decisions?board=strategic",
        "/actions",
        "/actions?q=segregation",
        "/actions?timing=overdue",
        "/decisions/SB-2026-031",
        "/actions/TP-001",
        f"/meetings/{site.seed.meetings[0].id}",
        "/attendance",
    ):
        open_page(browser, site, path)
        seen.append(text_of(browser) + browser.page_source)
        assert_accessible(browser)
    open_page(browser, site, "/decisions")
    assert "2 benderfyniad" in text_of(browser)
    seen.append(fetch_text(browser, "/export/register.csv?sheet=decisions"))
    seen.append(fetch_text(browser, "/export/register.csv?sheet=actions"))
    book = load_workbook(io.BytesIO(fetch_text(browser, "/export/register.xlsx").encode("latin-1")))
    seen.append(" ".join(str(c.value) for ws in book.worksheets for r in ws.iter_rows() for c in r))
    for text in seen:
        for secret in SECRET_ITEMS:
            assert secret not in text
    for path in ("/decisions/SB-2026-032", "/decisions/BC-2026-010", "/actions/TP-003"):
        open_page(browser, site, path)
        assert "TP-003" not in text_of(browser) and "Exempt" not in text_of(browser)
        assert_accessible(browser)


def test_secretariat_records_attendance_and_the_chart_changes(browser: Any, site: Site) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    sign_in(browser, site, "ceri-morgan", "slack")
    open_page(browser, site, "/attendance?year=2026")
    torfaen = browser.find_element(By.CSS_SELECTOR, 'g[data-partner="torfaen"] rect')
    assert torfaen.get_attribute("width") == "0"
    assert_accessible(browser)

    open_page(browser, site, f"/meetings/{site.seed.meetings[0].id}")
    assert_accessible(browser)
    Select(browser.find_element(By.ID, "partner-torfaen")).select_by_value("present")
    Select(browser.find_element(By.ID, "partner-newport")).select_by_value("apologies")
    click_through(browser, By.CSS_SELECTOR, "form[action$='/attendance'] button")
    assert browser.current_url == f"{site.base}/meetings/{site.seed.meetings[0].id}"
    chosen = Select(browser.find_element(By.ID, "partner-torfaen")).first_selected_option
    assert chosen.get_attribute("value") == "present"

    open_page(browser, site, "/attendance?year=2026")
    torfaen = browser.find_element(By.CSS_SELECTOR, 'g[data-partner="torfaen"]')
    assert torfaen.find_element(By.TAG_NAME, "rect").get_attribute("width") == "400"
    assert "100% (1/1)" in torfaen.text
    newport = browser.find_element(By.CSS_SELECTOR, 'g[data-partner="newport"]')
    assert "0% (0/1)" in newport.text
    assert_accessible(browser)

    # The secretariat's other forms and pages pass axe too.
    for path in ("/decisions/new", "/actions/TP-001", "/meetings", "/calendars"):
        open_page(browser, site, path)
        assert_accessible(browser)
