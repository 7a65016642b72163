"""The job page in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium)."""
import os
import random
import re
import shutil
import tempfile
import time
import uuid

import pytest

from conftest import needs, wait_for
from servers import ROOT, apps_server, free_port, get

pytestmark = pytest.mark.stores("memory")  # the server process has its own store
ARTIFACTS = os.path.join(ROOT, "artifacts")


def chromium(javascript=True, languages=None):
    """A headless Chromium; ``languages``: its Accept-Language (e.g. "zh-CN,zh")."""
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
    prefs = {}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    if languages:
        prefs["intl.accept_languages"] = languages
    if prefs:
        options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(20)
    driver._wb_profile = profile
    return driver


@pytest.fixture(scope="module")
def server():
    with apps_server(free_port()) as s:
        yield s




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


# -- output as a terminal shows it ------------------------------------------------------------


def gated(server, browser, path, ready=lambda text: "waiting" in text):
    """Open a page of a job held on a gate of its own; once the page shows it, open the
    gate, so that what the job writes next reaches the page live. Returns the page's marker."""
    gate = uuid.uuid4().hex
    browser.get("%s%s?gate=%s" % (server.url, path, gate))
    assert "_t=" in browser.current_url
    wait_for(lambda: ready(text_of(browser, "output")), timeout=15)
    browser.execute_script("window.__same_page = 42")
    assert get(server.url + "/open?name=" + gate)[0] == 200


def never_reloaded(browser):
    return _read(browser, "return window.__same_page", default=None) == 42


def output_html(browser):
    return _read(browser, "var o = document.getElementById('output'); return o ? o.innerHTML : null;")


def reloaded(browser):
    """The page loaded anew once its job has ended: the server's own rendering."""
    browser.refresh()
    wait_for(lambda: text_of(browser, "status") == "done", timeout=15)


def test_a_progress_bar_redrawn_with_carriage_returns_is_one_line_live_and_after_a_reload(server, browser):
    gated(server, browser, "/bar", ready=lambda text: "bar:" in text)
    seen = []
    wait_for(lambda: seen.append(text_of(browser, "output")) or text_of(browser, "status") == "done", timeout=20)
    expected = ["bar:", " 100%|##########| finished", "after the bar"]
    wait_for(lambda: text_of(browser, "output").splitlines() == expected, timeout=5)
    assert all(text.count("%|") <= 1 for text in seen)  # never two lines of the bar
    assert never_reloaded(browser)
    live = output_html(browser)
    reloaded(browser)
    assert text_of(browser, "output").splitlines() == expected
    assert output_html(browser) == live  # the same rendering, live and from the server
    screenshot(browser, "progress-bar")


COLOURS = """
var found = {}, spans = document.querySelectorAll('#output span:not(.ln)');
for (var i = 0; i < spans.length; i++) {
  var s = getComputedStyle(spans[i]);
  found[spans[i].textContent] = {color: s.color, background: s.backgroundColor, weight: s.fontWeight,
                                 decoration: s.textDecorationLine, classes: spans[i].className};
}
return {spans: found, styled: document.querySelectorAll('#output [style]').length};
"""


def rgb(css):
    return [int(v) for v in re.match(r"rgba?\((\d+), (\d+), (\d+)", css).groups()]


def check_colours(browser):
    got = _read(browser, COLOURS, default={"spans": {}})
    red, blue, green = got["spans"]["red"], got["spans"]["bold underlined blue"], got["spans"]["on green"]
    r, g, b = rgb(red["color"])
    assert r > 2 * g and r > 2 * b, red
    r, g, b = rgb(blue["color"])
    assert b > 2 * r and b > 2 * g, blue
    assert int(blue["weight"]) >= 700 and "underline" in blue["decoration"]
    r, g, b = rgb(green["background"])
    assert g > 2 * r and g > 2 * b, green
    assert got["styled"] == 0  # classes only, never a style attribute


def test_red_text_is_red_live_and_after_a_reload(server, browser):
    gated(server, browser, "/colours")
    wait_for(lambda: text_of(browser, "status") == "done", timeout=20)
    wait_for(lambda: "on green" in text_of(browser, "output"), timeout=5)
    assert never_reloaded(browser)
    check_colours(browser)
    assert text_of(browser, "output").splitlines() == ["waiting", "plain red plain", "bold underlined blue on green"]
    live = output_html(browser)
    reloaded(browser)
    check_colours(browser)
    assert output_html(browser) == live
    screenshot(browser, "colours")


