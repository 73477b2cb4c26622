"""The web page in a real headless browser: Debian's Chromium driven by Selenium through the
system ChromeDriver, against the real server of the serving tests (tiny real model, Milvus Lite,
Feast, a GTO registry). Screenshots of both views at 1280x800 and at phone width are written to
``reports/screenshots/`` (git-ignored) for people to look at."""
from __future__ import annotations

import json
import shutil
from urllib.parse import urlparse

import pytest

from tests.conftest import ROOT
from tests.integration.serving_support import KEY

SHOTS = ROOT / "reports" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="Debian's chromium + chromium-driver not installed (`make install-browser`)")


def _browser(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}",
              "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    d.set_window_size(width, height)
    return d


@pytest.fixture
def page(server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    drivers = []

    def open_page(width: int = 1280, height: int = 800):
        d = _browser(width, height)
        drivers.append(d)
        d.get(server["url"] + "/ui/")
        box = d.find_element("id", "apikey")
        box.send_keys(KEY)
        d.execute_script("arguments[0].dispatchEvent(new Event('change'))", box)
        return d

    yield open_page
    for d in drivers:
        d.quit()


def _wait(d, cond, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(d, timeout, poll_frequency=0.2).until(lambda _: cond())


def _recs(d) -> list[tuple[str, str]]:
    """(title, reason) of every recommendation shown (read in one go: the list re-renders)."""
    rows = d.execute_script("return [...document.querySelectorAll('#recs li.rec')].map("
                            "li => [li.querySelector('.title').textContent, li.querySelector('.reason').textContent])")
    return [tuple(r) for r in rows]


def _requested_hosts(d) -> set[str]:
    hosts = set()
    for entry in d.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            u = urlparse(msg["params"]["request"]["url"])
            if u.scheme in ("http", "https", "ws", "wss"):
                hosts.add(u.netloc)
    return hosts


def test_three_clicked_items_change_the_recommendations(page, server):
    d = page()
    _wait(d, lambda: len(_recs(d)) > 0 and len(d.find_elements("css selector", "#results li")) > 0)
    assert d.find_element("id", "error").text == ""
    before = _recs(d)
    assert "brand-new shopper" in d.find_element("id", "strategy").text  # the empty state says what to do
    search = d.find_element("id", "search")
    search.send_keys("item\n")  # keyboard: Enter submits the search
    _wait(d, lambda: "match" in d.find_element("id", "search-note").text)
    for n in range(3):
        buttons = d.find_elements("css selector", "#results button.add")
        buttons[n].click()
        _wait(d, lambda n=n: len(d.find_elements("css selector", "#visit .chip")) == n + 1)
    _wait(d, lambda: "cold start items" in d.find_element("id", "strategy").text and _recs(d) != before)
    after = _recs(d)
    assert after and after != before
    assert all(reason.strip() and reason != "—" for _, reason in after), after
    profile = d.find_element("id", "profile").text
    assert profile.strip() and "Nothing yet" not in profile
    d.save_screenshot(str(SHOTS / "try-items-1280x800.png"))
    # the page asked nothing but the service itself
    assert _requested_hosts(d) == {urlparse(server["url"]).netloc}


def test_a_query_alone_changes_the_recommendations(page, server):
    d = page()
    _wait(d, lambda: len(_recs(d)) > 0)
    before = _recs(d)
    q = d.find_element("id", "query")
    q.send_keys("garden\n")
    _wait(d, lambda: "query" in d.find_element("id", "strategy").text and _recs(d) != before)
    after = _recs(d)
    assert after and all(reason.strip() and reason != "—" for _, reason in after), after
    d.execute_script("window.scrollTo(0, 0)")  # typing scrolled to the query box; the answer is at the top
    d.save_screenshot(str(SHOTS / "try-query-1280x800.png"))
    assert _requested_hosts(d) == {urlparse(server["url"]).netloc}


def test_model_versions_view_and_phone_width(page, server):
    d = page(390, 844)
    _wait(d, lambda: len(_recs(d)) > 0)
    # readable at phone width: nothing wider than the window
    assert d.execute_script("return document.documentElement.scrollWidth") <= 390 + 1
    d.save_screenshot(str(SHOTS / "try-phone-390x844.png"))
    tab = d.find_element("id", "tab-try")
    tab.send_keys("\ue014")  # ArrowRight: tabs are keyboard-usable
    _wait(d, lambda: d.find_element("id", "view-models").is_displayed()
          and len(d.find_elements("css selector", "#versions tr")) == 3)
    text = d.find_element("id", "versions").text
    assert "v0.0.1" in text and "v0.0.2" in text and "coldrec models promote v0.0.2 --dataset shop" in text
    assert "prod" in text and "mean cosine" in text
    d.save_screenshot(str(SHOTS / "models-phone-390x844.png"))
    wide = page()
    wide.find_element("id", "tab-models").click()
    _wait(wide, lambda: len(wide.find_elements("css selector", "#versions tr")) == 3)
    wide.save_screenshot(str(SHOTS / "models-1280x800.png"))


def test_api_errors_are_shown_as_messages(server):
    d = _browser(1280, 800)
    try:
        d.get(server["url"] + "/ui/")  # no key typed: the service answers 401
        _wait(d, lambda: "API key" in d.find_element("id", "error").text)
        assert d.find_element("id", "error").is_displayed()
    finally:
        d.quit()


def test_page_is_served_with_a_strict_content_security_policy(server):
    import urllib.request

    with urllib.request.urlopen(server["url"] + "/ui/", timeout=10) as r:
        assert r.status == 200 and "text/html" in r.headers["content-type"]
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp
        assert b"coldrec" in r.read()

