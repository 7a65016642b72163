"""The job page in the site's own layout (configure/backgrounder/dashboard layout=),
and live(job): a job's live view as a fragment for any page."""
import os
import re
import threading

import pytest
import web

import web_background
from web_background import background, backgrounder, configure, live

from conftest import wait_for
from servers import ROOT

pytestmark = pytest.mark.stores("memory")  # what a page shows does not depend on the store

release = threading.Event()


def site_layout(content):
    return ("<!DOCTYPE html><html><head><title>%s | Site</title><link rel=\"stylesheet\" href=\"/site.css\">"
            "</head><body><header>Site menu</header>%s<footer>Site footer</footer></body></html>"
            % (content.title, content))


def other_layout(content):
    return "<html><body><nav>Other</nav>%s</body></html>" % content


@background
def held(lines=1):
    for i in range(lines):
        print("line %d" % i)
    release.wait(10)


class start:
    @backgrounder
    def GET(self):
        held()


class start_other:
    @backgrounder(layout=other_layout)
    def GET(self):
        held()


class owned:
    @backgrounder(owner=lambda: web.input(user="").user or None)
    def GET(self):
        held()


class page_with_live:
    def GET(self):
        ids = [i for i in web.input(jobs="").jobs.split(",") if i]
        user = web.input(user="").user or None
        return "<html><body><h1>Report</h1>%s</body></html>" % "".join(
            live(i, owner=lambda: user) for i in ids)


urls = ("/start", "start", "/other", "start_other", "/owned", "owned", "/report", "page_with_live",
        "/jobs", web_background.dashboard(allow=lambda: True, layout=other_layout))
app = web.application(urls, globals(), autoreload=False)


@pytest.fixture(autouse=True)
def released():
    release.clear()
    yield
    release.set()


def started(path="/start"):
    response = app.request(path)
    assert response.status.startswith("303"), response.status
    job_id = response.headers["Location"].rsplit("_t=", 1)[1]
    wait_for(lambda: "line 0" in web_background.threaddb[job_id].output)
    return job_id


def html_of(path, **headers):
    response = app.request(path, headers=headers)
    assert response.status == "200 OK", response.status
    return response, response.data.decode()


def test_without_a_layout_the_job_page_stands_alone():
    job_id = started()
    response, page = html_of("/start?_t=" + job_id)
    assert page.startswith("<!DOCTYPE html><html lang=\"en\">") and "Site menu" not in page
    assert "style-src 'nonce-" in response.headers["Content-Security-Policy"]  # its own style only


def test_configure_layout_puts_the_job_page_in_the_sites_layout():
    configure(layout=site_layout)
    job_id = started()
    response, page = html_of("/start?_t=" + job_id)
    assert page.startswith("<!DOCTYPE html><html><head><title>held: running | Site</title>") or \
        page.startswith("<!DOCTYPE html><html><head><title>held: queued | Site</title>")
    assert "<header>Site menu</header>" in page and page.endswith("<footer>Site footer</footer></body></html>")
    body = page.split("<header>Site menu</header>", 1)[1]
    # the whole view is the content: status, Cancel, output, its style and script
    for part in ('<main id="job" class="wb-job"', 'id="status"', 'id="cancel"', "line 0", "<style nonce=",
                 "<script nonce="):
        assert part in body, part
    assert page.count("<html") == 1


def test_in_a_layout_the_csp_allows_the_sites_own_files_and_the_packages_script_by_nonce():
    configure(layout=site_layout)
    response, page = html_of("/start?_t=" + started())
    csp = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert "script-src 'self' 'nonce-%s'" % nonce in csp and "style-src 'self' 'nonce-%s'" % nonce in csp
    assert "img-src 'self'" in csp and "default-src 'none'" in csp and "*" not in csp and "http" not in csp
    assert '<script nonce="%s">' % nonce in page and '<style nonce="%s">' % nonce in page


def test_the_layout_keeps_the_no_javascript_refresh_while_the_job_runs():
    configure(layout=site_layout)
    job_id = started()
    assert 'http-equiv="refresh"' in html_of("/start?_t=" + job_id)[1]
    release.set()
    assert web_background.threaddb[job_id].wait(10)
    assert 'http-equiv="refresh"' not in html_of("/start?_t=" + job_id)[1]


def test_a_handlers_layout_comes_before_the_configured_one():
    configure(layout=site_layout)
    page = html_of("/other?_t=" + started("/other"))[1]
    assert page.startswith("<html><body><nav>Other</nav>") and "Site menu" not in page


def test_the_json_and_text_answers_are_not_laid_out():
    configure(layout=site_layout)
    job_id = started()
    for fmt in ("json", "text"):
        assert "Site menu" not in html_of("/start?_t=%s&_format=%s" % (job_id, fmt))[1]


