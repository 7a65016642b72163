"""The job page's first HTML (rendered by web_background/terminal.py), its script and
style (web_background/static/), and the whole output as a download."""
import json
import os
import re

import pytest

from web_background import background
from web_background.terminal import Terminal

import apps
from servers import ROOT

app = apps.app
pytestmark = pytest.mark.stores("memory")  # what the page shows does not depend on the store


def finished(*pieces):
    """A finished job that wrote ``pieces``."""
    @background
    def writes():
        for piece in pieces:
            print(piece, end="", flush=True)

    job = writes()
    assert job.wait(10) and job.status == "done"
    return job


def page_of(job, query=""):
    response = app.request("/?_t=%s%s" % (job.id, query))
    assert response.status == "200 OK", response.status
    return response.data.decode()


def output_of(page):
    """The inside of the page's <pre id="output">."""
    return re.search(r'<pre id="output">(.*?)</pre>', page, re.S).group(1)


def terminal_of(page):
    import html

    return json.loads(html.unescape(re.search(r'data-terminal="([^"]*)"', page).group(1)))


def test_colours_bold_italic_and_underline_become_spans_with_classes():
    job = finished("a \x1b[31mred\x1b[0m \x1b[1;3;4;38;5;196;48;5;21mall\x1b[0m \x1b[38;2;0;0;255mblue\x1b[0m\n")
    assert output_of(page_of(job)) == (
        '<span class="ln">a <span class="a-fg-1">red</span> '
        '<span class="a-fg-196 a-bg-21 a-b a-i a-u">all</span> <span class="a-fg-21">blue</span>\n</span>'
        '<span class="ln"></span>')


def test_the_page_has_no_style_attribute_and_its_css_has_every_colour_class():
    page = page_of(finished("\x1b[31mred\x1b[0m\n"))
    assert "style=" not in page
    assert ".a-fg-1{color:#cd3131}" in page and ".a-bg-255{background-color:#" in page


def test_a_progress_bar_redrawn_after_carriage_returns_is_one_line():
    bar = "".join("\r%4d%%|%-10s|" % (i * 10, "#" * i) for i in range(11))
    output = output_of(page_of(finished("bar:\n", bar, "\n")))
    assert output == ('<span class="ln">bar:\n</span><span class="ln"> 100%|##########|\n</span>'
                      '<span class="ln"></span>')


def test_other_escape_sequences_are_dropped_and_markup_is_text():
    job = finished("\x1b]0;title\x07\x1b[2J\x1b[1;1H<b>x</b>\x1b[K \x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\\n")
    output = output_of(page_of(job))
    assert output == '<span class="ln">&lt;b&gt;x&lt;/b&gt; click\n</span><span class="ln"></span>'


def test_text_and_json_keep_every_character_escapes_included():
    written = "\x1b[31mred\x1b[0m\r\b\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\\n"
    job = finished(written)
    assert app.request("/?_t=%s&_format=text" % job.id).data.decode() == written
    assert json.loads(app.request("/?_t=%s&_format=json" % job.id).data)["output"] == written


def test_a_big_output_shows_only_the_newest_lines_and_how_many_are_hidden():
    job = finished("".join("line %d\n" % i for i in range(3234)))
    page = page_of(job)
    output = output_of(page)
    assert output.count('<span class="ln">') == 2000
    assert output.startswith('<span class="ln">line 1235\n</span>') and "line 3233\n" in output
    assert '<p id="hidden"><span id="hidden-count">1,235 earlier lines not shown</span>' in page
    assert '<a href="?_t=%s&amp;_format=text">' % job.id in page
    assert '<a href="?_t=%s&amp;_format=text&amp;_download=1">' % job.id in page
    assert terminal_of(page)["hidden"] == 1235 and terminal_of(page)["lines"] == 2000


def test_a_small_output_hides_the_hidden_lines_notice():
    page = page_of(finished("one line\n"))
    assert '<p id="hidden" hidden>' in page
    assert terminal_of(page)["hidden"] == 0


