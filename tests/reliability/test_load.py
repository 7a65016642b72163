"""Load: hundreds of jobs started at once over real HTTP, with polls, streams and
plain requests, for each store; zero 5xx and every printed line exactly once."""
import http.client
import json
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from servers import ROOT, Server, apps_server, free_port, get

JOBS = 200
LINES = 40
CLIENTS = 16
ARTIFACTS = os.path.join(ROOT, "artifacts")


def server_for(store_kind, url_of_store):
    """web.py's own server for memory and Redis; gunicorn with 4 workers for SQLite."""
    env = dict(WEB_BACKGROUND_STORE=url_of_store, WEB_BACKGROUND_QUEUE_LIMIT="1000",
               WEB_BACKGROUND_WORKERS="8", WEB_BACKGROUND_MAX_JOBS="2000")
    port = free_port()
    if store_kind == "sqlite":
        argv = [sys.executable, "-m", "gunicorn", "--workers", "4", "--threads", "8", "--bind",
                "127.0.0.1:%d" % port, "--chdir", os.path.join(ROOT, "tests"), "apps:application"]
        return Server(argv, port, env=dict(env, PYTHONPATH=ROOT))
    return apps_server(port, **env)


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = {}
        self.polls = 0
        self.lost = []

    def saw(self, status):
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def server_errors(self):
        return {s: n for s, n in self.statuses.items() if s >= 500}


def follow_by_polls(server, location, tally, deadline):
    text, offset = "", 0
    while time.monotonic() < deadline:
        status, _, body = get(location + "&_format=json&_offset=%d" % offset, timeout=30)
        tally.saw(status)
        with tally.lock:
            tally.polls += 1
        if status != 200:
            time.sleep(0.05)
            continue
        reply = json.loads(body)
        assert reply["offset"] >= offset
        text += reply["output"]
        offset = reply["offset"]
        if reply["status"] not in ("queued", "running"):
            return text, reply["status"]
        time.sleep(0.02)
    return text, "timeout"


def follow_by_events(server, location, tally, deadline):
    path = urlsplit(location)
    text, last_id = "", None
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        conn.request("GET", "%s?%s" % (path.path, path.query), headers=headers)
        response = conn.getresponse()
        tally.saw(response.status)
        fields = {}
        while True:
            line = response.readline()
            if not line:
                break
            line = line.decode().rstrip("\n")
            if line.startswith(":"):
                continue
            if line:
                key, _, value = line.partition(": ")
                fields[key] = value
                continue
            if "event" in fields:
                last_id = fields.get("id", last_id)
                data = json.loads(fields["data"])
                if fields["event"] == "output":
                    text += data["text"]
                elif fields["event"] == "end":
                    conn.close()
                    return text, data["status"]
            fields = {}
        conn.close()
        time.sleep(0.05)
    return text, "timeout"


def run_load(server, jobs=JOBS, lines=LINES, clients=CLIENTS, seconds=120.0):
    """Start ``jobs`` jobs at once over HTTP, then follow each to its end (one in
    five by Server-Sent Events, the others by JSON polls) while another client
    sends plain requests.  Returns the figures; the caller judges them."""
    tally = Tally()
    stop = threading.Event()
    tags = [uuid.uuid4().hex[:12] for _ in range(jobs)]

    def plain_requests():
        while not stop.is_set():
            tally.saw(get(server.url + "/plain")[0])

    def start(tag):  # every job is started before any is followed: hundreds at once
        status, headers, _ = get(server.url + "/load?tag=%s&lines=%d&delay=0.005" % (tag, lines), timeout=30)
        tally.saw(status)
        return headers["Location"] if status == 303 else None

    def follow(n):
        text, final = "", "not started"
        if locations[n]:
            how = follow_by_events if n % 5 == 0 else follow_by_polls
            try:
                text, final = how(server, locations[n], tally, deadline)
            except Exception as e:  # an answer the follower could not take: the job counts as lost
                final = repr(e)
        if final != "done" or text.splitlines() != ["%s %05d" % (tags[n], i) for i in range(lines)]:
            with tally.lock:
                tally.lost.append((n, final, len(text.splitlines())))

    plain = threading.Thread(target=plain_requests)
    plain.start()
    began = time.monotonic()
    deadline = began + seconds
    try:
        with ThreadPoolExecutor(clients) as pool:
            locations = list(pool.map(start, tags))
            started = time.monotonic() - began
            list(pool.map(follow, range(jobs)))
    finally:
        stop.set()
        plain.join(30)
    elapsed = time.monotonic() - began
    return {
        "jobs": jobs, "lines_per_job": lines, "clients": clients, "seconds": round(elapsed, 2),
        "jobs_started_per_s": round(jobs / started, 1), "polls_per_s": round(tally.polls / elapsed, 1),
        "requests": sum(tally.statuses.values()), "statuses": tally.statuses,
        "server_errors": sum(tally.server_errors().values()), "lost_or_wrong_jobs": len(tally.lost),
    }


def test_hundreds_of_jobs_polls_streams_and_plain_requests_at_once(store_kind, url_of_store):
    with server_for(store_kind, url_of_store) as server:
        report = dict(run_load(server), store=store_kind)
    os.makedirs(ARTIFACTS, exist_ok=True)
    with open(os.path.join(ARTIFACTS, "reliability-load-%s.json" % store_kind), "w") as f:
        json.dump(report, f)
    print("\nload:", json.dumps(report))
    assert report["statuses"].get(303) == JOBS
    assert report["server_errors"] == 0
    assert report["lost_or_wrong_jobs"] == 0
