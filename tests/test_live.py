"""Watching a job live: chunked and SSE streams, resuming, cancel, owners, and thread use."""
import http.client
import json
import statistics
import threading
import time
from urllib.parse import urlsplit

import pytest

from web_background import background, threaddb

import apps
from servers import apps_server, free_port, get, next_event

app = apps.app
SAME_SITE = {"Origin": "http://0.0.0.0:8080"}  # app.request's own origin: a cancel is taken only from the site


@pytest.fixture(autouse=True)
def released_gate():
    apps.gate.clear()
    yield
    apps.gate.set()


def start(path, headers=None):
    response = app.request(path, headers=headers or {})
    assert response.status == "303 See Other", response.status
    return response.headers["Location"].rsplit("_t=", 1)[1]


def events_of(response):
    body = response.data.decode()
    out = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            out.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return out


def test_event_stream_sends_output_state_and_end_with_offsets_as_ids():
    job_id = start("/")
    threaddb[job_id].wait(10)
    response = app.request("/?_t=%s" % job_id, headers={"Accept": "text/event-stream"})
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = events_of(response)
    output = "".join(data["text"] for _, kind, data in events if kind == "output")
    assert output == "Started\nhit f5 to refresh!\n0\n1\n2\n"
    assert events[-1][1] == "end" and events[-1][2]["status"] == "done"
    assert events[-1][0] == len(output)


def test_last_event_id_resumes_from_that_offset():
    job_id = start("/")
    threaddb[job_id].wait(10)
    response = app.request("/?_t=%s&_format=events" % job_id, headers={"Last-Event-ID": "8"})
    output = "".join(d["text"] for _, kind, d in events_of(response) if kind == "output")
    assert output == "Started\nhit f5 to refresh!\n0\n1\n2\n"[8:]


@pytest.mark.parametrize("bad", ["-1", "abc", "1.5", "9" * 40, ""])
def test_a_bad_last_event_id_is_400(bad):
    job_id = start("/")
    response = app.request("/?_t=%s&_format=events" % job_id, headers={"Last-Event-ID": bad})
    assert response.status.startswith("400") and b"Traceback" not in response.data


def test_output_with_carriage_returns_and_newlines_survives_the_event_framing():
    @background
    def job():
        print("a\rb\r\nc\n\nd")

    j = job()
    j.wait(10)
    response = app.request("/?_t=%s&_format=events" % j.id)
    assert "".join(d["text"] for _, kind, d in events_of(response) if kind == "output") == "a\rb\r\nc\n\nd\n"


def test_cancel_is_a_post_that_redirects_back_to_the_job():
    job_id = start("/ticker")
    get_response = app.request("/ticker?_t=%s&_action=cancel" % job_id)
    assert get_response.status == "200 OK" and threaddb[job_id].status in ("queued", "running")
    response = app.request("/ticker?_t=%s&_action=cancel" % job_id, method="POST", headers=SAME_SITE)
    assert response.status == "303 See Other"
    assert response.headers["Location"] == "?_t=%s" % job_id  # this same path: /ticker
    assert threaddb[job_id].wait(10) and threaddb[job_id].status == "cancelled"


def test_cancel_answers_json_when_asked():
    job_id = start("/gated")
    response = app.request("/?_t=%s&_action=cancel" % job_id, method="POST",
                           headers=dict(SAME_SITE, Accept="application/json"))
    assert json.loads(response.data) == {"id": job_id, "cancelled": True}


def test_a_class_without_post_answers_405_to_a_plain_post():
    assert app.request("/", method="POST").status.startswith("405")


def test_cancelling_an_unknown_job_is_404():
    response = app.request("/?_t=%s&_action=cancel" % ("x" * 22), method="POST", headers=SAME_SITE)
    assert response.status.startswith("404") and len(response.data) < 100


def test_another_owner_gets_404_for_viewing_streaming_and_cancelling():
    alice, bob = {"Cookie": "user=alice"}, {"Cookie": "user=bob"}
    job_id = start("/mine?lines=2000&delay=0.01", headers=alice)
    for headers in (bob, {}):
        for query in ("", "&_format=text", "&_format=json", "&_format=stream", "&_format=events"):
            response = app.request("/mine?_t=%s%s" % (job_id, query), headers=headers)
            assert response.status.startswith("404"), (headers, query, response.status)
        response = app.request("/mine?_t=%s&_action=cancel" % job_id, method="POST", headers=dict(headers, **SAME_SITE))
        assert response.status.startswith("404")
    assert threaddb[job_id].status == "running"
    assert app.request("/mine?_t=%s&_format=json" % job_id, headers=alice).status == "200 OK"
    assert app.request("/mine?_t=%s&_action=cancel" % job_id, method="POST",
                       headers=dict(alice, **SAME_SITE)).status.startswith("303")
    assert threaddb[job_id].wait(10) and threaddb[job_id].status == "cancelled"


