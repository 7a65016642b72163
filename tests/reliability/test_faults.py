"""Faults: what the user sees, and that the server goes on serving.

Also covered elsewhere: kill -9 of a gunicorn worker (test_sqlite_processes),
kill -9 of an rq worker and Redis restarted mid-run (test_rq), sys.exit() in a
thread job (test_jobs).
"""
import json
import os
import subprocess
import threading
import time

import pytest

from web_background import Thread, background
from web_background.records import HEARTBEAT_TIMEOUT

import apps
from conftest import needs, wait_for
from servers import apps_server, free_port, get

app = apps.app


def test_a_100_mb_line_keeps_its_newest_max_output_characters_and_the_server_serves_on():
    @background
    def huge():
        print("x" * 100_000_000 + "END")

    job = huge()
    assert job.wait(60) and job.status == "done", job.error
    output = job.output
    assert output.startswith("[... %d earlier characters cut ...]\n" % (100_000_004 - 1_000_000))
    assert output.endswith("xEND\n") and len(output) < 1_000_100
    body = json.loads(app.request("/?_t=%s&_format=json&_offset=100000000" % job.id).data)
    assert body["output"] == "END\n" and body["offset"] == 100_000_004
    assert app.request("/plain").status == "200 OK"


def test_a_job_that_never_ends_is_stopped_by_cancel():
    @background
    def forever():
        deadline = time.monotonic() + 60  # "forever", bounded for the test's sake
        while time.monotonic() < deadline:
            print("still going")
            time.sleep(0.01)

    job = forever()
    wait_for(lambda: "still going" in job.output)
    assert job.cancel()
    assert job.wait(10) and job.status == "cancelled"
    assert app.request("/plain").status == "200 OK"


@pytest.mark.stores("memory")
def test_threads_a_job_starts_write_where_documented(capsys):
    @background
    def spawner():
        plain = threading.Thread(target=lambda: print("plain thread"))
        helped = Thread(target=lambda: print("helper thread"))
        plain.start()
        plain.join()
        helped.start()
        helped.join()

    job = spawner()
    assert job.wait(10) and job.status == "done"
    assert job.output == "plain thread\nhelper thread\n"
    assert "thread" not in capsys.readouterr().out


@pytest.mark.stores("sqlite")
def test_a_read_only_sqlite_directory_gives_503s_then_recovers_without_losing_a_line(tmp_path):
    folder = tmp_path / "db"
    folder.mkdir()
    url = "sqlite:///%s" % (folder / "jobs.db")

    def immutable(on):
        paths = [str(folder)] + [str(p) for p in folder.iterdir()]
        done = subprocess.run(["chattr", "+i" if on else "-i"] + paths, capture_output=True, text=True)
        if done.returncode != 0:
            needs("chattr on this filesystem", done.stderr.strip())

    with apps_server(free_port(), WEB_BACKGROUND_STORE=url) as server:
        status, headers, _ = get(server.url + "/load?tag=ro&lines=60&delay=0.05")
        assert status == 303
        location = headers["Location"]
        wait_for(lambda: "ro 00005" in json.loads(get(location + "&_format=json")[2])["output"])
        immutable(True)
        try:
            status, _, body = get(server.url + "/load?tag=refused&lines=1")
            assert status == 503 and b"unavailable" in body and b"Traceback" not in body
            for _ in range(10):
                status, _, body = get(location + "&_format=json")
                assert status in (200, 503) and b"Traceback" not in body
            assert get(server.url + "/plain")[0] == 200  # the server serves on
            time.sleep(1.0)  # the job keeps printing meanwhile; the store refuses it
        finally:
            immutable(False)
        wait_for(lambda: json.loads(get(location + "&_format=json")[2])["status"] == "done", timeout=30)
        output = json.loads(get(location + "&_format=json")[2])["output"]
        assert output.splitlines() == ["ro %05d" % i for i in range(60)]
        assert "could not write its output yet" in server.output()


@pytest.mark.stores("redis")
@pytest.mark.parametrize("how, status", [("sys.exit", "failed"), ("os._exit", "interrupted")])
def test_a_job_that_exits_its_rq_worker_process_ends_clearly(how, status, url_of_store):
    import rqjobs
    from test_rq import Workers

    workers = Workers(url_of_store, [rqjobs.QUEUE], os.path.join(os.path.dirname(rqjobs.__file__)))
    try:
        job = rqjobs.exits(how)
        wait_for(lambda: job.status not in ("queued", "running"), timeout=HEARTBEAT_TIMEOUT + 15)
        assert job.status == status
        assert job.output.startswith("about to %s\n" % how)
        if status == "failed":
            assert "SystemExit: 3" in job.error
        other = rqjobs.numbered(2)  # the worker (or its next work-horse) goes on
        assert other.wait(30) and other.status == "done"
    finally:
        workers.stop()


@pytest.mark.stores("memory")
def test_a_thread_job_that_catches_its_cancel_ends_cancelled_with_its_result():
    import faultjobs

    job = faultjobs.thread_catches_cancel()
    wait_for(lambda: "working" in job.output)
    assert job.cancel()
    assert job.wait(10) and job.status == "cancelled"
    assert job.result == "cleaned" and job.output.endswith("cleaning up\n")


@pytest.mark.stores("memory")
def test_hung_threads_are_bounded_and_a_stuck_job_keeps_its_slot(caplog):
    from web_background import configure

    configure(workers=2, cancel_grace=0.2)
    hold = threading.Event()  # the jobs block in C on it: an asynchronous Cancelled cannot reach them

    @background
    def blocked():
        print("blocked", flush=True)
        hold.wait(30)

    @background
    def quick():
        return "ran"

    warm = quick()  # the pool's threads and the maintenance thread exist from here on
    assert warm.wait(10)
    base = threading.active_count()
    try:
        rounds = []
        for _ in range(2):  # the first round is abandoned, then stuck jobs keep their threads
            jobs = [blocked(), blocked()]
            wait_for(lambda: all("blocked" in j.output for j in jobs))
            for j in jobs:
                assert j.cancel()
            assert all(j.wait(5) for j in jobs) and [j.status for j in jobs] == ["cancelled", "cancelled"]
            rounds.append(threading.active_count() - base)
        assert rounds[1] == rounds[0]  # no fresh threads past workers abandoned ones
        assert threading.active_count() - base == 2  # at most ``workers`` abandoned threads
        assert "2 of them abandoned" in caplog.text and "executor='processes'" in caplog.text
        waiting = quick()
        time.sleep(0.3)  # no thread is free: it waits
        assert waiting.status == "queued"
    finally:
        hold.set()
    assert waiting.wait(10) and waiting.result == "ran"
