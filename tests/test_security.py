"""Safe by default on the open internet (README: Security): who sees the dashboard,
where a redirect goes, who may cancel, whose key is whose, what a failing store
tells a visitor, who may read the SQLite file, and the headers on every answer.

In-process requests go through app.request; the rest through real servers on
127.0.0.1: web.py's own server, gunicorn, gunicorn behind nginx (the README's
recipe, tests/deploy/nginx-proxy.conf), and headless Chromium.
"""
import http.client
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest

import security_app
from conftest import needs, wait_for
from servers import ROOT, free_port
from test_deploy import Proc, render, tool
from web_background import StoreError, configure, threaddb
from web_background.jobs import get_runner
from web_background.stores.sqlite import SQLiteStore

app = security_app.app
LOCAL_HOST = "127.0.0.1:8080"  # app.request's Host for a local request
SITE = "http://" + LOCAL_HOST
PROXY_HEADERS = ["X-Forwarded-For", "X-Real-IP", "Forwarded", "Via", "X-Forwarded-Host"]


@pytest.fixture(autouse=True)
def released():
    security_app.held.clear()
    yield
    security_app.held.set()


def request(path, method="GET", headers=None, host=LOCAL_HOST, ip="127.0.0.1", data=None):
    return app.request(path, method=method, headers=headers or {}, host=host, env={"REMOTE_ADDR": ip}, data=data)


def job_id_of(response):
    assert response.status == "303 See Other", (response.status, response.data)
    return parse_qs(urlsplit(response.headers["Location"]).query)["_t"][0]


def sleeping_job():
    job = threaddb[job_id_of(request("/sleep"))]
    wait_for(lambda: job.output == "sleeping\n")
    return job


def still_running(job):
    record = get_runner().record(job.id)
    return record["status"] == "running" and not record.get("cancel")


# -- 1. the default dashboard: local means local ------------------------------------------------


@pytest.mark.stores("memory")
@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "LOCALHOST:1", "127.0.0.1:8080", "[::1]:8080"])
def test_the_default_dashboard_serves_a_loopback_client_asking_a_loopback_name(host):
    assert request("/jobs/", host=host).status == "200 OK"
    assert request("/jobs/", host=host, ip="::1").status == "200 OK"


@pytest.mark.stores("memory")
@pytest.mark.parametrize("header", PROXY_HEADERS)
def test_the_default_dashboard_refuses_a_request_that_came_through_a_proxy(header):
    for value in ("203.0.113.9", "127.0.0.1", ""):  # whatever it says: a proxy forwarded it
        response = request("/jobs/?_format=json", headers={header: value})
        assert response.status == "403 Forbidden", (header, value)
        assert b"allow" in response.data and len(response.data) < 120


@pytest.mark.stores("memory")
@pytest.mark.parametrize("host", ["rebind.attacker.example:8080", "localhost.attacker.example", "127.0.0.1.nip.io",
                                  "0.0.0.0:8080", "127.0.0.2:8080", "[::1].attacker.example", ""])
def test_the_default_dashboard_refuses_a_host_that_is_not_a_loopback_name(host):
    """DNS rebinding: the attacker's name resolves to 127.0.0.1, its page's Origin matches its Host."""
    job = sleeping_job()
    origin = {"Origin": "http://" + host}
    assert request("/jobs/?_format=json", host=host).status == "403 Forbidden"
    assert request("/jobs/job?_t=" + job.id, host=host).status == "403 Forbidden"
    for path, data in (("/jobs/cancel", {"id": job.id}), ("/jobs/job?_t=%s&_action=cancel" % job.id, {})):
        assert request(path, "POST", headers=origin, host=host, data=data).status == "403 Forbidden"
    assert still_running(job)


@pytest.mark.stores("memory")
def test_the_default_dashboard_refuses_a_client_that_is_not_on_a_loopback_address():
    assert request("/jobs/", ip="203.0.113.9").status == "403 Forbidden"
    assert request("/jobs/", ip="10.0.0.1").status == "403 Forbidden"


# -- 3. the job page's Cancel is same-origin only, by the dashboard's rule ------------------------

CANCELS = {"job page": lambda job: ("/anything?_t=%s&_action=cancel" % job.id, {}),
           "dashboard": lambda job: ("/jobs/cancel", {"id": job.id})}
FOREIGN = [{"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": "http://127.0.0.1:8081"},
           {"Origin": "https://127.0.0.1:8080"}, {"Origin": "http://127.0.0.1:8080.evil.example"}, {"Origin": ""},
           {"Referer": "http://evil.example/page"}, {"Referer": "http://127.0.0.1:8081/"},
           {"Referer": "http://127.0.0.1:8080@evil.example/"}, {}]


