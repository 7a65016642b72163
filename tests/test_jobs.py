"""The job lifecycle, cancellation, progress, the pool bounds and retention."""
import re
import threading
import time

import pytest
import web

import web_background
from web_background import Busy, Cancelled, Job, background, configure, progress, threaddb
from web_background.jobs import get_runner

from conftest import wait_for


def test_calling_a_background_function_returns_a_job_at_once(gate):
    @background
    def job():
        gate.wait(10)
        return 42

    j = job()
    assert isinstance(j, Job)
    assert j.status in ("queued", "running")
    assert j.wait(0.01) is False
    gate.set()
    assert j.wait(10) is True
    assert j.status == "done" and j.result == 42 and j.error is None
    assert j.created <= j.started <= j.finished


def test_job_ids_are_url_safe_random_and_never_reused():
    configure(queue_limit=200)

    @background
    def job():
        pass

    ids = [job().id for _ in range(200)]
    assert len(set(ids)) == 200
    for job_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", job_id)  # 16 random bytes at least


def test_an_exception_marks_the_job_failed_with_its_traceback(caplog):
    @background
    def job():
        print("before")
        raise ValueError("boom")

    j = job()
    assert j.wait(10)
    assert j.status == "failed"
    assert "ValueError: boom" in j.error and "Traceback" in j.error
    assert j.output == "before\n"
    assert any("boom" in r.getMessage() for r in caplog.records if r.name == "web_background")


def test_sys_exit_in_a_job_fails_the_job_not_the_process():
    @background
    def job():
        raise SystemExit(1)

    j = job()
    assert j.wait(10)
    assert j.status == "failed" and "SystemExit" in j.error


def test_cancel_raises_cancelled_at_the_next_write(gate):
    reached = threading.Event()
    after = []

    @background
    def job():
        print("one")
        reached.set()
        gate.wait(10)
        try:
            print("two")
        except Exception:  # Cancelled is not an Exception
            after.append("swallowed")
        after.append("not reached")

    j = job()
    assert reached.wait(10)
    assert j.cancel() is True
    gate.set()
    assert j.wait(10)
    assert j.status == "cancelled"
    assert after == []
    assert j.output == "one\n"
    assert issubclass(Cancelled, BaseException) and not issubclass(Cancelled, Exception)


def test_cancel_raises_cancelled_at_the_next_progress_call(gate):
    reached = threading.Event()

    @background
    def job():
        reached.set()
        gate.wait(10)
        progress(1, 2)
        return "finished anyway"

    j = job()
    assert reached.wait(10)
    j.cancel()
    gate.set()
    assert j.wait(10)
    assert j.status == "cancelled" and j.result is None


def test_a_cancelled_queued_job_never_starts(gate):
    configure(workers=1)
    ran = []

    @background
    def blocker():
        gate.wait(10)

    @background
    def queued():
        ran.append(True)

    first = blocker()
    second = queued()
    assert second.status == "queued"
    assert second.cancel() is True
    gate.set()
    assert first.wait(10) and second.wait(10)
    assert second.status == "cancelled" and ran == [] and second.started is None


def test_cancel_of_a_finished_job_returns_false():
    @background
    def job():
        return 1

    j = job()
    assert j.wait(10)
    assert j.cancel() is False and j.status == "done"


def test_progress_is_recorded_and_validated(gate):
    reached = threading.Event()

    @background
    def job():
        progress(3, 10, "three of ten")
        reached.set()
        gate.wait(10)

    j = job()
    assert reached.wait(10)
    assert j.progress == {"done": 3, "total": 10, "message": "three of ten"}
    gate.set()
    with pytest.raises(ValueError):
        progress(-1)
    with pytest.raises(ValueError):
        progress(1, 0)
    with pytest.raises(TypeError):
        progress(1, 2, message=3)
    with pytest.raises(RuntimeError):
        progress(1, 2)  # not inside a job


def test_jobs_past_workers_wait_as_queued(gate):
    configure(workers=2)

    @background
    def job():
        gate.wait(10)

    jobs = [job() for _ in range(4)]
    wait_for(lambda: sum(j.status == "running" for j in jobs) == 2)
    assert [j.status for j in jobs[2:]] == ["queued", "queued"]
    gate.set()
    for j in jobs:
        assert j.wait(10) and j.status == "done"