HARMLESS = """
return {pwned: window.pwned === undefined ? null : window.pwned,
        inside: document.querySelectorAll('#output *:not(span)').length,
        links: Array.prototype.map.call(document.querySelectorAll('a'), function (a) { return a.href; }),
        title: document.title};
"""


def check_harmless(browser, server):
    got = _read(browser, HARMLESS, default={})
    assert got["pwned"] is None and got["inside"] == 0, got  # no script ran, no <a>, <img> or <script> made
    assert all(link.startswith(server.url + "/evil?_t=") and "_format=text" in link for link in got["links"]), got
    assert "title" not in got["title"]
    text = text_of(browser, "output")
    assert '<script>window.pwned = 1</script><img src=x onerror="window.pwned=2">' in text
    assert 'click <a href="http://evil/">a</a> end' in text and "\x1b" not in text


def test_hostile_output_runs_no_script_and_makes_no_link_live_and_after_a_reload(server, browser):
    gated(server, browser, "/evil")
    wait_for(lambda: text_of(browser, "status") == "done", timeout=20)
    wait_for(lambda: " end" in text_of(browser, "output"), timeout=5)
    assert never_reloaded(browser)
    check_harmless(browser, server)
    live = output_html(browser)
    reloaded(browser)
    check_harmless(browser, server)
    assert output_html(browser) == live


LINES_SHOWN = "return document.querySelectorAll('#output .ln').length"
LINES_AND_HIDDEN = "return [document.querySelectorAll('#output .ln').length, " \
                   "document.getElementById('hidden-count').textContent]"


def test_a_million_character_job_keeps_the_page_responsive_and_shows_only_the_newest_lines(server, browser):
    gated(server, browser, "/million", ready=lambda text: True)
    round_trips, shown = [], []

    def sample():
        started = time.monotonic()
        shown.append(_read(browser, LINES_AND_HIDDEN, default=[0, ""]))
        round_trips.append(time.monotonic() - started)
        return text_of(browser, "status") == "done"

    wait_for(sample, timeout=30)
    wait_for(lambda: "line 19999" in text_of(browser, "output"), timeout=10)
    assert len(set(hidden for _, hidden in shown)) >= 3  # measured while the output streamed in
    assert max(round_trips) < 2.0, max(round_trips)  # a script's round trip: the page never stalls
    assert max(lines for lines, _ in shown) <= 2000
    notice = "18,001 earlier lines not shown"
    assert text_of(browser, "hidden-count") == notice
    assert _read(browser, "return document.getElementById('hidden').hidden", default=None) is False
    lines = text_of(browser, "output").splitlines()
    assert len(lines) == 1999 and lines[0].startswith("line 18001 ") and lines[-1].startswith("line 19999 ")
    assert never_reloaded(browser)
    reloaded(browser)
    assert text_of(browser, "hidden-count") == notice
    assert _read(browser, LINES_SHOWN, default=0) == 2000
    assert text_of(browser, "output").splitlines() == lines
    screenshot(browser, "million")


RENDER_IN_PAGE = """
var T = window.webBackgroundTerminal;
return arguments[0].map(function (c) {
  var t = c[2] ? T.restore(c[2], c[1]) : new T(c[1], c[3], c[4]);
  c[0].forEach(function (piece) { t.feed(piece); });
  return [t.lines(), t.hiddenLines()];
});
"""


