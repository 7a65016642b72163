"""No double starts: @background(key=...) returns the queued or running job that holds the key."""
import json
import os
import subprocess
import sys
import time

import pytest
import web

from web_background import background, backgrounder, threaddb

from servers import ROOT


def test_a_second_call_with_the_same_key_returns_the_running_job(gate):
    @background(key="nightly")
    def report():
        gate.wait(10)

    first, second = report(), report()
    assert second == first
    gate.set()
    assert first.wait(10) and first.status == "done"
    assert list(threaddb) == [first.id]


def test_once_the_job_has_ended_the_next_call_starts_a_new_one():
    @background(key="nightly")
    def report():
        return 1

    first = report()
    assert first.wait(10)
    second = report()
    assert second != first and second.wait(10) and second.status == "done"


def test_a_callable_key_of_the_arguments_tells_calls_apart(gate):
    @background(key=lambda user, **kw: "export:%s" % user)
    def export(user, fmt="csv"):
        gate.wait(10)

    ada, ada_again, bob = export("ada"), export("ada", fmt="json"), export("bob")
    assert ada == ada_again and ada != bob
    gate.set()


def test_a_key_must_be_a_string():
    @background(key=lambda: 42)
    def job():
        pass

    with pytest.raises(TypeError, match="string"):
        job()
    with pytest.raises(TypeError):
        background(key=42)


def test_a_backgrounder_redirects_a_second_click_to_the_running_job_and_keeps_its_output(gate):
    class page:
        @backgrounder
        def GET(self):
            print("clicked")
            generate()

    @background(key="the report")
    def generate():
        print("generating")
        gate.wait(10)

    app = web.application(("/", "page"), {"page": page})
    first, second = app.request("/"), app.request("/")
    assert first.status.startswith("303") and second.headers["Location"] == first.headers["Location"]
    job = threaddb[first.headers["Location"].rsplit("_t=", 1)[1]]
    gate.set()
    assert job.wait(10)
    assert job.output == "clicked\ngenerating\n"  # the second click's print is not the job's


@pytest.mark.stores("sqlite", "redis")
def test_two_processes_racing_the_same_key_start_one_job(url_of_store, tmp_path):
    gate_file = tmp_path / "gate"
    start_at = time.time() + 1.0
    procs = [subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "procjobs.py"), url_of_store, "keyed",
                               "race", str(gate_file), repr(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        ids = [json.loads(p.stdout.readline())[0] for p in procs]
        assert ids[0] == ids[1]
        gate_file.touch()
        ends = [json.loads(p.stdout.readline()) for p in procs]
        assert ends[0] == ends[1] == [[ids[0], "done"]]
        assert [job_id for job_id in threaddb] == [ids[0]]
    finally:
        gate_file.touch()
        for p in procs:
            p.kill()
            p.communicate()
