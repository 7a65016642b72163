"""The process executor: each job in a process of its own, forked by the fork
server, with real processes and signals; on every store."""
import os
import subprocess
import sys
import textwrap
import threading

import pytest
import web

from web_background import Busy, background, configure
from web_background.jobs import get_runner

import processjobs as jobs
from conftest import wait_for
from servers import ROOT


def test_a_process_job_runs_in_a_process_of_its_own_and_returns_its_result():
    j = jobs.returns("x")
    assert j.wait(15)
    assert j.status == "done" and j.error is None
    assert j.result["value"] == "x"
    assert j.result["pid"] != os.getpid()
    assert j.result["ppid"] != os.getpid()  # forked by the fork server, never by this (threaded) process


def test_everything_the_job_writes_at_any_level_lands_in_order():
    j = jobs.writes_everywhere()
    assert j.wait(15) and j.status == "done", j.error
    lines = j.output.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == [str(i) for i in range(1, 12)], lines
    assert "WARNING:jobs:6 a log record" in lines or "6 a log record" in lines


def test_nearly_a_million_characters_arrive_whole():
    j = jobs.many_lines(80_000)  # 960,000 characters, within max_output
    assert j.wait(30) and j.status == "done"
    lines = j.output.splitlines()
    assert lines == ["line %06d" % i for i in range(80_000)]


def test_progress_reported_in_a_process_job_reaches_the_record():
    j = jobs.reports_progress()
    wait_for(lambda: j.progress == {"done": 1, "total": 4, "message": "a quarter"}, timeout=15)
    assert j.wait(15) and j.status == "done", j.error
    wait_for(lambda: j.progress == {"done": 3, "total": 4, "message": "three quarters"})


def test_web_ctx_and_input_in_a_process_job_are_the_plain_subset():
    class start:
        def GET(self):
            return jobs.shows_ctx().id

    app = web.application(("/start", "start"), {"start": start})
    job_id = app.request("/start?name=ada", env={"REMOTE_ADDR": "127.0.0.7"}).data.decode()
    j = get_runner().record(job_id) and web.storage(id=job_id)
    from web_background import threaddb
    job = threaddb[j.id]
    assert job.wait(15) and job.status == "done", job.error
    assert job.output == "ip=127.0.0.7 path=/start method=GET name=ada\n"
    assert job.result == []  # no wsgi.input, no environment of the request travels


def test_arguments_that_do_not_pickle_raise_type_error_at_call_time():
    with pytest.raises(TypeError, match="must pickle"):
        jobs.returns(threading.Lock())
    assert len(list(get_runner().store.ids())) == 0  # nothing was created


def test_a_nested_function_is_refused_at_call_time():
    @background(executor="processes")
    def nested():
        pass

    with pytest.raises(TypeError, match="module level"):
        nested()


@pytest.mark.parametrize("how, error", [
    ("os._exit", "the job's process exited with code 3"),
    ("SIGSEGV", "the job's process was killed by SIGSEGV"),
    ("SIGKILL", "the job's process was killed by SIGKILL"),
])
def test_a_crash_fails_the_job_with_what_ended_it_and_keeps_its_output(how, error):
    j = jobs.crashes(how)
    assert j.wait(15)
    assert j.status == "failed" and j.error == error
    assert j.output.startswith("before the crash\n")
    after = jobs.returns(1)  # the server and other jobs go on
    assert after.wait(15) and after.status == "done"


def test_a_segfault_leaves_its_python_traceback_in_the_output():
    j = jobs.crashes("SIGSEGV")
    assert j.wait(15) and j.status == "failed"
    assert "Fatal Python error: Segmentation fault" in j.output and "processjobs.py" in j.output


def test_process_jobs_run_at_a_lower_cpu_priority():
    configure(nice=7)
    j = jobs.priority()
    assert j.wait(15) and j.status == "done"
    assert j.result == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)


def test_at_most_workers_process_jobs_run_at_once_the_rest_wait_queued():
    configure(workers=2, queue_limit=1)
    first, second = jobs.sleeps(), jobs.sleeps()
    wait_for(lambda: first.status == second.status == "running", timeout=15)
    third = jobs.sleeps()
    assert third.status == "queued"
    with pytest.raises(Busy):
        jobs.sleeps()
    first.cancel()
    wait_for(lambda: third.status == "running", timeout=15)
    for j in (second, third):
        j.cancel()
    assert all(j.wait(15) for j in (first, second, third))


def test_functions_of_an_app_run_as_a_script_run_in_processes(tmp_path):
    script = tmp_path / "application.py"
    script.write_text(textwrap.dedent("""
        import os, sys
        sys.path.insert(0, %r)
        from web_background import background, configure

        class Point:
            def __init__(self, x):
                self.x = x

        @background(executor="processes")
        def double(point):
            print("in", __name__, os.getpid() != int(sys.argv[1]))
            return point.x * 2

        if __name__ == "__main__":
            sys.argv.append(str(os.getpid()))
            job = double(Point(21))
            job.wait(20)
            print(job.status, job.result, job.output.strip())
    """ % ROOT))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.stdout.strip() == "done 42 in __mp_main__ True", done.stderr
