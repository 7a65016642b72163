"""Cancel that always stops a job, and timeouts: thread and process jobs
(RQ's are in test_rq.py), with real threads, processes and signals."""
import json
import subprocess
import sys
import threading
import time

import pytest
import web

from web_background import Cancelled, TimedOut, background, backgrounder, configure
from web_background.jobs import get_runner

import processjobs as jobs
from conftest import wait_for
from servers import ROOT


def _pid_alive(pid):
    """Whether process ``pid`` runs (a zombie that nobody reaped yet has ended)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# -- process jobs ----------------------------------------------------------------


def test_cancel_interrupts_a_sleeping_process_job_at_once_and_its_finally_runs(tmp_path):
    marker = tmp_path / "finally"
    j = jobs.sleeps(str(marker))
    wait_for(lambda: "sleeping" in j.output, timeout=15)
    asked = time.monotonic()
    assert j.cancel()
    assert j.wait(2) and time.monotonic() - asked < 1.0
    assert j.status == "cancelled"
    assert j.output == "sleeping\nfinally ran\n" and marker.exists()


def test_cancel_interrupts_a_process_job_waiting_on_a_lock():
    j = jobs.waits_on_event()
    wait_for(lambda: "waiting" in j.output, timeout=15)
    j.cancel()
    assert j.wait(2) and j.status == "cancelled"


def test_cancel_stops_a_process_job_in_a_pure_python_loop():
    j = jobs.spins()
    wait_for(lambda: "spinning" in j.output, timeout=15)
    j.cancel()
    assert j.wait(2) and j.status == "cancelled"


def test_a_process_job_that_ignores_cancel_is_killed_after_cancel_grace_with_its_children(tmp_path):
    configure(cancel_grace=0.5)
    pidfile = tmp_path / "child.pid"
    j = jobs.refuses_to_stop(str(pidfile))
    wait_for(lambda: "stubborn" in j.output, timeout=15)
    child = int(pidfile.read_text())
    asked = time.monotonic()
    j.cancel()
    wait_for(lambda: "ignoring the cancel" in j.output, timeout=5)
    assert j.wait(5)
    assert time.monotonic() - asked >= 0.5
    assert j.status == "cancelled" and j.error is None
    assert j.output == "stubborn\nignoring the cancel\n"  # output kept
    wait_for(lambda: not _pid_alive(child), timeout=5)  # the whole process group went


def test_a_process_job_past_its_timeout_is_stopped_and_fails_saying_so():
    j = jobs.sleeps_past_its_timeout()
    assert j.wait(10)
    assert j.status == "failed"
    assert j.error.startswith("the job timed out after 0.5 seconds")
    assert "TimedOut" in j.error
    assert j.output == "started\nfinally ran\n"


def test_the_timeout_setting_applies_to_process_jobs_without_their_own():
    configure(timeout=0.3)
    j = jobs.sleeps()
    assert j.wait(10) and j.status == "failed"
    assert j.error.startswith("the job timed out after 0.3 seconds")


def test_a_timeout_that_is_ignored_kills_the_process_and_still_fails_saying_so():
    configure(timeout=0.3, cancel_grace=0.3)
    j = jobs.refuses_to_stop()
    assert j.wait(10)
    assert j.status == "failed" and j.error == "the job timed out after 0.3 seconds"


@pytest.mark.stores("sqlite", "redis")  # the memory store is this process's own
def test_a_cancel_from_another_process_stops_a_process_job(url_of_store):
    j = jobs.sleeps()
    wait_for(lambda: "sleeping" in j.output, timeout=15)
    done = subprocess.run([sys.executable, "-m", "web_background", "--store", url_of_store, "cancel", j.id],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert j.wait(5) and j.status == "cancelled"
    assert j.output.endswith("finally ran\n")


# -- thread jobs -----------------------------------------------------------------


def test_cancel_stops_a_thread_job_in_a_pure_python_loop_that_never_writes():
    started = threading.Event()

    @background
    def spin():
        started.set()
        n = 0
        while True:
            n += 1

    j = spin()
    assert started.wait(10)
    asked = time.monotonic()
    j.cancel()
    assert j.wait(2) and time.monotonic() - asked < 1.0
    assert j.status == "cancelled"


def test_a_cancelled_thread_job_runs_its_finally_blocks():
    started, cleaned = threading.Event(), threading.Event()

    @background
    def job():
        try:
            started.set()
            while True:
                pass
        finally:
            cleaned.set()

    j = job()
    assert started.wait(10)
    j.cancel()
    assert j.wait(5) and cleaned.is_set() and j.status == "cancelled"


def test_a_thread_stuck_in_c_is_recorded_cancelled_after_grace_and_its_slot_given_back():
    configure(workers=1, cancel_grace=0.3)
    stuck, release = threading.Event(), threading.Event()

    @background
    def blocked():
        stuck.set()
        release.wait()  # inside C until released: no exception can reach it
        print("written after the cancel")

    @background
    def after():
        return "ran"

    j = blocked()
    assert stuck.wait(10)
    j.cancel()
    assert j.wait(5) and j.status == "cancelled"
    second = after()  # the only worker slot was given back
    assert second.wait(5) and second.result == "ran"
    release.set()
    time.sleep(0.2)  # let the abandoned thread run on: what it writes is dropped
    assert "written after" not in j.output and j.status == "cancelled"


def test_a_thread_job_past_its_timeout_fails_saying_so():
    @background(timeout=0.3)
    def slow():
        while True:
            pass

    j = slow()
    assert j.wait(5)
    assert j.status == "failed" and j.error.startswith("the job timed out after 0.3 seconds")


def test_timed_out_is_a_cancelled_so_cleanup_code_sees_both():
    assert issubclass(TimedOut, Cancelled)


def test_a_timeout_must_be_a_number_of_seconds():
    with pytest.raises(ValueError):
        background(timeout=-1)
    with pytest.raises(ValueError):
        configure(timeout="soon")
    with pytest.raises(ValueError):
        background(executor="elsewhere")


def test_a_stop_never_reaches_the_next_job_of_the_same_thread():
    configure(workers=1)

    @background
    def quick():
        return 1

    @background
    def later():
        time.sleep(0.3)
        return 2

    first = quick()
    assert first.wait(5)
    first.cancel()  # already done: nothing is raised anywhere
    second = later()
    assert second.wait(5) and second.status == "done" and second.result == 2


# -- what a client sees while a cancel is pending --------------------------------


def test_while_a_cancel_is_pending_the_json_says_cancel_requested():
    configure(cancel_grace=1.0)
    stuck, release = threading.Event(), threading.Event()

    class page:
        @backgrounder
        def GET(self):
            blocked()

    @background
    def blocked():
        stuck.set()
        release.wait(10)

    app = web.application(("/", "page"), {"page": page})
    target = app.request("/").headers["Location"].split("/", 3)[-1]
    assert stuck.wait(10)
    before = json.loads(app.request("/" + target + "&_format=json").data)
    assert before["cancel_requested"] is False
    cancel = app.request("/" + target + "&_action=cancel", method="POST",
                         headers={"Accept": "application/json", "Origin": "http://0.0.0.0:8080"})
    assert json.loads(cancel.data)["cancelled"] is True
    during = json.loads(app.request("/" + target + "&_format=json").data)
    assert during["status"] == "running" and during["cancel_requested"] is True
    assert "Cancelling" in app.request("/" + target).data.decode()
    release.set()
    job_id = target.split("_t=")[1].split("&")[0]
    wait_for(lambda: get_runner().record(job_id)["status"] == "cancelled", timeout=5)
    after = json.loads(app.request("/" + target + "&_format=json").data)
    assert after["cancel_requested"] is False
