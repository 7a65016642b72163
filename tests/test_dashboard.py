"""The jobs dashboard through app.request: listing, filters, actions, access and escaping, on every store."""
import json
import re
from html import escape
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

import dashboard_app
from conftest import wait_for
from web_background import StoreError, configure, threaddb
from web_background.dashboard import PAGE_SIZE
from web_background.jobs import get_runner

app = dashboard_app.app
SITE = "http://127.0.0.1:8080"  # the origin of these tests' requests (a loopback Host: a local request)
HOSTILE = dashboard_app.HOSTILE


@pytest.fixture(autouse=True)
def gates_opened():
    """Gates start closed; every job a test left waiting ends before the next test."""
    dashboard_app.close_all_gates()
    yield
    dashboard_app.open_all_gates()
    for job_id in list(threaddb):
        try:
            threaddb[job_id].wait(10)
        except KeyError:
            pass


def request(path, method="GET", ip="127.0.0.1", headers=None, data=None):
    return app.request(path, method=method, env={"REMOTE_ADDR": ip}, headers=headers or {}, data=data,
                       host=SITE.split("//", 1)[1])


def post(path, data=None, origin=SITE, referer=None, headers=None, ip="127.0.0.1"):
    headers = dict(headers or {})
    if origin is not None:
        headers["Origin"] = origin
    if referer is not None:
        headers["Referer"] = referer
    return request(path, "POST", ip=ip, headers=headers, data=data or {})


def listing(path="/jobs/", headers=None, ip="127.0.0.1", **params):
    response = request(path + "?" + urlencode(dict(params, _format="json")), headers=headers, ip=ip)
    assert response.status == "200 OK", (response.status, response.data)
    return json.loads(response.data)


def ids(view):
    return [row["id"] for row in view["jobs"]]


def job_id_of(response):
    assert response.status == "303 See Other", (response.status, response.data)
    return parse_qs(urlsplit(response.headers["Location"]).query)["_t"][0]


def running_waiter(gate="gate"):
    job = dashboard_app.waiter(gate)
    wait_for(lambda: job.status == "running" and job.progress is not None)
    return job


def ended(job):
    assert job.wait(10)
    return job


def owned(user, kind="waiter", gate="gate"):
    """A job started by ``user`` through an ``@backgrounder(owner=...)`` handler."""
    job = threaddb[job_id_of(app.request("/mystart?kind=%s&gate=%s" % (kind, gate), headers={"X-User": user}))]
    if kind == "waiter":
        wait_for(lambda: job.status == "running")
    else:
        ended(job)
    return job


def as_user(user):
    return {"X-User": user}


# -- the list ---------------------------------------------------------------------------------


def test_the_list_shows_retained_jobs_newest_first():
    jobs = [ended(dashboard_app.quick(i)) for i in range(3)]
    newest_first = [job.id for job in reversed(jobs)]
    assert ids(listing()) == newest_first
    html = request("/jobs/").data.decode()
    assert [html.index('data-id="%s"' % i) for i in newest_first] == sorted(html.index('data-id="%s"' % i)
                                                                             for i in newest_first)


def test_the_prefix_without_a_trailing_slash_shows_the_list_too():
    job = ended(dashboard_app.quick(1))
    response = request("/jobs")
    assert response.status == "200 OK" and 'data-id="%s"' % job.id in response.data.decode()


def test_the_status_filter_shows_only_jobs_in_that_status():
    running = running_waiter()
    failed = ended(dashboard_app.fails("x"))
    ended(dashboard_app.quick(1))
    assert ids(listing(status="running")) == [running.id]
    assert ids(listing(status="failed")) == [failed.id]
    html = request("/jobs/?status=failed").data.decode()
    assert failed.id in html and running.id not in html


def test_the_name_filter_matches_part_of_the_function_name_in_any_case():
    quick = ended(dashboard_app.quick(1))
    ended(dashboard_app.fails("x"))
    assert ids(listing(name="UIC")) == [quick.id]
    assert ids(listing(name="nothing like it")) == []


