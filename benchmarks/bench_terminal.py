"""terminal: the page's screen model. The server's render (``terminal.render``
then ``html()``) of 1 MB of cursor-heavy output vs pyte, a terminal emulator in
Python, only fed the same text; and in headless Chromium, 5,000 tqdm updates
drawn live one at a time (``webBackgroundView.feed``: the model, then the rows
that changed, a layout each) vs the cheapest redraw there is (the bar's text
put in one element's ``textContent``)."""

import io
import json
import os
import shutil
import tempfile
import time

from _harness import ROOT, Row, alternate, fmt_time, ratio_row, tests_on_path

from web_background.terminal import render


def cursor_heavy(size=1_000_000):
    """About ``size`` characters as tqdm (nested), rich, pip, apt and docker draw them."""
    parts, n, i = [], 0, 0
    while n < size:
        block = "".join([
            "\r outer %3d%%|%s%s| %d/999\n" % (i % 100, "█" * (i % 40), " " * (40 - i % 40), i),
            "\r inner %3d%%|%s| \x1b[A" % (i % 100, "#" * (i % 30)),
            "\r\x1b[2K   \x1b[38;5;197m%s\x1b[0m %3d/100 kB eta 0:00:%02d" % ("━" * (i % 20), i % 100, i % 60),
            "\x1b7\x1b[40;0f\x1b[42m\x1b[30mProgress: [%3d%%]\x1b[49m\x1b[39m\x1b8" % (i % 100),
            "\x1b[3A\x1b[2K\rlayer%d: Extracting\x1b[3B\r\x1b[1G\x1b[K" % i,
            "line %d \x1b[1mbold\x1b[0m \x1b[7mreverse\x1b[27m\n" % i,
        ])
        parts.append(block)
        n += len(block)
        i += 1
    return "".join(parts)[:size]


def tqdm_updates(count=5000):
    """The writes of a tqdm bar of ``count`` updates, one a write."""
    from tqdm import tqdm

    writes = []

    class Sink(io.StringIO):
        def write(self, s):
            writes.append(s)
            return len(s)

    for _ in tqdm(range(count), file=Sink(), mininterval=0, miniters=1, ncols=100):
        pass
    return writes


DRAW = """
var updates = arguments[0], state = arguments[1], mode = arguments[2];
var out = document.getElementById('output');
out.innerHTML = '<span class="ln"></span>';
var view = new window.webBackgroundView(out, {lines: 2000, hidden: 0, state: state});
var el = out.firstElementChild, started = performance.now();
for (var i = 0; i < updates.length; i++) {
  if (mode === 'view') { view.feed(updates[i]); }
  else { el.textContent = updates[i].slice(updates[i].lastIndexOf('\\r') + 1); void out.scrollHeight; }
}
return (performance.now() - started) / updates.length / 1000;
"""


def _page(directory):
    script = ""
    for name in ("terminal.js", "terminal_view.js"):
        with open(os.path.join(ROOT, "web_background", "static", name), encoding="utf-8") as f:
            script += f.read()
    path = os.path.join(directory, "page.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write('<!DOCTYPE html><html><body><pre id="output"></pre><script>%s</script></body></html>' % script)
    return "file://" + path


def run(ctx):
    import pyte

    rows = []
    text = cursor_heavy()
    rounds = 3 * ctx.scale

    def ours():
        started = time.perf_counter()
        render(text).html()
        return time.perf_counter() - started

    def theirs():
        started = time.perf_counter()
        pyte.Stream(pyte.Screen(1000, 100)).feed(text)
        return time.perf_counter() - started

    a, b = alternate(rounds, ours, theirs)
    ctx.notes.append("terminal: 1,000,000 characters of cursor-heavy output, %d rounds each; best %s (render + "
                     "html) vs %s (pyte.Stream.feed into a 1000x100 Screen)" % (rounds, fmt_time(min(a)),
                                                                                  fmt_time(min(b))))
    rows.append(Row("terminal render", *ratio_row("server render of 1 MB of cursor-heavy output vs pyte fed it",
                                                  min(a), min(b), "<=", 0.5)))

    tests_on_path()
    from test_browser import chromium
    from web_background.terminal import Terminal

    updates = tqdm_updates()
    directory = tempfile.mkdtemp(prefix="wb-bench-terminal-")
    driver = chromium()
    try:
        driver.get(_page(directory))
        state = json.loads(json.dumps(Terminal().state()))
        view, plain = alternate(rounds, lambda: driver.execute_script(DRAW, updates, state, "view"),
                                lambda: driver.execute_script(DRAW, updates, state, "plain"))
    finally:
        driver.quit()
        shutil.rmtree(driver._wb_profile, ignore_errors=True)
        shutil.rmtree(directory, ignore_errors=True)
    ctx.notes.append("terminal: %d tqdm updates drawn one at a time in headless Chromium, %d rounds each; best %s "
                     "per update (webBackgroundView.feed) vs %s (textContent of one element), both with a layout "
                     "per update" % (len(updates), rounds, fmt_time(min(view)), fmt_time(min(plain))))
    rows.append(Row("terminal live", *ratio_row("5,000 tqdm updates: page redraw time per update (live) vs "
                                                "textContent", min(view), min(plain), "<=", 3.0)))
    return rows
