"""The job page in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium)."""
import os
import shutil
import tempfile
import time

import pytest

from conftest import needs, wait_for
from servers import ROOT, apps_server, free_port, get

pytestmark = pytest.mark.stores("memory")  # the server process has its own store
ARTIFACTS = os.path.join(ROOT, "artifacts")


def chromium(javascript=True):
    try:
        from selenium import webdriver
    except ImportError as e:
        needs("selenium", e)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        needs("chromium and chromedriver", "apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    profile = tempfile.mkdtemp(prefix="wb-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=900,900", "--user-data-dir=" + profile):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(20)
    driver._wb_profile = profile
    return driver


@pytest.fixture(scope="module")
def server():
    with apps_server(free_port()) as s:
        yield s


@pytest.fixture
def browser():
    driver = chromium()
    yield driver
    driver.quit()
    shutil.rmtree(driver._wb_profile, ignore_errors=True)


def screenshot(driver, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    driver.save_screenshot(os.path.join(ARTIFACTS, name + ".png"))


def _read(driver, script, *args, default=""):
    """Run a read-only script on the page; ``default`` while the page is between
    two loads (a page that refreshes itself can replace any element, or the whole
    document, between finding it and reading it: Chromium then reports a stale
    element, a node that "does not belong to the document" or a script run on a
    page that is going away)."""
    from selenium.common.exceptions import WebDriverException
    try:
        value = driver.execute_script(script, *args)
    except WebDriverException:
        return default
    return default if value is None else value


def text_of(driver, element_id):
    """The element's rendered text, or "" while the page is between two loads.

    Read in one script run, so that finding the element and reading it cannot
    straddle a reload."""
    return _read(driver, "var e = document.getElementById(arguments[0]); return e ? e.innerText : null;",
                 element_id)


def source_has(driver, fragment):
    """Whether the current document's HTML holds ``fragment`` (None between two loads)."""
    return _read(driver, "return document.documentElement.outerHTML.indexOf(arguments[0]) >= 0;", fragment,
                 default=None)


def test_lines_appear_and_the_progress_bar_advances_without_a_reload(server, browser):
    from selenium.webdriver.common.by import By
    browser.get(server.url + "/ticker")
    assert "_t=" in browser.current_url
    browser.execute_script("window.__same_page = 42")
    wait_for(lambda: "tick 3" in text_of(browser, "output"), timeout=15)
    first_value = float(browser.find_element(By.ID, "bar").get_property("value"))
    wait_for(lambda: "tick 20" in text_of(browser, "output"), timeout=15)
    assert float(browser.find_element(By.ID, "bar").get_property("value")) > first_value
    assert "tick" in text_of(browser, "message")
    assert browser.execute_script("return window.__same_page") == 42  # never reloaded
    assert text_of(browser, "status") == "running"
    screenshot(browser, "live-page")


def test_cancel_turns_the_status_to_cancelled_and_stops_the_job(server, browser):
    import json
    from selenium.webdriver.common.by import By
    browser.get(server.url + "/ticker")
    wait_for(lambda: "tick 2" in text_of(browser, "output"), timeout=15)
    browser.find_element(By.CSS_SELECTOR, "#cancel button").click()
    wait_for(lambda: text_of(browser, "status") == "cancelled", timeout=15)
    job_url = browser.current_url
    reply = json.loads(get(job_url + "&_format=json")[2])
    assert reply["status"] == "cancelled"
    lines = reply["output"].count("\n")
    time.sleep(0.3)  # a stopped job writes nothing more
    assert json.loads(get(job_url + "&_format=json")[2])["output"].count("\n") == lines < 400
    assert not browser.find_element(By.ID, "cancel").is_displayed()
    screenshot(browser, "cancelled")


def test_without_javascript_the_page_refreshes_until_the_job_ends(server):
    driver = chromium(javascript=False)
    try:
        driver.get(server.url + "/mine?lines=40&delay=0.1")
        assert "_t=" in driver.current_url
        # the status and the <noscript> refresh, read from one and the same document
        first = []
        wait_for(lambda: first.append(_read(driver, "var s = document.getElementById('status');"
                                                    "return s ? [s.innerText, document.documentElement.outerHTML"
                                                    ".indexOf('http-equiv') >= 0] : null;", default=None))
                 or first[-1] is not None, timeout=10)
        status, refreshing = first[-1]
        assert status in ("queued", "running") and refreshing  # the <noscript> refresh is live
        # nothing but the page's own refresh moves it on from here
        wait_for(lambda: text_of(driver, "status") == "done", timeout=30)
        assert "tick 39" in text_of(driver, "output")
        # and it stops refreshing once the job has ended (read again if a load was under way)
        wait_for(lambda: source_has(driver, "http-equiv") is False, timeout=5)
        screenshot(driver, "no-javascript")
    finally:
        driver.quit()
        shutil.rmtree(driver._wb_profile, ignore_errors=True)


def test_hostile_output_renders_as_text_and_runs_no_script(server, browser):
    browser.get(server.url + "/hostile")
    wait_for(lambda: text_of(browser, "status") == "done", timeout=15)
    output = text_of(browser, "output")
    assert "<script>window.pwned = 1</script></pre><img src=x onerror=\"window.pwned=2\">'\"&amp;" in output
    assert "red link done" in output and "\x1b" not in output
    assert browser.execute_script("return window.pwned === undefined")
    browser.refresh()  # the server-rendered page too, not only the live one
    wait_for(lambda: text_of(browser, "status") == "done", timeout=15)
    assert browser.execute_script("return window.pwned === undefined")
    assert "<script>window.pwned = 1</script>" in text_of(browser, "output")
    screenshot(browser, "hostile-output")


def test_the_output_follows_new_lines_unless_the_reader_scrolled_up(server, browser):
    browser.get(server.url + "/mine?lines=400&delay=0.02")
    at_bottom = "var o = document.getElementById('output'); return o.scrollHeight - o.scrollTop - o.clientHeight < 24"
    wait_for(lambda: browser.execute_script("var o = document.getElementById('output');"
                                            "return o.scrollHeight > o.clientHeight + 200"), timeout=20)
    wait_for(lambda: browser.execute_script(at_bottom), timeout=5)  # following the newest output
    browser.execute_script("document.getElementById('output').scrollTop = 0")
    lines = text_of(browser, "output").count("\n")
    wait_for(lambda: text_of(browser, "output").count("\n") > lines + 20, timeout=20)
    assert browser.execute_script("return document.getElementById('output').scrollTop") == 0  # left where it was
    browser.execute_script("var o = document.getElementById('output'); o.scrollTop = o.scrollHeight")
    lines = text_of(browser, "output").count("\n")
    wait_for(lambda: text_of(browser, "output").count("\n") > lines + 20, timeout=20)
    assert browser.execute_script(at_bottom)  # and follows again once back at the bottom