def test_counts_per_status_and_how_many_run_and_wait():
    configure(workers=2)  # two run, the next waits
    ended(dashboard_app.fails("x"))
    running = [running_waiter("one"), running_waiter("two")]
    queued = dashboard_app.waiter("three")
    view = listing(status="failed")
    assert view["counts"] == {"queued": 1, "running": 2, "done": 0, "failed": 1, "cancelled": 0,
                              "interrupted": 0}
    assert (view["running"], view["queued"], view["total"], view["matching"]) == (2, 1, 4, 1)
    assert queued.status == "queued" and [job.status for job in running] == ["running", "running"]
    html = request("/jobs/").data.decode()
    assert '<span class="count" data-count="running">2</span> running' in html
    assert '<span class="count" data-count="queued">1</span> waiting' in html


def test_the_list_is_paginated_fifty_to_a_page():
    jobs = [dashboard_app.quick(i) for i in range(PAGE_SIZE + 5)]
    for job in jobs:
        ended(job)
    first, second = listing(), listing(page=2)
    assert (len(first["jobs"]), len(second["jobs"])) == (PAGE_SIZE, 5)
    assert ids(first) + ids(second) == [job.id for job in reversed(jobs)]
    assert (first["page"], first["pages"], second["page"]) == (1, 2, 2)
    assert first["newer"] is None and first["older"] == "/jobs/?page=2"
    assert second["newer"] == "/jobs/" and second["older"] is None
    assert listing(page=3)["jobs"] == []
    html = request("/jobs/?page=2").data.decode()
    assert html.count("<tr class=") == 5 and "page 2 of 2" in html


def test_the_json_view_has_the_rows_counts_and_pages():
    job = ended(dashboard_app.quick(1))
    response = request("/jobs/?_format=json")
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    view = json.loads(response.data)
    assert set(view) >= {"jobs", "counts", "total", "matching", "running", "queued", "page", "pages", "newer",
                         "older"}
    assert view["jobs"][0]["id"] == job.id and view["jobs"][0]["status"] == "done"
    by_accept = json.loads(request("/jobs/", headers={"Accept": "application/json"}).data)
    assert ids(by_accept) == [job.id]


def test_a_row_shows_status_name_owner_progress_times_last_line_and_a_link():
    job = owned("ada")
    row = listing()["jobs"][0]
    assert (row["id"], row["status"], row["name"], row["owner"]) == (job.id, "running", "waiter", "ada")
    assert row["progress"] == {"done": 1, "total": 3, "message": "step 1 of 3"}
    assert row["progress_text"] == "1/3 step 1 of 3"
    assert row["last_line"] == "waiting on gate"
    assert re.match(r"\d+ s\Z", row["age"]) and re.match(r"\d+ s\Z", row["elapsed"])
    assert row["url"] == "/jobs/job?_t=" + job.id and row["actions"] == ["cancel"]
    html = request("/jobs/").data.decode()
    assert '<progress max="3" value="1"></progress><span class="msg">1/3 step 1 of 3</span>' in html
    assert '<a href="/jobs/job?_t=%s">waiter</a>' % job.id in html and ">waiting on gate<" in html


def test_the_last_line_is_the_last_non_empty_line_without_escapes():
    job = ended(dashboard_app.hostile("first\n\x1b[31mred\x1b[0m line\n\n"))
    assert listing()["jobs"][0]["last_line"] == "red line"
    assert job.status == "done"


# -- actions ----------------------------------------------------------------------------------


def test_cancel_from_the_same_origin_stops_a_running_job():
    job = running_waiter()
    response = post("/jobs/cancel", {"id": job.id})
    assert response.status == "303 See Other" and response.headers["Location"] == "/jobs/"
    assert ended(job).status == "cancelled"


def test_cancel_answers_json_when_asked():
    job = running_waiter()
    response = post("/jobs/cancel", {"id": job.id}, headers={"Accept": "application/json"})
    assert json.loads(response.data) == {"id": job.id, "cancelled": True}
    assert ended(job).status == "cancelled"


def test_an_action_redirects_back_to_the_list_with_its_filters():
    job = running_waiter()
    response = post("/jobs/cancel?status=running&name=wait&page=1", {"id": job.id})
    assert response.headers["Location"] == "/jobs/?status=running&name=wait&page=1"


def test_retry_starts_the_same_call_as_a_new_job():
    failed = ended(dashboard_app.fails("again"))
    response = post("/jobs/retry", {"id": failed.id})
    new_id = job_id_of(response)
    assert urlsplit(response.headers["Location"]).path == "/jobs/job"
    new = ended(threaddb[new_id])
    assert new.id != failed.id and new.status == "failed" and new.output == "about to fail again\n"
    assert ids(listing()) == [new.id, failed.id]