def test_the_page_hands_its_script_where_to_go_on_from():
    page = page_of(finished("done line\nhalf \x1b[32mgreen\r\x1b[1mbo"))
    view = terminal_of(page)
    screen = Terminal().feed("done line\nhalf \x1b[32mgreen\r\x1b[1mbo")
    assert view["state"] == json.loads(json.dumps(screen.state()))
    assert view["state"]["rows"][-1] == [["a-fg-2 a-b", "bo"], ["", "lf "], ["a-fg-2", "green"]]
    assert output_of(page).endswith('<span class="ln"><span class="a-fg-2 a-b">bo</span>'
                                    'lf <span class="a-fg-2">green</span></span>')


def test_the_page_inlines_its_script_and_style_from_the_package_files():
    page = page_of(finished("x\n"))
    static = os.path.join(ROOT, "web_background", "static")
    with open(os.path.join(static, "terminal.js"), encoding="utf-8") as f:
        model = f.read()
    with open(os.path.join(static, "terminal_view.js"), encoding="utf-8") as f:
        model += f.read()
    with open(os.path.join(static, "job.js"), encoding="utf-8") as f:
        script = f.read()
    assert model + script in page  # the screen model and its view first, then the page's wiring
    assert "</script" not in model.lower()
    with open(os.path.join(static, "job.css"), encoding="utf-8") as f:
        style = f.read()
    assert script in page and style in page
    assert "</script" not in script.lower() and "</style" not in style.lower()
    assert "innerHTML" not in script  # output only ever reaches the page as text


def test_download_answers_the_whole_output_as_an_attachment_named_after_the_job():
    job = finished("\x1b[31mred\x1b[0m\n", "".join("line %d\n" % i for i in range(3000)))
    response = app.request("/?_t=%s&_format=text&_download=1" % job.id)
    assert response.status == "200 OK"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="finished._locals_.writes-%s.txt"' % job.id)
    assert response.data.decode() == job.output


def test_download_file_names_are_safe_ascii():
    @background
    def résumé_über():
        print("x")

    job = résumé_über()
    assert job.wait(10)
    disposition = app.request("/?_t=%s&_format=text&_download=1" % job.id).headers["Content-Disposition"]
    filename = re.fullmatch(r'attachment; filename="([A-Za-z0-9._-]+)"', disposition).group(1)
    assert filename.endswith("-%s.txt" % job.id) and "r_sum_" in filename


def test_download_0_is_the_plain_text_answer():
    job = finished("x\n")
    response = app.request("/?_t=%s&_format=text&_download=0" % job.id)
    assert response.status == "200 OK" and "Content-Disposition" not in response.headers
    assert response.data == b"x\n"


@pytest.mark.parametrize("query", ["_format=text&_download=2", "_format=text&_download=yes",
                                   "_format=text&_download=", "_format=text&_download=1%20",
                                   "_format=text&_download=true", "_format=json&_download=1", "_download=1",
                                   "_format=html&_download=1", "_format=events&_download=1"])
def test_bad_download_values_are_400(query):
    job = finished("x\n")
    response = app.request("/?_t=%s&%s" % (job.id, query))
    assert response.status.startswith("400"), response.status
    assert len(response.data) < 100 and b"Traceback" not in response.data


def test_a_build_of_the_package_ships_the_static_files_and_the_catalogs(tmp_path):
    import subprocess
    import sys

    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)], cwd=ROOT,
                   check=True, capture_output=True, timeout=60)

    def files(top):
        return {os.path.relpath(os.path.join(d, f), top) for d, _, names in os.walk(top) for f in names}

    for folder in ("static", "locale"):  # every file: scripts, styles, .po sources, compiled .mo, the .pot
        shipped = files(tmp_path / "web_background" / folder)
        assert shipped == files(os.path.join(ROOT, "web_background", folder)), folder
    assert "job.js" in files(tmp_path / "web_background" / "static")
    assert {"zh_CN/LC_MESSAGES/web_background.mo", "zh_CN/LC_MESSAGES/web_background.po"} <= files(
        tmp_path / "web_background" / "locale")