@pytest.mark.stores("memory")
@pytest.mark.parametrize("where", sorted(CANCELS))
@pytest.mark.parametrize("headers", FOREIGN, ids=lambda h: repr(h)[:40])
def test_a_cancel_from_another_origin_or_none_is_refused(where, headers):
    job = sleeping_job()
    path, data = CANCELS[where](job)
    response = request(path, "POST", headers=headers, data=data)
    assert response.status == "403 Forbidden" and len(response.data) < 100
    assert still_running(job)


@pytest.mark.stores("memory")
@pytest.mark.parametrize("where", sorted(CANCELS))
@pytest.mark.parametrize("headers", [{"Origin": SITE}, {"Referer": SITE + "/anything?_t=x"}], ids=["origin", "referer"])
def test_a_cancel_from_a_page_of_the_site_is_taken(where, headers):
    job = sleeping_job()
    path, data = CANCELS[where](job)
    assert request(path, "POST", headers=headers, data=data).status == "303 See Other"
    assert job.wait(10) and job.status == "cancelled"


@pytest.mark.stores("memory")
def test_behind_a_proxy_that_passes_host_without_its_port_the_servers_port_completes_the_origin():
    """nginx's Debian uwsgi_params and fastcgi_params pass $host: 127.0.0.1 for a browser at 127.0.0.1:8080."""
    job = sleeping_job()
    path = "/anything?_t=%s&_action=cancel" % job.id
    for origin in ("http://127.0.0.1:9999", "http://127.0.0.1:80", "http://evil.example:8080"):
        response = app.request(path, "POST", headers={"Origin": origin}, host="127.0.0.1", env={"SERVER_PORT": "8080"})
        assert response.status == "403 Forbidden", origin
    response = app.request(path, "POST", headers={"Origin": SITE}, host="127.0.0.1", env={"SERVER_PORT": "8080"})
    assert response.status == "303 See Other"
    assert job.wait(10) and job.status == "cancelled"


# -- 4. keys are per owner --------------------------------------------------------------------------


def test_a_key_is_held_per_owner_and_another_owners_job_is_never_revealed():
    alice = job_id_of(request("/mine", headers={"X-User": "alice"}))
    bob_response = request("/mine", headers={"X-User": "bob"})
    bob = job_id_of(bob_response)
    assert bob != alice and alice not in bob_response.headers["Location"]
    assert job_id_of(request("/mine", headers={"X-User": "alice"})) == alice  # her second click: her job
    assert job_id_of(request("/mine", headers={"X-User": "bob"})) == bob
    assert get_runner().record(bob)["owner"] == "bob"
    security_app.held.set()
    assert threaddb[alice].wait(10) and threaddb[bob].wait(10)


def test_without_an_owner_a_key_stays_global_and_apart_from_the_owners():
    alice = job_id_of(request("/mine", headers={"X-User": "alice"}))
    nobody = security_app.report()
    assert nobody.id != alice and security_app.report() == nobody  # one job for every call without an owner
    security_app.held.set()
    assert nobody.wait(10) and threaddb[alice].wait(10)


# -- 5. no secret or internal detail in a response ---------------------------------------------------

SECRET = "S3cretPassw0rd"


@pytest.mark.stores("memory")
def test_a_store_that_is_down_answers_a_fixed_503_and_logs_the_detail_redacted(caplog):
    configure(store="redis://:%s@127.0.0.1:%d/0" % (SECRET, free_port()))  # nothing listens there
    caplog.set_level(logging.ERROR, logger="web_background")
    answers = [request("/x"), request("/x?_t=" + "a" * 22), request("/jobs/"), request("/jobs/?_format=json"),
               request("/x?_t=%s&_action=cancel" % ("a" * 22), "POST", headers={"Origin": SITE})]
    for response in answers:
        assert response.status == "503 Service Unavailable", (response.status, response.data)
        assert response.data == b"The job store is unavailable; try again shortly.\n"
        assert response.headers["Retry-After"] == "2"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "redis://:***@127.0.0.1" in logged and SECRET not in logged


@pytest.mark.stores("sqlite")
def test_a_sqlite_error_shows_no_path_to_the_visitor():
    path = get_runner().store.path
    with sqlite3.connect(path) as conn:  # a record the store cannot read
        conn.execute("INSERT INTO jobs (id, status, created, record) VALUES ('broken', 'done', 0, 'not json')")
    response = request("/x?_t=broken")
    assert response.status == "503 Service Unavailable"
    assert path.encode() not in response.data and os.path.dirname(path).encode() not in response.data