def test_retry_answers_json_with_the_new_job():
    failed = ended(dashboard_app.fails("again"))
    reply = json.loads(post("/jobs/retry", {"id": failed.id}, headers={"Accept": "application/json"}).data)
    assert reply["id"] == failed.id and reply["retried_as"] in threaddb


def test_retry_of_a_running_job_or_one_whose_call_was_not_kept_is_409():
    running = running_waiter()
    unkept = ended(dashboard_app.hostile("x"))  # its name is no importable function
    for job in (running, unkept):
        response = post("/jobs/retry", {"id": job.id})
        assert response.status == "409 Conflict" and b"Traceback" not in response.data
    assert len(threaddb) == 2


def test_purge_drops_every_finished_job_and_keeps_running_ones():
    running = running_waiter()
    ended(dashboard_app.quick(1))
    ended(dashboard_app.fails("x"))
    response = post("/jobs/purge")
    assert response.status == "303 See Other"
    assert ids(listing()) == [running.id] and list(threaddb) == [running.id]


def test_purge_answers_json_with_how_many_it_dropped():
    ended(dashboard_app.quick(1))
    assert json.loads(post("/jobs/purge", headers={"Accept": "application/json"}).data) == {"purged": 1}


# -- same origin only ---------------------------------------------------------------------------


def _actions(running, failed):
    return {"cancel": ("/jobs/cancel", {"id": running.id}), "retry": ("/jobs/retry", {"id": failed.id}),
            "purge": ("/jobs/purge", {}), "job page cancel": ("/jobs/job?_t=%s&_action=cancel" % running.id, {})}


def _unchanged(running, failed):
    assert running.status == "running" and not get_runner().record(running.id)["cancel"]
    assert sorted(threaddb) == sorted([running.id, failed.id])


@pytest.mark.parametrize("action", ["cancel", "retry", "purge", "job page cancel"])
def test_a_post_from_another_site_is_refused(action):
    running, failed = running_waiter(), ended(dashboard_app.fails("x"))
    path, data = _actions(running, failed)[action]
    response = post(path, data, origin="http://evil.example")
    assert response.status == "403 Forbidden" and response.headers["Content-Type"].startswith("text/plain")
    _unchanged(running, failed)


@pytest.mark.parametrize("action", ["cancel", "retry", "purge", "job page cancel"])
def test_a_post_without_origin_or_referer_is_refused(action):
    running, failed = running_waiter(), ended(dashboard_app.fails("x"))
    path, data = _actions(running, failed)[action]
    assert post(path, data, origin=None).status == "403 Forbidden"
    _unchanged(running, failed)


@pytest.mark.parametrize("origin", ["null", "https://127.0.0.1:8080", "http://127.0.0.1:8081", "http://127.0.0.1",
                                    "http://127.0.0.1:8080.evil.example", ""])
def test_an_origin_that_only_looks_like_this_site_is_refused(origin):
    running = running_waiter()
    assert post("/jobs/cancel", {"id": running.id}, origin=origin).status == "403 Forbidden"
    assert running.status == "running"


def test_a_same_origin_referer_without_origin_is_accepted():
    job = running_waiter()
    response = post("/jobs/cancel", {"id": job.id}, origin=None, referer=SITE + "/jobs/?status=running")
    assert response.status == "303 See Other"
    assert ended(job).status == "cancelled"


def test_a_referer_from_another_site_without_origin_is_refused():
    job = running_waiter()
    response = post("/jobs/cancel", {"id": job.id}, origin=None, referer="http://evil.example/jobs/")
    assert response.status == "403 Forbidden" and job.status == "running"


def test_a_get_never_changes_anything():
    running, failed = running_waiter(), ended(dashboard_app.fails("x"))
    for path in ("/jobs/cancel?id=%s" % running.id, "/jobs/retry?id=%s" % failed.id, "/jobs/purge"):
        response = request(path)
        assert response.status == "405 Method Not Allowed" and response.headers["Allow"] == "POST"
    assert request("/jobs/job?_t=%s&_action=cancel" % running.id).status == "200 OK"
    assert request("/jobs/?_action=cancel&_t=%s&id=%s" % (running.id, running.id)).status == "200 OK"
    _unchanged(running, failed)


# -- who may see it -------------------------------------------------------------------------------


