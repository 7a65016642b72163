"""The process executor under faults, with real processes and signals: the fork
server killed (-9) or stopped (SIGSTOP), the web process killed, jobs that
each hold only their own channel."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from web_background.executors import forkserver, processes

import faultjobs
from conftest import wait_for
from servers import ROOT

pytestmark = pytest.mark.stores("memory")


def pid_of(job):
    wait_for(lambda: job.output.startswith("pid "))
    return int(job.output.split()[1])


def gone(pid):
    """The process has ended (a zombie no one reaps yet counts as ended)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def channels(pid):
    """The sockets and pipes process ``pid`` holds, as their ``/proc`` link names."""
    held = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except FileNotFoundError:
            continue
        if target.startswith(("socket:", "pipe:")):
            held.add(target)
    return held


@pytest.fixture
def fork_server():
    """Running process jobs' fork server; killed at the end (it may be stopped)."""
    yield lambda: forkserver._server["server"]
    server = forkserver._server.get("server")
    if server is not None:
        forkserver.replace_fork_server(server)


def test_a_job_process_holds_no_other_jobs_channel(tmp_path, fork_server):
    first = faultjobs.waits_for(str(tmp_path / "go"))
    second = faultjobs.waits_for(str(tmp_path / "go"))
    a, b = pid_of(first), pid_of(second)
    own = {name for name in channels(a) if name.startswith("socket:")} | {os.readlink("/proc/%d/fd/1" % a)}
    assert len(own) == 2  # its control socket and its output pipe
    assert not own & channels(b)  # neither is held by the other job's process
    assert sum(1 for name in channels(b) if name.startswith("socket:")) == 1  # its own control socket only
    (tmp_path / "go").touch()
    assert first.wait(10) and second.wait(10)
    assert (first.status, second.status) == ("done", "done")


def test_jobs_run_on_and_end_when_they_end_after_their_fork_server_is_killed(tmp_path, fork_server):
    quick, cancelled, last = (faultjobs.waits_for(str(tmp_path / name)) for name in ("quick", "never", "last"))
    pids = [pid_of(job) for job in (quick, cancelled, last)]
    server = fork_server()
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(5)
    (tmp_path / "quick").touch()
    assert quick.wait(3) and quick.status == "done" and quick.output.endswith("done\n")
    assert last.status == "running"
    assert cancelled.cancel()
    assert cancelled.wait(3) and cancelled.status == "cancelled"
    wait_for(lambda: gone(pids[1]), timeout=3)
    (tmp_path / "last").touch()
    assert last.wait(3) and last.status == "done"
    after = faultjobs.waits_for(str(tmp_path / "quick"))  # a fresh fork server
    assert after.wait(10) and after.status == "done"
    assert fork_server() is not server


@pytest.mark.parametrize("fork_server_first", [False, True], ids=["web process", "fork server, then web process"])
def test_no_job_process_outlives_its_web_process_killed_with_minus_9(tmp_path, fork_server_first):
    script = textwrap.dedent("""
        import os, signal, sys, time
        sys.path[:0] = [%r, %r]
        import faultjobs
        from web_background import configure
        from web_background.executors import forkserver
        configure(store="memory://")
        job = faultjobs.waits_for(%r)
        while not job.output.startswith("pid "):
            time.sleep(0.01)
        print(job.output.split()[1], forkserver._server["server"].process.pid, flush=True)
        time.sleep(60)
    """ % (ROOT, os.path.join(ROOT, "tests"), str(tmp_path / "never")))
    web = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        job_pid, server_pid = map(int, web.stdout.readline().split())
        if fork_server_first:
            os.kill(server_pid, signal.SIGKILL)
            wait_for(lambda: gone(server_pid), timeout=5)
        assert not gone(job_pid)
        web.kill()
        web.wait(5)
        wait_for(lambda: gone(job_pid), timeout=1.5)
        wait_for(lambda: gone(server_pid), timeout=5)
    finally:
        web.kill()
        web.wait(5)


def stopped(fork_server):
    """A fork server that is running, then stopped with SIGSTOP."""
    warm = faultjobs.waits_for("/")  # "/" exists: it ends at once
    assert warm.wait(10) and warm.status == "done"
    server = fork_server()
    os.kill(server.process.pid, signal.SIGSTOP)
    return server


def test_a_job_whose_process_has_not_started_is_cancelled_at_once(tmp_path, fork_server):
    stopped(fork_server)
    job = faultjobs.waits_for(str(tmp_path / "never"))
    wait_for(lambda: job.status == "running")
    assert job.cancel()
    assert job.wait(2) and job.status == "cancelled"


def test_a_job_whose_process_has_not_started_times_out(tmp_path, fork_server):
    stopped(fork_server)
    job = faultjobs.waits_with_a_timeout(str(tmp_path / "never"))
    assert job.wait(4) and job.status == "failed"
    assert "timed out after 1 seconds" in job.error


def test_a_launch_past_its_deadline_fails_and_the_fork_server_is_replaced(tmp_path, fork_server, monkeypatch):
    monkeypatch.setattr(processes, "LAUNCH_TIMEOUT", 1.0)
    server = stopped(fork_server)
    job = faultjobs.waits_for(str(tmp_path / "never"))
    assert job.wait(4) and job.status == "failed"
    assert "did not start within 1 s" in job.error
    wait_for(lambda: gone(server.process.pid), timeout=3)
    after = faultjobs.waits_for("/")
    assert after.wait(10) and after.status == "done"


def test_a_big_result_comes_back_whole():
    job = faultjobs.returns_big(20_000_000)
    assert job.wait(30) and job.status == "done", job.error
    assert job.result == b"r" * 20_000_000


def test_a_result_that_does_not_pickle_keeps_its_repr():
    job = faultjobs.returns_unpicklable(True)
    assert job.wait(10) and job.status == "done", job.error
    assert job.result == "<NoPickle, but a repr>"
    assert job.output == "returning\n"


def test_a_result_with_no_working_repr_gets_a_placeholder_naming_its_type():
    job = faultjobs.returns_unpicklable(False)
    assert job.wait(10) and job.status == "done", job.error
    assert "faultjobs.NoRepr" in job.result
    assert job.output == "returning\n"  # none of the package's own tracebacks


def test_a_process_job_that_catches_its_cancel_ends_cancelled_with_its_result(tmp_path):
    job = faultjobs.catches_cancel(str(tmp_path / "never"))
    pid_of(job)
    assert job.cancel()
    assert job.wait(10) and job.status == "cancelled"
    assert job.result == "cleaned" and job.output.endswith("cleaning up\n")


def test_what_a_fast_printer_holds_in_the_web_process_stays_within_about_twice_max_output():
    from web_background import configure
    from web_background.jobs import get_runner

    configure(max_output=100_000)
    job = faultjobs.prints_megabytes(50)
    wait_for(lambda: job.id in get_runner().local)
    running, held = get_runner().local[job.id], [0]
    while not running.done.is_set():  # bounded by the job's own end (50 MB: seconds)
        held[0] = max(held[0], running.sink.size() + len(running.pending))
    assert job.wait(30) and job.status == "done", job.error
    assert 0 < held[0] <= 2.5 * 100_000 + (1 << 16)  # the sink cut at 1.5x, a flush's batch, one read
    assert job.output.startswith("[... ") and len(job.output) < 100_100