@pytest.mark.stores("memory")
@pytest.mark.parametrize("url, shown", [
    ("redis://:%s@h:6379/0" % SECRET, "redis://:***@h:6379/0"),
    ("rediss://user:%s@h/1" % SECRET, "rediss://user:***@h/1"),
    ("redis://:p@ss%s@h/0" % SECRET, "redis://:***@h/0"),
    ("redis://%s@h/0" % SECRET, "redis://***@h/0"),
    ("redis://h:6379/0?password=%s&db=1" % SECRET, "redis://h:6379/0?password=***&db=1"),
    ("unix:///run/redis.sock?token=%s" % SECRET, "unix:///run/redis.sock?token=***"),
])
def test_a_store_error_message_redacts_passwords_and_tokens_in_urls(url, shown):
    message = str(StoreError("Redis at %s: Error 111 connecting" % url))
    assert message == "Redis at %s: Error 111 connecting" % shown


@pytest.mark.stores("memory")
def test_the_cli_redacts_the_password_of_its_store_url():
    done = subprocess.run([sys.executable, "-m", "web_background", "--store",
                           "redis://:%s@127.0.0.1:%d/0" % (SECRET, free_port()), "list"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "redis://:***@127.0.0.1" in done.stderr, done.stderr
    assert SECRET not in done.stderr + done.stdout


# -- 6. the SQLite files are private ----------------------------------------------------------------


def _open_store_under_umask_022(path):
    old = os.umask(0o022)
    try:
        store = SQLiteStore(path)
        store.create({"id": "j", "status": "running", "created": time.time()})
        store.append("j", "secret output\n")  # the connection stays open: -wal and -shm exist
    finally:
        os.umask(old)
    return store


@pytest.mark.stores("memory")
def test_a_new_sqlite_database_and_its_wal_and_shm_are_mode_0600(tmp_path):
    path = str(tmp_path / "jobs.db")
    store = _open_store_under_umask_022(path)
    modes = {suffix: oct(os.stat(path + suffix).st_mode & 0o777) for suffix in ("", "-wal", "-shm")}
    assert modes == {"": "0o600", "-wal": "0o600", "-shm": "0o600"}
    assert store.read("j") == ("secret output\n", 14, 0)


@pytest.mark.stores("memory")
def test_an_existing_databases_mode_is_left_alone(tmp_path):
    path = tmp_path / "jobs.db"
    path.touch()
    path.chmod(0o640)
    _open_store_under_umask_022(str(path))
    assert path.stat().st_mode & 0o777 == 0o640


NOBODY = 65534
_READ_AS_NOBODY = """
import json, os, sys
os.setgroups([]); os.setgid(%d); os.setuid(%d)
result = {}
for path in sys.argv[1:]:
    try:
        with open(path, "rb") as f:
            f.read(1)
        result[os.path.basename(path)] = "read"
    except PermissionError:
        result[os.path.basename(path)] = "refused"
print(json.dumps(result))
""" % (NOBODY, NOBODY)


@pytest.mark.stores("memory")
def test_another_local_user_cannot_read_the_sqlite_database():
    if os.getuid() != 0:
        needs("root (to run a reader as the user nobody)", "running as uid %d" % os.getuid())
    folder = tempfile.mkdtemp(prefix="wb-security-")  # under /tmp, which every user may cross
    try:
        os.chmod(folder, 0o755)
        path = os.path.join(folder, "jobs.db")
        store = _open_store_under_umask_022(path)  # open (and so its -wal and -shm) while nobody tries
        control = os.path.join(folder, "control.txt")
        with open(control, "w") as f:
            f.write("world-readable, to show the reader reaches the folder\n")
        os.chmod(control, 0o644)
        done = subprocess.run([sys.executable, "-I", "-c", _READ_AS_NOBODY, control] +
                              [path + suffix for suffix in ("", "-wal", "-shm")],
                              capture_output=True, text=True, timeout=30, cwd="/")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"control.txt": "read", "jobs.db": "refused", "jobs.db-wal": "refused",
                                           "jobs.db-shm": "refused"}
        assert store.read("j")[0] == "secret output\n"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- 8. safe headers on every answer -----------------------------------------------------------------


def _answers():
    ended = threaddb[job_id_of(request("/x"))]
    assert ended.wait(10)
    page = "/x?_t=" + ended.id
    running = sleeping_job()
    answers = {"303 start": request("/x"), "405 plain POST": request("/x", "POST", headers={"Origin": SITE}),
               "403 foreign cancel": request(page + "&_action=cancel", "POST", headers={"Origin": "http://e.example"}),
               "404 no such job": request("/x?_t=" + "b" * 22), "400 bad format": request(page + "&_format=xml"),
               "200 cancel json": request(page + "&_action=cancel", "POST",
                                          headers={"Origin": SITE, "Accept": "application/json"}),
               "303 cancel": request("/x?_t=%s&_action=cancel" % running.id, "POST", headers={"Origin": SITE}),
               "200 dashboard": request("/jobs/"), "403 dashboard": request("/jobs/", host="attacker.example"),
               "404 dashboard": request("/jobs/nothing"), "405 dashboard": request("/jobs/cancel")}
    for fmt in ("html", "text", "json", "stream", "events"):
        answers["200 " + fmt] = request(page + "&_format=" + fmt)
    answers["303 dashboard"] = request("/jobs/purge", "POST", headers={"Origin": SITE})
    assert running.wait(10)
    configure(workers=1, queue_limit=0)
    holder = sleeping_job()
    answers["503 busy"] = request("/sleep")
    holder.cancel()
    assert holder.wait(10)
    return answers


@pytest.mark.stores("memory")
def test_every_answer_the_package_makes_carries_its_safe_headers():
    for name, response in _answers().items():
        assert response.status.split()[0] == name.split()[0], (name, response.status, response.data[:200])
        headers = response.headers
        assert headers.get("X-Content-Type-Options") == "nosniff", name
        assert headers.get("Cache-Control") == "no-store", name
        assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), name