def test_the_page_allows_only_its_own_script_and_style():
    job_id = start("/")
    response = app.request("/?_t=%s" % job_id)
    csp = response.headers["Content-Security-Policy"]
    nonce = csp.split("script-src 'nonce-", 1)[1].split("'", 1)[0]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "http" not in csp
    page = response.data.decode()
    assert page.count('<script nonce="%s">' % nonce) == 1 and page.count("<script") == 1


@pytest.fixture(scope="module")
def server():
    with apps_server(free_port()) as s:
        yield s


def test_a_chunked_text_stream_sends_output_as_it_is_written(server):
    location = get(server.url + "/ticker")[1]["Location"]
    path = urlsplit(location)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        conn.request("GET", "%s?%s&_format=stream" % (path.path, path.query))
        response = conn.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        first = response.readline()
        assert first == b"tick 0\n"
        second = response.readline()  # arrives while the job is still running
        assert second == b"tick 1\n"
        assert json.loads(get(location + "&_format=json")[2])["status"] == "running"
    finally:
        conn.close()


def test_a_stream_dropped_mid_job_and_resumed_with_last_event_id_loses_and_repeats_nothing(server):
    lines = 60
    location = get(server.url + "/mine?lines=%d&delay=0.02" % lines, headers={"Cookie": "user=u1"})[1]["Location"]
    path = urlsplit(location)
    received, last_id = "", None
    for attempt in range(50):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
        headers = {"Accept": "text/event-stream", "Cookie": "user=u1"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        conn.request("GET", "%s?%s" % (path.path, path.query), headers=headers)
        response = conn.getresponse()
        ended = False
        for _ in range(5):  # read a few events, then drop the connection
            event = next_event(response)
            if event is None:
                break
            event_id, kind, data = event
            last_id = event_id
            if kind == "output":
                received += json.loads(data)["text"]
            if kind == "end":
                ended = True
                break
        conn.close()
        if ended:
            break
    assert ended, "the job did not end within the attempts"
    assert received.splitlines() == ["tick %d" % i for i in range(lines)]


def test_watchers_do_not_starve_ordinary_requests(server):
    def plain_latency(samples=15):
        times = []
        for _ in range(samples):
            t = time.perf_counter()
            assert get(server.url + "/plain")[0] == 200
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    baseline = plain_latency()
    location = get(server.url + "/ticker")[1]["Location"]
    path = urlsplit(location)
    stop = threading.Event()
    errors = []

    def watch():
        while not stop.is_set():  # an EventSource: reconnect whenever the stream ends
            try:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
                conn.request("GET", "%s?%s" % (path.path, path.query), headers={"Accept": "text/event-stream"})
                response = conn.getresponse()
                while not stop.is_set() and response.readline():
                    pass
                conn.close()
            except OSError as e:
                errors.append(e)
                return
            stop.wait(0.5)

    watchers = [threading.Thread(target=watch) for _ in range(20)]
    for w in watchers:
        w.start()
    try:
        time.sleep(1.0)  # let them all connect and hold what they may
        loaded = plain_latency()
    finally:
        stop.set()
        for w in watchers:
            w.join(30)
    assert not errors
    assert loaded <= 3 * baseline + 0.05, (loaded, baseline)


def test_a_class_with_its_own_post_keeps_it_and_still_answers_cancel():
    import web
    from web_background import backgrounder

    class page:
        @backgrounder
        def GET(self):
            apps.tick(400, 0.05)

        def POST(self):
            return "own post"

    own = web.application(("/page", "page"), {"page": page})
    response = own.request("/page")
    job_id = response.headers["Location"].rsplit("_t=", 1)[1]
    assert own.request("/page", method="POST").data == b"own post"
    assert own.request("/page?_t=%s&_action=cancel" % job_id, method="POST",
                       headers=SAME_SITE).status.startswith("303")
    assert threaddb[job_id].wait(10) and threaddb[job_id].status == "cancelled"
