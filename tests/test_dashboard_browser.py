"""The jobs dashboard in a real headless Chromium: live updates, filters, actions, access, hostile jobs."""
import json
import sys
import uuid
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from conftest import wait_for
from dashboard_app import HOSTILE
from servers import ROOT, Server, free_port, get
from test_browser import _read, screenshot

pytestmark = pytest.mark.stores("memory")  # the server process has its own store

ROW_CELL = """
var row = document.querySelector('#rows tr[data-id="' + arguments[0] + '"]');
return row ? row.querySelector('td.' + arguments[1]).textContent : '(no row)';
"""
ROW_IDS = "return Array.from(document.querySelectorAll('#rows tr'), function (r) { return r.dataset.id; });"


@pytest.fixture(scope="module")
def server():
    port = free_port()
    argv = [sys.executable, "tests/dashboard_app.py", "127.0.0.1:%d" % port]
    with Server(argv, port, env={"PYTHONPATH": ROOT}) as s:
        yield s


@pytest.fixture
def gate(server):
    """A fresh gate name for this test's waiting jobs; opened at its end."""
    name = uuid.uuid4().hex
    yield name
    get(server.url + "/open?name=" + name)


def start(server, kind, gate="", text="", headers=None, path="/start"):
    """Start a job through the app; its id."""
    status, reply_headers, _ = get("%s%s?kind=%s&gate=%s&text=%s" % (server.url, path, kind, gate, quote(text)),
                                   headers=headers)
    assert status == 303, status
    return parse_qs(urlsplit(reply_headers["Location"]).query)["_t"][0]


def state(server, job_id):
    return json.loads(get("%s/jobs/job?_t=%s&_format=json" % (server.url, job_id))[2])


def cell(browser, job_id, name):
    return _read(browser, ROW_CELL, job_id, name, default="(no row)")


def row_ids(browser):
    return _read(browser, ROW_IDS, default=[])


def open_dashboard(browser, server, path="/jobs/"):
    browser.get(server.url + path)
    wait_for(lambda: _read(browser, "return !!document.getElementById('dashboard')", default=False), timeout=15)
    browser.execute_script("window.__same_page = 42")


def never_reloaded(browser):
    return _read(browser, "return window.__same_page", default=None) == 42


def click(browser, job_id, action):
    from selenium.webdriver.common.by import By
    browser.find_element(By.CSS_SELECTOR, '#rows tr[data-id="%s"] button.%s' % (job_id, action)).click()


def test_a_job_started_after_the_page_loaded_appears_without_a_reload(server, browser, gate):
    open_dashboard(browser, server)
    job_id = start(server, "waiter", gate)
    wait_for(lambda: cell(browser, job_id, "status") == "running", timeout=15)
    assert row_ids(browser)[0] == job_id  # newest first
    assert cell(browser, job_id, "name") == "waiter"
    assert never_reloaded(browser)
    screenshot(browser, "dashboard")


def test_a_running_jobs_progress_and_status_change_without_a_reload(server, browser, gate):
    job_id = start(server, "waiter", gate)
    open_dashboard(browser, server)
    wait_for(lambda: cell(browser, job_id, "progress") == "1/3 step 1 of 3", timeout=15)
    assert cell(browser, job_id, "status") == "running"
    assert cell(browser, job_id, "last") == "waiting on " + gate
    bar = '#rows tr[data-id="%s"] progress' % job_id
    assert _read(browser, "return document.querySelector(arguments[0]).value", bar) == 1
    get(server.url + "/open?name=" + gate)
    wait_for(lambda: cell(browser, job_id, "status") == "done", timeout=15)
    wait_for(lambda: cell(browser, job_id, "progress") == "3/3 all done", timeout=5)
    assert cell(browser, job_id, "last") == "opened " + gate
    assert _read(browser, "return document.querySelector(arguments[0]).value", bar) == 3
    assert never_reloaded(browser)


def test_the_filters_show_only_matching_jobs(server, browser, gate):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    running = start(server, "waiter", gate)
    failed = start(server, "fails", gate)
    open_dashboard(browser, server, "/jobs/?status=failed")
    wait_for(lambda: cell(browser, failed, "status") == "failed", timeout=15)
    later = start(server, "fails", gate)  # the live list keeps to the filter
    wait_for(lambda: cell(browser, later, "status") == "failed", timeout=15)
    assert running not in row_ids(browser) and never_reloaded(browser)
    Select(browser.find_element(By.NAME, "status")).select_by_value("running")
    browser.find_element(By.NAME, "name").send_keys("WAIT")
    browser.find_element(By.CSS_SELECTOR, "#filter button").click()
    wait_for(lambda: "status=running" in browser.current_url and cell(browser, running, "status") == "running",
             timeout=15)
    assert failed not in row_ids(browser) and later not in row_ids(browser)
    assert "name=WAIT" in browser.current_url