# -- 2 and 8 on real servers: every Location stays on the site, no path is a 500 ---------------------

EVIL = "evil.example"
# paths a @backgrounder handler at /(.*) answers (web.py's own server refuses those starting with //: 400)
CRAFTED = ["//%s/" % EVIL, "/%%5C%s/" % EVIL, "/%%09/%s/" % EVIL, "/%%5C%%5C%s/" % EVIL, "/%%2F%%2F%s/" % EVIL,
           "/%%0D/%s/" % EVIL, "/\\%s/" % EVIL, "///%s" % EVIL, "/%E2%80%A8x", "/%FF", "/caf%C3%A9?a=%E2%80%A8&b=\\"]


def assert_redirected(target, status, body):
    assert status == 303 or (status == 400 and target.startswith("//")), (target, status, body[:300])


def _site(name, tmp_path_factory):
    """[the URL clients use, its Procs]: web.py's own server, gunicorn, or nginx in front of gunicorn."""
    env = dict(PYTHONPATH=ROOT, WEB_BACKGROUND_STORE="memory://")
    port = free_port()
    if name == "webpy":
        return ["http://127.0.0.1:%d" % port, Proc([sys.executable, "tests/security_app.py", "127.0.0.1:%d" % port],
                                                    port, env=env).start()]
    gunicorn = Proc([tool("gunicorn", "pip install gunicorn"), "--workers", "1", "--worker-class", "gthread",
                     "--threads", "4", "--bind", "127.0.0.1:%d" % port, "--chdir", os.path.join(ROOT, "tests"),
                     "security_app:application"], port, env=env).start()
    if name == "gunicorn":
        return ["http://127.0.0.1:%d" % port, gunicorn]
    folder = tmp_path_factory.mktemp("nginx")
    front = free_port()
    conf = render("nginx-proxy.conf", folder, PORT=front, DIR=folder, UPSTREAM="127.0.0.1:%d" % port,
                  USER="user root root;" if os.getuid() == 0 else "")
    try:
        proxy = Proc([tool("nginx", "Debian: apt-get install nginx-light"), "-p", str(folder), "-c", conf,
                      "-e", str(folder / "error.log")], front).start()
    except BaseException:
        gunicorn.stop()
        raise
    return ["http://127.0.0.1:%d" % front, proxy, gunicorn]


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """``sites(name)``: [URL, Procs...] of that site, started at the first use, stopped after the module."""
    started = {}

    def site_named(name):
        if name not in started:
            started[name] = _site(name, tmp_path_factory)
        return started[name]

    yield site_named
    for _, *procs in started.values():
        for proc in procs:
            proc.stop()


@pytest.fixture(params=["webpy", "gunicorn", "nginx"])
def site(request, sites):
    return sites(request.param)[0]


