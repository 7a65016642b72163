"""The web glue through app.request: redirects, job pages, formats and bad input."""
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import web

from web_background import configure, threaddb

import apps
from conftest import wait_for

app = apps.app


def job_id_of(response):
    assert response.status == "303 See Other", response.status
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return query["_t"][0], query


def start(path="/", **kw):
    job_id, _ = job_id_of(app.request(path, **kw))
    threaddb[job_id].wait(10)
    return job_id


@pytest.fixture(autouse=True)
def released_gate():
    apps.gate.clear()
    yield
    apps.gate.set()


def test_get_redirects_with_303_to_the_same_url_with_the_job_id_keeping_other_params():
    response = app.request("/?a=1&b=two")
    job_id, query = job_id_of(response)
    assert query["a"] == ["1"] and query["b"] == ["two"]
    assert response.headers["Location"].startswith("?")  # query-only: the very path the browser asked for
    assert job_id in threaddb


def test_what_the_handler_printed_starts_the_job_output():
    job_id = start("/")
    assert threaddb[job_id].output == "Started\nhit f5 to refresh!\n0\n1\n2\n"


def test_serving_a_job_never_calls_the_handler():
    job_id = start("/")
    before = len(threaddb)
    response = app.request("/?_t=%s&_format=text" % job_id)
    assert response.status == "200 OK"
    assert len(threaddb) == before


def test_post_starts_a_job_and_redirects_to_the_get_url_with_its_input():
    response = app.request("/form?x=1", method="POST", data="name=Ada")
    job_id, query = job_id_of(response)
    assert query["x"] == ["1"]
    assert threaddb[job_id].wait(10)
    assert threaddb[job_id].output == "name=Ada\n"


def test_the_first_of_several_jobs_gets_the_redirect_and_the_handler_output():
    job_id = start("/two")
    output = threaddb[job_id].output
    assert output.startswith("handler\n")
    assert "second=" in output
    assert len(threaddb) == 2


def test_a_handler_that_starts_no_job_answers_as_usual(capsys):
    response = app.request("/nojob")
    assert response.status == "200 OK" and response.data == b"plain answer"
    assert "no job here" in capsys.readouterr().out


def test_the_job_sees_a_copy_of_the_requests_ctx_and_input():
    job_id = start("/ctx?q=hello", headers={"User-Agent": "tester/1"})
    output = threaddb[job_id].output
    assert "path=/ctx query=?q=hello method=GET" in output
    assert "q=hello\n" in output and "ua=tester/1\n" in output


def test_text_format_is_the_output_exactly():
    job_id = start("/")
    response = app.request("/?_t=%s&_format=text" % job_id)
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.data.decode() == "Started\nhit f5 to refresh!\n0\n1\n2\n"


def test_json_format_has_id_status_output_offset_progress_error():
    job_id = start("/")
    body = json.loads(app.request("/?_t=%s&_format=json" % job_id).data)
    assert body["id"] == job_id and body["status"] == "done"
    assert body["output"] == "Started\nhit f5 to refresh!\n0\n1\n2\n"
    assert body["offset"] == len(body["output"]) and body["progress"] is None and body["error"] is None


def test_accept_application_json_selects_json():
    job_id = start("/")
    response = app.request("/?_t=%s" % job_id, headers={"Accept": "application/json"})
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.data)["id"] == job_id


def test_offset_returns_output_from_that_absolute_position_and_the_next_offset():
    job_id = start("/")
    full = "Started\nhit f5 to refresh!\n0\n1\n2\n"
    body = json.loads(app.request("/?_t=%s&_format=json&_offset=8" % job_id).data)
    assert body["output"] == full[8:] and body["offset"] == len(full)
    body = json.loads(app.request("/?_t=%s&_format=json&_offset=%d" % (job_id, len(full))).data)
    assert body["output"] == "" and body["offset"] == len(full)
    text = app.request("/?_t=%s&_format=text&_offset=30" % job_id).data.decode()
    assert text == full[30:]


def test_offsets_stay_absolute_after_the_cap_cuts_old_output():
    configure(max_output=10)
    job_id = start("/")
    full = "Started\nhit f5 to refresh!\n0\n1\n2\n"
    body = json.loads(app.request("/?_t=%s&_format=json&_offset=30" % job_id).data)
    assert body["output"] == full[30:] and body["offset"] == len(full)
    body = json.loads(app.request("/?_t=%s&_format=json&_offset=0" % job_id).data)
    assert body["output"].startswith("[... %d earlier characters cut ...]\n" % (len(full) - 10))
    assert body["output"].endswith(full[-10:])