def test_cancel_from_the_dashboard_stops_a_running_job(server, browser, gate):
    job_id = start(server, "waiter", gate)
    open_dashboard(browser, server)
    wait_for(lambda: cell(browser, job_id, "status") == "running", timeout=15)
    click(browser, job_id, "cancel")
    wait_for(lambda: cell(browser, job_id, "status") == "cancelled", timeout=15)
    assert state(server, job_id)["status"] == "cancelled"
    wait_for(lambda: cell(browser, job_id, "actions") == "Retry", timeout=5)  # an ended job: no more Cancel
    assert never_reloaded(browser)


def test_retry_of_a_failed_job_adds_a_new_row(server, browser, gate):
    failed = start(server, "fails", gate)
    open_dashboard(browser, server)
    wait_for(lambda: cell(browser, failed, "status") == "failed", timeout=15)
    before = set(row_ids(browser))
    click(browser, failed, "retry")
    wait_for(lambda: row_ids(browser) and row_ids(browser)[0] not in before, timeout=15)
    new = row_ids(browser)[0]
    wait_for(lambda: cell(browser, new, "status") == "failed", timeout=15)
    assert cell(browser, new, "name") == "fails" and cell(browser, new, "last") == "about to fail " + gate
    assert cell(browser, failed, "status") == "failed"  # the old one stays, as it was
    assert never_reloaded(browser)


def test_purge_removes_finished_jobs_from_the_list(server, browser, gate):
    from selenium.webdriver.common.by import By
    running = start(server, "waiter", gate)
    done, failed = start(server, "quick", "1"), start(server, "fails", gate)
    open_dashboard(browser, server)
    wait_for(lambda: cell(browser, done, "status") == "done" and cell(browser, failed, "status") == "failed",
             timeout=15)
    browser.find_element(By.CSS_SELECTOR, "#purge button").click()
    wait_for(lambda: done not in row_ids(browser) and failed not in row_ids(browser), timeout=15)
    assert cell(browser, running, "status") == "running"
    assert get("%s/jobs/job?_t=%s" % (server.url, done))[0] == 404
    assert never_reloaded(browser)


def test_a_jobs_name_links_to_its_live_page_under_the_prefix_whose_cancel_works(server, browser, gate):
    from selenium.webdriver.common.by import By
    job_id = start(server, "waiter", gate)
    open_dashboard(browser, server)
    browser.find_element(By.CSS_SELECTOR, '#rows tr[data-id="%s"] td.name a' % job_id).click()
    wait_for(lambda: _read(browser, "var s = document.getElementById('status'); return s && s.textContent")
             == "running", timeout=15)
    assert urlsplit(browser.current_url).path == "/jobs/job"
    assert "waiting on " + gate in _read(browser, "return document.getElementById('output').textContent")
    browser.find_element(By.CSS_SELECTOR, "#cancel button").click()  # posted by the job page's own script
    wait_for(lambda: state(server, job_id)["status"] == "cancelled", timeout=15)
    wait_for(lambda: _read(browser, "return document.getElementById('status').textContent") == "cancelled",
             timeout=15)


def test_a_disallowed_request_gets_a_403_page(server, browser):
    assert get(server.url + "/admin/")[0] == 403
    browser.get(server.url + "/admin/")
    assert _read(browser, "return document.body.innerText").startswith("Forbidden")
    assert _read(browser, "return document.getElementById('dashboard') === null", default=None) is True
    browser.add_cookie({"name": "role", "value": "admin"})
    open_dashboard(browser, server, "/admin/")  # the same browser, now allowed


HARMLESS = """
return {pwned: window.pwned === undefined ? null : window.pwned,
        made: document.querySelectorAll('#rows img, #rows script, main script').length};
"""


def check_harmless(browser, job_id, owned_id):
    got = _read(browser, HARMLESS, default={})
    assert got == {"pwned": None, "made": 0}, got  # no script ran, no element was made from a job's text
    assert cell(browser, job_id, "name") == "hostile" + HOSTILE
    assert cell(browser, job_id, "last") == "the output: " + HOSTILE
    assert cell(browser, job_id, "progress") == "1/2 the message: " + HOSTILE
    assert cell(browser, owned_id, "owner") == HOSTILE


def test_a_hostile_name_argument_output_and_progress_run_no_script(server, browser, gate):
    open_dashboard(browser, server)
    job_id = start(server, "hostile", text=HOSTILE)  # its name, its argument: printed and its progress message
    owned_id = start(server, "waiter", gate, headers={"X-User": HOSTILE}, path="/mystart")
    wait_for(lambda: cell(browser, job_id, "status") == "done" and cell(browser, owned_id, "owner") == HOSTILE,
             timeout=15)
    check_harmless(browser, job_id, owned_id)  # rendered live by the script
    assert never_reloaded(browser)
    browser.refresh()  # and by the server
    wait_for(lambda: cell(browser, job_id, "status") == "done", timeout=15)
    check_harmless(browser, job_id, owned_id)