def raw(url, method, target, headers=None):
    """(status, headers, body) of one request whose target is sent as written (no client tidies it)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        conn.request(method, target, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def assert_stays_on_the_site(site_url, target, location):
    """The Location goes where a browser that asked for ``target`` would stay: this host, this path."""
    assert location, "no Location"
    assert not re.search(r"[^\x21-\x7e]|\\", location), "unescaped control, space, backslash or non-ASCII: %r" % (
        location,)
    assert not location.startswith("//"), location
    asked = urlsplit(site_url + target)
    there = urlsplit(urljoin(site_url + target, location))
    assert (there.scheme, there.netloc, there.path) == (asked.scheme, asked.netloc, asked.path), (target, location)


@pytest.mark.stores("memory")
def test_the_303_to_a_job_stays_on_the_site_whatever_the_path(site):
    for target in CRAFTED:
        status, headers, body = raw(site, "GET", target)
        assert_redirected(target, status, body)
        if status == 303:
            assert_stays_on_the_site(site, target, headers["Location"])


@pytest.mark.stores("memory")
def test_the_cancels_303_stays_on_the_site_whatever_the_path(site):
    status, headers, _ = raw(site, "GET", "/sleep")
    job_id = parse_qs(urlsplit(headers["Location"]).query)["_t"][0]
    for target in CRAFTED:
        target = target.split("?")[0] + "?_t=%s&_action=cancel" % job_id
        status, headers, body = raw(site, "POST", target, {"Origin": site, "Content-Length": "0"})
        assert_redirected(target, status, body)
        if status == 303:
            assert_stays_on_the_site(site, target, headers["Location"])


@pytest.mark.stores("memory")
def test_no_path_gives_a_500(site):
    for target in CRAFTED + ["/%00", "/%0D%0ALocation:%20http://evil.example/", "/%E2%80%A8x?_t=" + "c" * 22, "/%FF?_t=%FF", "/jobs/%E2%80%A8", "/jobs/job?_t=%FF"]:
        status, _, body = raw(site, "GET", target, {"Host": "localhost"} if "/jobs" in target else None)
        assert status in (303, 400, 403, 404), (target, status, body[:300])


# -- 1 behind nginx: every client is a remote one ------------------------------------------------------


@pytest.mark.stores("memory")
def test_behind_nginx_the_default_dashboard_is_403_to_every_client(sites):
    front, _, gunicorn = sites("nginx")
    upstream = gunicorn.url
    status, headers, _ = raw(front, "GET", "/sleep")
    job_id = parse_qs(urlsplit(headers["Location"]).query)["_t"][0]
    for headers in ({}, {"Host": "localhost"}, {"Host": "127.0.0.1", "X-Forwarded-For": "127.0.0.1"}):
        for target in ("/jobs/", "/jobs/?_format=json", "/jobs/job?_t=" + job_id):
            status, _, body = raw(front, "GET", target, headers)
            assert status == 403 and b"allow" in body and job_id.encode() not in body, (headers, target, status)
        post = dict(headers, Origin=front, **{"Content-Type": "application/x-www-form-urlencoded"})
        assert raw(front, "POST", "/jobs/cancel", post)[0] == 403
    # the same server serves a request made on this machine, to it, directly
    status, _, body = raw(upstream, "GET", "/jobs/job?_t=%s&_format=json" % job_id)
    assert status == 200 and json.loads(body)["status"] == "running" and not json.loads(body)["cancel_requested"]


@pytest.mark.stores("memory")
def test_on_web_pys_own_server_a_rebound_host_is_403_and_a_loopback_one_is_served(sites):
    url = sites("webpy")[0]
    port = urlsplit(url).port
    for host in ("rebind.attacker.example:%d" % port, "localhost.attacker.example:%d" % port):
        status, _, body = raw(url, "GET", "/jobs/?_format=json", {"Host": host})
        assert status == 403 and b"allow" in body, host
    for host in ("127.0.0.1:%d" % port, "localhost:%d" % port):
        assert raw(url, "GET", "/jobs/?_format=json", {"Host": host})[0] == 200, host


# -- 2 in a browser: Chromium follows a crafted link and stays on the site ------------------------------


@pytest.mark.stores("memory")
def test_chromium_following_a_crafted_link_stays_on_the_site(sites, browser):
    url = sites("gunicorn")[0]  # gunicorn passes // and %5C paths through as they are
    elsewhere = "localhost:%d" % free_port()  # another origin, where nothing listens
    for target in ("//%s/" % elsewhere, "/%%5C%s/" % elsewhere, "/%%09/%s/" % elsewhere):
        browser.get(url + target)
        wait_for(lambda: "_t=" in browser.current_url, timeout=10)
        there = urlsplit(browser.current_url)
        assert there.netloc == urlsplit(url).netloc, (target, browser.current_url)
        assert browser.find_element("id", "job").get_attribute("data-state"), target