def test_a_start_past_queue_limit_raises_busy(gate):
    configure(workers=1, queue_limit=2)

    @background
    def job():
        gate.wait(10)

    running = job()
    wait_for(lambda: running.status == "running")
    waiting = [job(), job()]
    with pytest.raises(Busy):
        job()
    assert len(threaddb) == 3  # the refused one left nothing behind
    gate.set()
    for j in [running] + waiting:
        assert j.wait(10)


def test_finished_jobs_are_dropped_ttl_seconds_after_they_finish():
    configure(ttl=0.2)

    @background
    def job():
        return 1

    j = job()
    assert j.wait(10)
    assert j.id in threaddb
    finished_at = time.time()
    wait_for(lambda: j.id not in threaddb, timeout=5)
    assert time.time() - finished_at >= 0.15
    with pytest.raises(LookupError):
        j.status


def test_the_oldest_finished_jobs_go_first_past_max_jobs():
    configure(max_jobs=3)

    @background
    def job():
        pass

    jobs = []
    for _ in range(5):
        jobs.append(job())
        assert jobs[-1].wait(10)
    assert set(threaddb) == {j.id for j in jobs[2:]}


def test_running_and_queued_jobs_are_never_dropped(gate):
    configure(max_jobs=1, ttl=0, workers=1)

    @background
    def job():
        gate.wait(10)

    running, queued = job(), job()
    wait_for(lambda: running.status == "running")
    assert set(threaddb) == {running.id, queued.id}
    gate.set()
    assert running.wait(10) and queued.wait(10)


def test_output_is_capped_at_max_output_keeping_the_newest_and_marking_the_cut():
    configure(max_output=100)

    @background
    def job():
        for i in range(100):
            print("line %03d" % i)  # 9 characters each, 900 in all

    j = job()
    assert j.wait(10)
    out = j.output
    assert out.startswith("[... 800 earlier characters cut ...]\n")
    assert out.endswith("line 099\n")
    assert len(out) - len("[... 800 earlier characters cut ...]\n") == 100


def test_threaddb_is_a_read_only_mapping_of_retained_jobs():
    @background
    def job():
        pass

    j = job()
    assert j.wait(10)
    assert background.threaddb is threaddb
    assert threaddb[j.id] == j
    assert list(threaddb) == [j.id]
    with pytest.raises(TypeError):
        threaddb["x"] = j  # type: ignore[index]
    with pytest.raises(KeyError):
        threaddb["unknown"]


def test_import_makes_web_background_and_web_backgrounder_available():
    assert web.background is web_background.background
    assert web.backgrounder is web_background.backgrounder


def test_configure_rejects_bad_values_and_changes_nothing():
    before = get_runner()
    for bad in (dict(workers=0), dict(queue_limit=-1), dict(ttl=-1), dict(max_output=0), dict(store="nope://")):
        with pytest.raises(ValueError):
            configure(**bad)
    assert get_runner() is before


def test_settings_can_come_from_the_environment(monkeypatch):
    from web_background.jobs import _from_environment
    monkeypatch.setenv("WEB_BACKGROUND_WORKERS", "3")
    monkeypatch.setenv("WEB_BACKGROUND_TTL", "1.5")
    monkeypatch.setenv("WEB_BACKGROUND_STORE", "sqlite:///x.db")
    settings = _from_environment(web_background.DEFAULTS)
    assert settings["workers"] == 3 and settings["ttl"] == 1.5 and settings["store"] == "sqlite:///x.db"
    monkeypatch.setenv("WEB_BACKGROUND_MAX_JOBS", "many")
    with pytest.raises(ValueError, match="WEB_BACKGROUND_MAX_JOBS"):
        _from_environment(web_background.DEFAULTS)


def test_a_job_id_never_starts_with_a_dash_so_the_cli_takes_it_as_an_argument():
    from web_background.runner import new_job_id

    ids = [new_job_id() for _ in range(5000)]  # 1 in 64 started with "-" before: 78 expected here
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == 5000 and all(len(i) == 22 for i in ids)