def test_a_client_that_is_not_local_gets_403_without_allow():
    job = running_waiter()
    for method, path in (("GET", "/jobs/"), ("GET", "/jobs/?_format=json"), ("GET", "/jobs/job?_t=" + job.id),
                         ("POST", "/jobs/cancel")):
        response = request(path, method, ip="10.0.0.5", headers={"Origin": SITE}, data={"id": job.id})
        assert response.status == "403 Forbidden", path
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8" and len(response.data) < 100
        assert job.id.encode() not in response.data
    assert job.status == "running"


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1"])
def test_a_local_client_is_served_without_allow(ip):
    assert request("/jobs/", ip=ip).status == "200 OK"


def test_allow_decides_per_request():
    admin = {"Cookie": "role=admin"}
    assert request("/admin/", ip="10.0.0.5", headers=admin).status == "200 OK"
    assert request("/admin/", ip="10.0.0.5").status == "403 Forbidden"
    assert request("/admin/", ip="127.0.0.1", headers={"Cookie": "role=user"}).status == "403 Forbidden"


def test_owner_mode_lists_exactly_the_requesters_jobs():
    ada, bob = owned("ada"), owned("bob")
    ended(dashboard_app.quick(1))  # nobody's
    view = listing("/mine/", headers=as_user("ada"), ip="10.0.0.5")
    assert ids(view) == [ada.id] and (view["total"], view["running"]) == (1, 1)
    assert ids(listing("/mine/", headers=as_user("bob"))) == [bob.id]
    assert ids(listing("/mine/")) == []  # no user, no jobs
    html = request("/mine/", headers=as_user("ada")).data.decode()
    assert ada.id in html and bob.id not in html and "My jobs" in html


def test_owner_mode_answers_404_for_another_owners_job():
    bob = owned("bob")
    nobodys = ended(dashboard_app.fails("x"))
    for job in (bob, nobodys):
        assert request("/mine/job?_t=" + job.id, headers=as_user("ada")).status == "404 Not Found"
        for path, data in (("/mine/cancel", {"id": job.id}), ("/mine/retry", {"id": job.id}),
                           ("/mine/job?_t=%s&_action=cancel" % job.id, {})):
            assert post(path, data, headers=as_user("ada")).status == "404 Not Found", path
    assert bob.status == "running" and len(threaddb) == 2


def test_owner_mode_serves_and_cancels_the_requesters_own_job():
    ada = owned("ada")
    page = request("/mine/job?_t=" + ada.id, headers=as_user("ada"))
    assert page.status == "200 OK" and b"waiting on gate" in page.data
    assert post("/mine/cancel", {"id": ada.id}, headers=as_user("ada")).status == "303 See Other"
    assert ended(ada).status == "cancelled"


def test_owner_mode_purge_drops_only_the_requesters_finished_jobs():
    ada_done, bob_done = owned("ada", "quick"), owned("bob", "quick")
    ada_running = owned("ada")
    assert json.loads(post("/mine/purge", headers=dict(as_user("ada"), Accept="application/json")).data) == {
        "purged": 1}
    assert sorted(threaddb) == sorted([bob_done.id, ada_running.id]) and ada_done.id not in threaddb


def test_retry_keeps_the_owner_of_the_job():
    failed = owned("ada", "fails")
    reply = json.loads(post("/mine/retry", {"id": failed.id}, headers=dict(as_user("ada"),
                                                                           Accept="application/json")).data)
    new_id = reply["retried_as"]
    assert get_runner().record(new_id)["owner"] == "ada"
    assert ids(listing("/mine/", headers=as_user("ada"))) == [new_id, failed.id]
    assert ids(listing("/mine/", headers=as_user("bob"))) == []


def test_allow_and_owner_together_both_apply():
    owned("bob")
    ada = owned("ada")
    assert request("/both/", headers=as_user("ada")).status == "403 Forbidden"
    view = listing("/both/", headers=dict(as_user("ada"), Cookie="role=admin"))
    assert ids(view) == [ada.id]


def test_the_admin_dashboard_lists_and_serves_every_owners_jobs():
    ada = owned("ada")
    assert ids(listing()) == [ada.id] and listing()["jobs"][0]["owner"] == "ada"
    page = request("/jobs/job?_t=%s&_format=json" % ada.id)
    assert page.status == "200 OK" and json.loads(page.data)["output"] == "waiting on gate\n"
    response = post("/jobs/job?_t=%s&_action=cancel" % ada.id)
    assert response.status == "303 See Other" and response.headers["Location"] == "?_t=" + ada.id  # /jobs/job
    assert ended(ada).status == "cancelled"


