"""The job page in a site's own Templetor layout, live views inside the site's pages,
and the words in the reader's language, in a real headless Chromium: examples/site/app.py
(through tests/site_app.py, which adds a page linking a stylesheet from another origin)."""
import http.server
import json
import shutil
import sys
import threading
import urllib.error
import urllib.request

import pytest

from conftest import wait_for
from servers import ROOT, Server, free_port, get
from test_browser import chromium, screenshot, text_of

pytestmark = pytest.mark.stores("memory")  # the server process has its own store

SITE_BLUE = "rgb(42, 77, 105)"  # examples/site/site.css: the site's buttons
BUTTON_BACKGROUND = "return getComputedStyle(document.querySelector(arguments[0])).backgroundColor"
HEADER_BORDER = ("var h = document.querySelector('.site-header');"
                 "return h ? getComputedStyle(h).borderTopWidth : null")


class _ForeignCSS(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b".site-header{border-top:9px solid rgb(1, 2, 3)}"
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def foreign():
    """A stylesheet served from another origin (another port of 127.0.0.1)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _ForeignCSS)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d/evil.css" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def site(foreign):
    port = free_port()
    with Server([sys.executable, "tests/site_app.py", "127.0.0.1:%d" % port], port, cwd=ROOT,
                env={"EXAMPLE_DELAY": "0.05", "FOREIGN_CSS": foreign, "PYTHONPATH": ROOT}) as server:
        yield server


def report_of(site, rows):
    """The report page's URL with two exports of ``rows`` and ``2 * rows`` rows started."""
    request = urllib.request.Request(site.url + "/report?rows=%d" % rows, method="POST", data=b"")
    opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,),
                                              {"redirect_request": lambda *a, **k: None}))
    try:
        opener.open(request, timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code == 303, e.code
        return e.headers["Location"]
    raise AssertionError("no redirect")


def test_the_job_page_in_the_sites_layout_has_the_sites_look_and_updates_live(site, browser):
    browser.get(site.url + "/export?rows=400")
    assert "_t=" in browser.current_url
    browser.execute_script("window.__same_page = 42")
    wait_for(lambda: "row 3 of 400" in text_of(browser, "output"), timeout=15)
    assert browser.title.endswith(" · Example Site")
    assert browser.execute_script("return document.querySelector('.site-header .brand').textContent") == \
        "Example Site"
    # the site's stylesheet styles the package's own button, and the site's font is the page's
    assert browser.execute_script(BUTTON_BACKGROUND, "#cancel button") == SITE_BLUE
    assert "Georgia" in browser.execute_script("return getComputedStyle(document.getElementById('job')).fontFamily")
    wait_for(lambda: "row 30 of 400" in text_of(browser, "output"), timeout=15)
    assert browser.execute_script("return window.__same_page") == 42  # updated live, never reloaded
    assert text_of(browser, "status") == "running"
    screenshot(browser, "site-layout")


def test_cancel_works_from_the_page_in_the_layout(site, browser):
    from selenium.webdriver.common.by import By
    browser.get(site.url + "/export?rows=400")
    wait_for(lambda: "row 2 of 400" in text_of(browser, "output"), timeout=15)
    browser.find_element(By.CSS_SELECTOR, "#cancel button").click()
    wait_for(lambda: text_of(browser, "status") == "cancelled", timeout=15)
    assert json.loads(get(browser.current_url + "&_format=json")[2])["status"] == "cancelled"
    assert not browser.find_element(By.ID, "cancel").is_displayed()


def test_two_live_views_on_one_page_update_and_cancel_side_by_side(site, browser):
    from selenium.webdriver.common.by import By
    browser.get(report_of(site, 200))
    browser.execute_script("window.__same_page = 42")
    wait_for(lambda: "row 3 of 200" in text_of(browser, "wb1-output"), timeout=15)
    wait_for(lambda: "row 3 of 400" in text_of(browser, "wb2-output"), timeout=15)
    assert browser.execute_script(BUTTON_BACKGROUND, "#wb2-cancel button") == SITE_BLUE
    browser.find_element(By.CSS_SELECTOR, "#wb1-cancel button").click()
    wait_for(lambda: text_of(browser, "wb1-status") == "cancelled", timeout=15)
    lines = text_of(browser, "wb2-output").count("\n")
    wait_for(lambda: text_of(browser, "wb2-output").count("\n") > lines + 5, timeout=15)  # the other goes on
    assert text_of(browser, "wb2-status") == "running" and text_of(browser, "wb1-status") == "cancelled"
    assert browser.execute_script("return window.__same_page") == 42
    screenshot(browser, "two-live-views")


def test_the_words_are_chinese_with_accept_language_zh_cn(site):
    from selenium.webdriver.common.by import By
    driver = chromium(languages="zh-CN,zh")
    try:
        driver.get(site.url + "/export?rows=400")
        wait_for(lambda: "row 2 of 400" in text_of(driver, "output"), timeout=15)
        assert text_of(driver, "status") == "运行中"
        assert "状态：" in text_of(driver, "job") and "已用时间：" in text_of(driver, "job")
        assert text_of(driver, "elapsed").endswith(" 秒")
        button = driver.find_element(By.CSS_SELECTOR, "#cancel button")
        assert button.text == "取消"
        button.click()
        wait_for(lambda: text_of(driver, "status") == "已取消", timeout=15)  # the live words too
        screenshot(driver, "chinese")
    finally:
        driver.quit()
        shutil.rmtree(driver._wb_profile, ignore_errors=True)


def test_the_words_are_english_otherwise(site):
    from selenium.webdriver.common.by import By
    driver = chromium(languages="fr-FR,fr")
    try:
        driver.get(site.url + "/export?rows=400")
        wait_for(lambda: "row 2 of 400" in text_of(driver, "output"), timeout=15)
        assert text_of(driver, "status") == "running" and "Status:" in text_of(driver, "job")
        assert driver.find_element(By.CSS_SELECTOR, "#cancel button").text == "Cancel"
        assert "运行" not in text_of(driver, "job")
    finally:
        driver.quit()
        shutil.rmtree(driver._wb_profile, ignore_errors=True)


def test_the_csp_refuses_a_stylesheet_from_another_origin(site, browser):
    browser.get(site.url + "/foreign-plain")  # a page of the site without the package's CSP: it applies
    wait_for(lambda: browser.execute_script(HEADER_BORDER) == "9px", timeout=10)
    browser.get(site.url + "/foreign")
    assert "_t=" in browser.current_url
    wait_for(lambda: browser.execute_script("return document.readyState") == "complete", timeout=10)
    wait_for(lambda: text_of(browser, "status") in ("running", "done"), timeout=15)
    assert browser.execute_script(HEADER_BORDER) == "0px"  # refused: not from the site itself
    assert browser.execute_script(BUTTON_BACKGROUND, "button") == SITE_BLUE  # the site's own still applies


def test_without_javascript_the_page_in_the_layout_refreshes_until_the_job_ends(site):
    driver = chromium(javascript=False)
    try:
        driver.get(site.url + "/export?rows=30")
        assert "_t=" in driver.current_url
        wait_for(lambda: text_of(driver, "status") == "done", timeout=30)  # moved on by the refresh alone
        assert "row 30 of 30" in text_of(driver, "output")
        assert driver.execute_script("return document.querySelector('.site-header') !== null")
    finally:
        driver.quit()
        shutil.rmtree(driver._wb_profile, ignore_errors=True)