def test_the_live_view_renders_what_the_server_renders_whatever_the_pieces(server, browser):
    from test_terminal import PIECES
    from web_background.terminal import Terminal

    rng = random.Random(5)
    cases = [(["a\x1b[3", "1mred\x1b[0m\n"], 10), ([" 10%|#\r", " 20%|##"], 10),
             (["\x1b]8;;http://evil/\x1b", "\\click\x1b]8;;\x1b\\"], 10), (["x\n" * 50], 7),
             (["\x1b[38;2;%d;%d;%dm%d\n" % (i * 7 % 256, i * 13 % 256, i * 29 % 256, i) for i in range(60)], 100),
             (["1\n2\n3\n4\x1b[2;3r\x1b[3;1Hx\ny\nz\n\x1b[9A\x1b[1K\x1b7\x1b[4;2Hs\x1b8\x1b[7mr"], 10, None, 10, 4)]
    for _ in range(400):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40)))
        cuts = sorted(rng.randint(0, len(text)) for _ in range(rng.randint(0, 4)))
        width, height = rng.choice([(None, None), (10, 4), (8, 2), (12, 3)])
        cases.append(([text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])], rng.randint(1, 6), None,
                      width, height))
    for case in cases[-100:]:  # a fresh terminal restored where another stopped
        chunks, max_lines = case[:2]
        before = Terminal(max_lines, *case[3:5]).feed("".join(chunks))
        cases.append(([rng.choice(PIECES) + rng.choice(PIECES), rng.choice(PIECES)], max_lines, before.state()))
    browser.get(server.url + "/")
    wait_for(lambda: _read(browser, "return !!window.webBackgroundTerminal", default=False), timeout=15)
    got = browser.execute_script(RENDER_IN_PAGE, cases)
    assert len(got) == len(cases)
    for case, (lines, hidden) in zip(cases, got):
        chunks, max_lines = case[:2]
        if len(case) > 2 and case[2]:
            term = Terminal.restore(case[2], max_lines)
        else:
            term = Terminal(max_lines, *(case[3:5] if len(case) > 3 else ()))
        for piece in chunks:
            term.feed(piece)
        assert (lines, hidden) == ([[list(run) for run in line] for line in term.lines()], term.hidden), case


def test_behind_a_server_that_buffers_the_event_stream_the_page_falls_back_to_polling():
    with apps_server(free_port(), WB_BUFFER_EVENTS="1") as buffered:
        driver = chromium()
        try:
            driver.get(buffered.url + "/ticker")
            driver.execute_script("window.__same_page = 42")
            # the buffered stream would show nothing before its 15 s are up; polls show lines within seconds
            wait_for(lambda: "tick 80" in text_of(driver, "output"), timeout=10)
            assert text_of(driver, "status") == "running"
            lines = text_of(driver, "output").split()
            numbers = [int(n) for n in lines[1::2]]
            assert numbers == list(range(len(numbers)))  # every line once, in order
            assert driver.execute_script("return window.__same_page") == 42  # no reload
        finally:
            driver.quit()
            shutil.rmtree(driver._wb_profile, ignore_errors=True)


ROWS_IN_PAGE = """
return Array.prototype.map.call(document.querySelectorAll('#output .ln'), function (line) {
  return Array.prototype.map.call(line.childNodes, function (node) {
    return [node.nodeType === 3 ? '' : node.className, node.textContent];
  });
});
"""


def rows_in_page(browser):
    from screen_oracle import style_of, trimmed

    got = _read(browser, ROWS_IN_PAGE, default=[])
    return trimmed([[(ch, style_of(names)) for names, text in line for ch in text if ch != "\n"] for line in got])


def test_programs_that_draw_on_a_terminal_show_live_what_a_terminal_shows(server, browser):
    """Each producer of tests/screen_jobs.py as a thread and a process job, drawn live
    (its output arrives after the page opened), then rendered by the server on a reload:
    cell by cell what pyte shows when fed the same output."""
    import screen_jobs
    from screen_oracle import assert_same, pyte_rows
    from web_background.terminal import HEIGHT, WIDTH

    for name in sorted(screen_jobs.PRODUCERS):
        size = (120, 40) if name in screen_jobs.TTY_ONLY else (WIDTH, HEIGHT)
        for executor in ("threads", "processes"):
            gate = uuid.uuid4().hex
            browser.get("%s/screen?name=%s&executor=%s&gate=%s" % (server.url, name, executor, gate))
            assert "_t=" in browser.current_url
            wait_for(lambda: "waiting" in text_of(browser, "output"), timeout=15)
            browser.execute_script("window.__same_page = 42")
            open(screen_jobs.gate_path(gate), "w").close()
            try:
                wait_for(lambda: text_of(browser, "status") == "done", timeout=30)
                output = get(browser.current_url + "&_format=text")[2].decode("utf-8")
                oracle = pyte_rows(output, *size)
                wait_for(lambda: rows_in_page(browser) == oracle, timeout=5)
            except AssertionError:
                assert_same(rows_in_page(browser), oracle)  # says where they differ
                raise
            finally:
                os.remove(screen_jobs.gate_path(gate))
            assert never_reloaded(browser), (name, executor)
            reloaded(browser)
            assert_same(rows_in_page(browser), oracle)