def test_a_templetor_render_layout_works_as_it_is(tmp_path):
    (tmp_path / "layout.html").write_text("$def with (content)\n<html><head><title>$content.title</title></head>"
                                          "<body><header>Templetor site</header>\n$:content\n</body></html>\n")
    for base in ("layout", None):  # a render whose pages have the layout as base, and one without
        render = web.template.render(str(tmp_path), base=base)
        configure(layout=render.layout)
        page = html_of("/start?_t=" + started())[1]
        assert page.count("<header>Templetor site</header>") == 1, base  # laid out once
        assert re.search(r"<title>held: (queued|running)</title>", page)
        assert '<main id="job" class="wb-job"' in page and "&lt;main" not in page  # $:content, not escaped


def test_a_layout_that_is_not_callable_is_a_type_error():
    with pytest.raises(TypeError):
        configure(layout="templates/layout.html")
    with pytest.raises(TypeError):
        backgrounder(layout="layout")
    with pytest.raises(TypeError):
        web_background.dashboard(layout=42)


def test_configure_layout_keeps_the_running_jobs():
    job_id = started()
    configure(layout=site_layout)
    assert job_id in web_background.threaddb


def test_the_dashboard_and_its_job_pages_are_in_its_layout():
    job_id = started()
    response, page = html_of("/jobs/")
    assert page.startswith("<html><body><nav>Other</nav>") and 'id="dashboard"' in page and job_id in page
    assert "style-src 'self' 'nonce-" in response.headers["Content-Security-Policy"]
    assert html_of("/jobs/job?_t=" + job_id)[1].startswith("<html><body><nav>Other</nav>")


# -- live(job) ----------------------------------------------------------------------------


def test_live_gives_the_jobs_view_served_by_the_handler_that_started_it():
    job_id = started()
    fragment = html_of("/report?jobs=" + job_id)[1]
    assert 'class="wb-job"' in fragment and 'data-url="/start?_t=%s"' % job_id in fragment
    assert 'action="/start?_t=%s&amp;_action=cancel"' % job_id in fragment and "line 0" in fragment
    # the URL it names serves the job's live formats
    assert html_of("/start?_t=%s&_format=json" % job_id)[1].startswith('{"id": "%s"' % job_id)


@pytest.mark.stores("memory", "sqlite", "redis")
def test_every_store_keeps_the_handler_a_live_view_is_served_by():
    job_id = started()
    assert 'data-url="/start?_t=%s"' % job_id in html_of("/report?jobs=" + job_id)[1]


def test_live_takes_a_job_or_its_id():
    job = held()
    with _request("/report"):
        by_job, by_id = live(job), live(job.id)
    assert by_job.startswith("<style nonce=") and '<section id="wb1-job" class="wb-job"' in by_job
    assert by_job.endswith("</script>")
    assert by_id.startswith('<section id="wb2-job" class="wb-job"') and "<script" not in by_id  # once a page
    assert 'data-url="/report?_t=%s"' % job.id in by_job  # started outside a handler: this page's own path


def test_several_live_views_on_a_page_have_ids_of_their_own_and_one_script():
    first, second = started(), started()
    response, page = html_of("/report?jobs=%s,%s" % (first, second))
    assert page.count('class="wb-job"') == 2 and page.count("<script") == 1 and page.count("<style") == 1
    assert 'id="wb1-output"' in page and 'id="wb2-output"' in page
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    assert '<script nonce="%s">' % nonce in page  # the page holding live views gets the layout CSP


def test_a_live_view_of_a_job_the_viewer_may_not_see_shows_nothing():
    job_id = started("/owned?user=alice")
    assert 'class="wb-job"' in html_of("/report?user=alice&jobs=" + job_id)[1]
    for query in ("user=bob&", ""):  # another owner, or nobody
        assert html_of("/report?%sjobs=%s" % (query, job_id))[1] == "<html><body><h1>Report</h1></body></html>"


def test_a_live_view_of_an_unknown_or_malformed_id_shows_nothing():
    for job_id in ("nosuchjobnosuchjob0000", "../../etc", ""):
        assert live(job_id) == ""


class _request:
    """A request context around direct calls (as a template rendering in a handler has)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        web.ctx.clear()
        web.ctx.update(env={"REQUEST_METHOD": "GET", "PATH_INFO": self.path}, homepath="", path=self.path,
                       headers=[])
        return self

    def __exit__(self, *exc):
        web.ctx.clear()


def test_the_job_page_script_and_style_files_are_the_ones_inlined():
    configure(layout=site_layout)
    page = html_of("/start?_t=" + started())[1]
    with open(os.path.join(ROOT, "web_background", "static", "job.css"), encoding="utf-8") as f:
        assert f.read() in page
    with open(os.path.join(ROOT, "web_background", "static", "page.css"), encoding="utf-8") as f:
        assert f.read() not in page  # the standalone page's body rules stay out of the site's layout