# -- what the page is made of ---------------------------------------------------------------------


def test_hostile_names_output_progress_and_owners_are_escaped():
    ended(dashboard_app.hostile(HOSTILE))
    owned(HOSTILE)
    html = request("/jobs/").data.decode()
    assert html.count("<script") == 1 and "<img" not in html  # the page's own script only
    assert "hostile&lt;script&gt;window.pwned=1&lt;/script&gt;&lt;img src=x onerror=&quot;" in html
    assert "the message: &lt;script&gt;" in html and "the output: &lt;script&gt;" in html
    assert '<td class="owner">&lt;script&gt;window.pwned=1' in html
    row = listing()["jobs"][1]
    assert row["name"] == "hostile" + HOSTILE and row["last_line"] == "the output: " + HOSTILE
    assert row["progress"]["message"] == "the message: " + HOSTILE


def test_a_hostile_filter_is_escaped_where_the_page_repeats_it():
    html = request("/jobs/?" + urlencode({"name": HOSTILE, "status": "running"})).data.decode()
    assert html.count("<script") == 1 and "<img" not in html
    assert 'value="%s"' % escape(HOSTILE) in html


def test_the_page_sends_a_strict_csp_nosniff_and_no_store_and_no_inline_styles():
    ended(dashboard_app.hostile(HOSTILE))
    response = request("/jobs/")
    nonce = re.search(r"script-src 'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; script-src 'nonce-%s'; style-src 'nonce-%s'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'" % (nonce, nonce))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    html = response.data.decode()
    assert '<script nonce="%s">' % nonce in html and '<style nonce="%s">' % nonce in html
    assert not re.search(r"<[^>]+\sstyle=", html)


def test_the_job_page_is_served_under_the_prefix():
    job = running_waiter()
    page = request("/jobs/job?_t=" + job.id)
    assert page.status == "200 OK" and page.headers["Content-Type"] == "text/html; charset=utf-8"
    html = page.data.decode()
    assert 'action="?_t=%s&amp;_action=cancel"' % job.id in html and "waiting on gate" in html
    assert "script-src 'nonce-" in page.headers["Content-Security-Policy"]
    assert json.loads(request("/jobs/job?_t=%s&_format=json" % job.id).data)["status"] == "running"
    assert request("/jobs/job?_t=%s&_format=text" % job.id).data == b"waiting on gate\n"


def test_the_job_pages_cancel_button_works_under_the_prefix():
    job = running_waiter()
    reply = post("/jobs/job?_t=%s&_action=cancel" % job.id, headers={"Accept": "application/json"})
    assert json.loads(reply.data) == {"id": job.id, "cancelled": True}
    assert ended(job).status == "cancelled"


# -- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["page=0", "page=-1", "page=x", "page=", "page=1e3", "page=%00", "status=bogus",
                                   "status=Running", "_format=xml", "name=" + "x" * 201])
def test_a_bad_page_status_or_format_is_400(query):
    response = request("/jobs/?" + query)
    assert response.status == "400 Bad Request", query
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8" and len(response.data) < 200
    assert b"Traceback" not in response.data


@pytest.mark.parametrize("job_id", ["", "unknown0000000000000000", "../etc/passwd", "a" * 65, "%00", "x%20y"])
def test_an_unknown_or_malformed_job_id_is_404(job_id):
    ended(dashboard_app.quick(1))
    assert request("/jobs/job?_t=" + job_id).status == "404 Not Found"
    for path in ("/jobs/cancel", "/jobs/retry"):
        response = post(path, "id=" + job_id)
        assert response.status == "404 Not Found" and response.data == b"No such job.\n"
    assert len(threaddb) == 1


def test_an_unknown_path_under_the_prefix_is_404():
    response = request("/jobs/nothing-here")
    assert response.status == "404 Not Found" and response.headers["Content-Type"].startswith("text/plain")


def test_a_store_that_is_down_answers_503(monkeypatch):
    def down(*args, **kwargs):
        raise StoreError("down for the test")

    monkeypatch.setattr(get_runner().store, "page", down)
    monkeypatch.setattr(get_runner().store, "expire", down)
    for response in (request("/jobs/"), request("/jobs/?_format=json"), post("/jobs/purge")):
        assert response.status == "503 Service Unavailable"
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert b"unavailable" in response.data and b"down for the test" not in response.data  # the log has it