def test_html_page_escapes_output_and_refreshes_only_while_running():
    response = app.request("/gated")
    job_id, _ = job_id_of(response)
    page = app.request("/?_t=%s" % job_id)
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'http-equiv="refresh"' in page.data
    apps.gate.set()
    assert threaddb[job_id].wait(10)
    page = app.request("/?_t=%s" % job_id).data.decode()
    assert 'http-equiv="refresh"' not in page
    assert "<pre" in page and "waiting" in page and "done" in page


def test_html_page_shows_output_as_text_not_markup():
    from web_background import background

    @background
    def hostile():
        print("<script>alert(1)</script></pre>\"'&\x1b[31mred\x1b[0m\x1b]8;;http://x\x07link\x1b]8;;\x07")

    job = hostile()
    assert job.wait(10)
    page = app.request("/?_t=%s" % job.id).data.decode()
    assert "<script>alert" not in page
    assert '&lt;script&gt;alert(1)&lt;/script&gt;&lt;/pre&gt;&quot;&#x27;&amp;<span class="a-fg-1">red</span>' in page
    assert "link" in page and "\x1b" not in page and "http://x" not in page


def test_html_page_shows_a_progress_bar_with_its_message():
    job_id, _ = job_id_of(app.request("/progress"))
    wait_for(lambda: threaddb[job_id].progress is not None)
    page = app.request("/?_t=%s" % job_id).data.decode()
    assert '<progress id="bar" value="1" max="4"></progress>' in page
    assert "one &lt;of&gt; four" in page
    body = json.loads(app.request("/?_t=%s&_format=json" % job_id).data)
    assert body["progress"] == {"done": 1, "total": 4, "message": "one <of> four"}


def test_a_failed_job_page_hides_the_traceback_unless_debug():
    job_id = start("/fail")
    saved = web.config.get("debug")
    try:
        web.config.debug = False
        page = app.request("/?_t=%s" % job_id).data.decode()
        assert "The job failed." in page and "secret detail" not in page
        assert json.loads(app.request("/?_t=%s&_format=json" % job_id).data)["error"] is None
        web.config.debug = True
        page = app.request("/?_t=%s" % job_id).data.decode()
        assert "RuntimeError: secret detail" in page
        assert "secret detail" in json.loads(app.request("/?_t=%s&_format=json" % job_id).data)["error"]
    finally:
        web.config.debug = saved


def test_every_job_response_is_nosniff_and_not_cached():
    job_id = start("/")
    for query in ("", "&_format=text", "&_format=json", "&_format=bogus"):
        response = app.request("/?_t=%s%s" % (job_id, query))
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "no-store" in response.headers["Cache-Control"]
    response = app.request("/?_t=unknown")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("bad", ["", "unknown", "a" * 65, "a" * 10000, "%3Cscript%3E", "..%2F..", "abc%00",
                                 "%C3%A9t%C3%A9"])
def test_unknown_or_malformed_job_ids_are_404_with_a_short_body(bad):
    response = app.request("/?_t=" + bad)
    assert response.status.startswith("404")
    assert len(response.data) < 100 and b"Traceback" not in response.data


def test_an_expired_job_is_404():
    configure(ttl=0.1)
    job_id = start("/")
    wait_for(lambda: app.request("/?_t=%s" % job_id).status.startswith("404"), timeout=5)


@pytest.mark.parametrize("query", ["_offset=-1", "_offset=abc", "_offset=1e3", "_offset=" + "9" * 30,
                                   "_format=xml", "_format=", "_offset="])
def test_bad_offset_or_format_is_400(query):
    job_id = start("/")
    response = app.request("/?_t=%s&%s" % (job_id, query))
    assert response.status.startswith("400"), response.status
    assert len(response.data) < 100 and b"Traceback" not in response.data


def test_busy_becomes_503_with_retry_after():
    configure(workers=1, queue_limit=0)
    first = app.request("/gated")
    job_id_of(first)
    response = app.request("/gated")
    assert response.status.startswith("503")
    assert response.headers["Retry-After"] == "5"
    assert b"Traceback" not in response.data
    apps.gate.set()


def test_a_failing_job_leaves_the_server_serving():
    start("/fail")
    assert app.request("/plain").status == "200 OK"


def test_a_lone_surrogate_in_the_output_is_served_as_a_replacement_character_in_every_format():
    from web_background import background

    @background
    def undecodable_name():
        print("file \udcff.txt", "\ud800")  # as os.listdir() decodes a non-UTF-8 name

    job = undecodable_name()
    assert job.wait(10) and job.status == "done"
    assert job.output == "file \ufffd.txt \ufffd\n"
    assert threaddb[job.id].output == job.output
    for fmt in ("html", "text", "json"):
        response = apps.app.request("/?_t=%s&_format=%s" % (job.id, fmt))
        assert response.status == "200 OK", (fmt, response.status)
        body = response.data.decode("utf-8")
        assert "file \ufffd.txt" in (json.loads(body)["output"] if fmt == "json" else body)
