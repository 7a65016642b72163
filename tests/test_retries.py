"""Retries: a failed attempt runs again as the same job, after a backoff; on every store."""
import threading
import time

import pytest

from web_background import background

import processjobs
from conftest import wait_for


def flaky(failures, **options):
    calls = []

    @background(**options)
    def job():
        calls.append(time.monotonic())
        print("try %d" % len(calls))
        if len(calls) <= failures:
            raise ConnectionError("passing error %d" % len(calls))
        return len(calls)

    return job, calls


def test_a_job_that_fails_twice_then_succeeds_ends_done_with_three_attempts_in_its_output():
    job, calls = flaky(2, retries=2, retry_delay=0.01)
    j = job()
    assert j.wait(10)
    assert j.status == "done" and j.result == 3 and j.error is None
    assert j.attempt == 3 and j.attempts == 3
    assert j.output == "try 1\n--- attempt 2 of 3 ---\ntry 2\n--- attempt 3 of 3 ---\ntry 3\n"


def test_a_job_fails_only_when_its_last_attempt_fails_with_that_attempts_error():
    job, calls = flaky(5, retries=1, retry_delay=0.01)
    j = job()
    assert j.wait(10)
    assert j.status == "failed" and "passing error 2" in j.error
    assert len(calls) == 2 and j.attempt == 2 and j.attempts == 2


def test_attempts_wait_retry_delay_times_backoff_to_the_power_of_the_attempt():
    job, calls = flaky(2, retries=2, retry_delay=0.1, backoff=3.0)
    j = job()
    assert j.wait(10) and j.status == "done"
    first_wait, second_wait = calls[1] - calls[0], calls[2] - calls[1]
    assert 0.1 <= first_wait < 0.1 + 0.25
    assert 0.3 <= second_wait < 0.3 + 0.25


def test_between_attempts_the_job_is_queued():
    job, calls = flaky(1, retries=1, retry_delay=0.5)
    j = job()
    wait_for(lambda: len(calls) == 1 and j.status == "queued" and j.attempt == 2)
    assert j.wait(10) and j.status == "done"


def test_a_cancel_is_never_retried():
    started = threading.Event()

    @background(retries=3, retry_delay=0.01)
    def job():
        started.set()
        while True:
            pass

    j = job()
    assert started.wait(10)
    j.cancel()
    assert j.wait(10) and j.status == "cancelled" and j.attempt == 1


def test_a_cancel_while_waiting_for_the_next_attempt_ends_it_cancelled():
    job, calls = flaky(1, retries=1, retry_delay=30)
    j = job()
    wait_for(lambda: j.status == "queued" and j.attempt == 2)
    assert j.cancel()
    assert j.wait(5) and j.status == "cancelled" and len(calls) == 1


def test_an_attempt_that_times_out_is_retried():
    attempts = []

    @background(retries=1, retry_delay=0.01, timeout=0.2)
    def job():
        attempts.append(1)
        if len(attempts) == 1:
            while True:
                pass
        return "second"

    j = job()
    assert j.wait(10) and j.status == "done" and j.result == "second" and j.attempt == 2


def test_retries_must_be_a_whole_number():
    with pytest.raises(ValueError):
        background(retries=-1)
    with pytest.raises(ValueError):
        background(retry_delay="soon")


def test_a_process_job_is_retried_in_a_new_process(tmp_path):
    j = processjobs.fails_twice(str(tmp_path / "count"))
    assert j.wait(20)
    assert j.status == "done" and j.result == 3 and j.attempt == 3
    assert j.output == "attempt 1\n--- attempt 2 of 3 ---\nattempt 2\n--- attempt 3 of 3 ---\nattempt 3\n"


def test_the_json_view_says_which_attempt_of_how_many():
    import json

    import web

    from web_background import backgrounder

    job, calls = flaky(1, retries=2, retry_delay=0.01)

    class page:
        @backgrounder
        def GET(self):
            job()

    app = web.application(("/", "page"), {"page": page})
    location = app.request("/").headers["Location"].split("/", 3)[-1]
    job_id = location.rsplit("_t=", 1)[1]
    from web_background import threaddb
    assert threaddb[job_id].wait(10)
    state = json.loads(app.request("/" + location + "&_format=json").data)
    assert state["status"] == "done" and state["attempt"] == 2 and state["attempts"] == 3
