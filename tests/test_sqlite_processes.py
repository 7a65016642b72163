"""The SQLite store shared by real processes: gunicorn workers, kill -9, restarts, the CLI."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from web_background import threaddb
from web_background.jobs import get_runner
from web_background.records import HEARTBEAT_TIMEOUT
from servers import ROOT, Server, free_port, get, webpy_example
from conftest import store_url, wait_for

pytestmark = pytest.mark.stores("sqlite")


@pytest.fixture
def db_url(tmp_path):
    return store_url("sqlite", tmp_path)  # the same file this test process is configured with


def gunicorn(port, db_url, workers=4, preload=False, **env):
    argv = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", "127.0.0.1:%d" % port,
            "--graceful-timeout", "2"]
    if preload:
        argv += ["--preload", "--chdir", os.path.join(ROOT, "tests"), "preload_app:application"]
    else:
        argv += ["--chdir", os.path.join(ROOT, "examples"), "application"]
    return Server(argv, port, env=dict(env, WEB_BACKGROUND_STORE=db_url))


def start_job(server):
    status, headers, _ = get(server.url + "/")
    assert status == 303
    return headers["Location"]


def poll(location, offset=0):
    status, _, body = get(location + "&_format=json&_offset=%d" % offset)
    assert status == 200, (status, body)
    return json.loads(body)


def procjobs(db_url, *args):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "procjobs.py"), db_url] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("preload", [False, True], ids=["fork-then-import", "preload"])
def test_any_gunicorn_worker_serves_the_job_to_200_polls_with_output_only_growing(db_url, preload):
    with gunicorn(free_port(), db_url, preload=preload, EXAMPLE_STEPS="40", EXAMPLE_DELAY="0.05") as server:
        location = start_job(server)
        seen = ""
        for _ in range(200):
            status, _, body = get(location + "&_format=text")
            assert status == 200, body
            text = body.decode()
            assert text.startswith(seen)
            seen = text
        wait_for(lambda: poll(location)["status"] == "done", timeout=20)
        assert poll(location)["output"].count("\n") == 2 + 40


def test_kill_9_of_the_worker_running_a_job_marks_it_interrupted_keeping_its_output(db_url):
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", "127.0.0.1:%d" % port,
            "--graceful-timeout", "2", "--chdir", os.path.join(ROOT, "tests"), "apps:application"]
    with Server(argv, port, env=dict(WEB_BACKGROUND_STORE=db_url)) as server:
        held = {}
        holder = threading.Thread(target=lambda: held.update(r=get(server.url + "/slowticker?hold=1.5")))
        holder.start()
        time.sleep(0.3)  # one worker is now holding /slowticker: the next request goes to the other
        victim = get(server.url + "/ticker")[1]["Location"]
        holder.join(15)
        survivor = held["r"][1]["Location"]
        victim_id, survivor_id = victim.rsplit("_t=", 1)[1], survivor.rsplit("_t=", 1)[1]
        victim_runner = get_runner().store.get(victim_id)["runner"]
        assert get_runner().store.get(survivor_id)["runner"] != victim_runner
        wait_for(lambda: poll(victim)["output"].count("\n") >= 5)
        before = poll(victim)["output"]
        os.kill(int(victim_runner.split("@")[0]), signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: poll(victim)["status"] == "interrupted", timeout=HEARTBEAT_TIMEOUT + 5)
        assert time.monotonic() - killed_at <= HEARTBEAT_TIMEOUT + 5
        assert poll(victim)["output"].startswith(before)
        survivor_job = threaddb[survivor_id]
        assert survivor_job.status == "running"
        survivor_job.cancel()
        assert survivor_job.wait(10) and survivor_job.status == "cancelled"
        fresh = get(server.url + "/")[1]["Location"]  # still serving, jobs still run
        wait_for(lambda: poll(fresh)["status"] == "done")


def test_finished_jobs_are_served_after_a_restart(db_url):
    port = free_port()
    with webpy_example(port, EXAMPLE_STEPS="3", EXAMPLE_DELAY="0", WEB_BACKGROUND_STORE=db_url) as server:
        location = start_job(server)
        wait_for(lambda: poll(location)["status"] == "done")
        before = poll(location)
    with webpy_example(port, WEB_BACKGROUND_STORE=db_url) as server:
        after = poll(location)
        assert after == before and after["output"].count("\n") == 5
        status, headers, body = get(location)
        assert status == 200 and b"hit f5 to refresh!" in body


def test_two_processes_writing_at_once_lose_no_line_and_never_lock(db_url):
    lines = 20000
    procs = [procjobs(db_url, "numbered", "3", str(lines)) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err, err
    for out, _ in outs:
        ended = json.loads(out.splitlines()[-1])
        for job_id, status in ended:
            assert status == "done"
            got = threaddb[job_id].output.splitlines()
            tag = got[0].split()[0]
            assert got == ["%s %06d" % (tag, i) for i in range(lines)]


def test_output_written_in_one_process_is_read_by_another_while_the_job_runs(db_url):
    proc = procjobs(db_url, "endless")
    try:
        job = threaddb[json.loads(proc.stdout.readline())[0]]
        wait_for(lambda: job.output.count("tick") >= 3)
        assert job.status == "running"
    finally:
        proc.kill()
        proc.communicate()


def test_cancel_from_another_process_stops_the_job(db_url):
    proc = procjobs(db_url, "endless")
    try:
        job = threaddb[json.loads(proc.stdout.readline())[0]]
        wait_for(lambda: "tick 1\n" in job.output)
        assert job.cancel() is True
        assert job.wait(10)
        assert job.status == "cancelled"
        out, err = proc.communicate(timeout=10)
        assert json.loads(out.splitlines()[-1]) == [[job.id, "cancelled"]]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "web_background"] + list(args), cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, **(env or {})))


def test_cli_lists_shows_tails_cancels_and_purges(db_url):
    proc = procjobs(db_url, "endless")
    try:
        job_id = json.loads(proc.stdout.readline())[0]
        wait_for(lambda: "tick 2\n" in threaddb[job_id].output)
        listed = cli("--store", db_url, "list")
        assert listed.returncode == 0 and job_id in listed.stdout and "running" in listed.stdout
        shown = cli("--store", db_url, "show", job_id)
        assert shown.returncode == 0 and "status:   running" in shown.stdout and "tick 0\n" in shown.stdout
        tail = subprocess.Popen([sys.executable, "-m", "web_background", "--store", db_url, "tail", job_id,
                                 "--timeout", "30"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        assert tail.stdout.readline() == "tick 0\n"
        cancelled = cli("--store", db_url, "cancel", job_id)
        assert cancelled.returncode == 0, cancelled.stderr
        out, err = tail.communicate(timeout=30)
        assert tail.returncode == 1 and "[job cancelled]" in err, err
        purged = cli("--store", db_url, "purge")
        assert purged.returncode == 0 and "dropped 1 finished jobs" in purged.stdout
        assert job_id not in cli("--store", db_url, "list").stdout
    finally:
        proc.kill()
        proc.communicate()


def test_cli_gives_a_clear_error_for_a_missing_or_corrupt_database(tmp_path):
    missing = cli("--store", "sqlite:///%s" % (tmp_path / "missing.db"), "list")
    assert missing.returncode != 0 and "no job database" in missing.stderr and "Traceback" not in missing.stderr
    bad = tmp_path / "bad.db"
    bad.write_text("not a database " * 100)
    corrupt = cli("--store", "sqlite:///%s" % bad, "list")
    assert corrupt.returncode != 0 and "not a database" in corrupt.stderr and "Traceback" not in corrupt.stderr
    unknown = cli("--store", "sqlite:///%s" % (tmp_path / "jobs.db"), "show", "nope")
    assert unknown.returncode == 1 and "no such job" in unknown.stderr


def test_cli_retries_an_ended_job_as_a_new_one_and_filters_the_list(db_url, tmp_path):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "procjobs.py"), db_url, "fails_once",
                           str(tmp_path / "marker")], capture_output=True, text=True, timeout=60)
    failed_id, status = json.loads(done.stdout.splitlines()[-1])[0]
    assert status == "failed"
    retried = cli("--store", db_url, "retry", failed_id, "--timeout", "30", env={"PYTHONPATH": ROOT + "/tests"})
    assert retried.returncode == 0, retried.stderr
    new_id = retried.stdout.splitlines()[0]
    assert new_id != failed_id and "succeeded" in retried.stdout and "[job done]" in retried.stderr
    only_failed = cli("--store", db_url, "list", "--status", "failed")
    assert failed_id in only_failed.stdout and new_id not in only_failed.stdout
    by_name = cli("--store", db_url, "list", "--name", "fails_once")
    assert failed_id in by_name.stdout and new_id in by_name.stdout
    assert new_id not in cli("--store", db_url, "list", "--name", "endless").stdout
    running = cli("--store", db_url, "retry", "no-such-job")
    assert running.returncode == 1 and "no such job" in running.stderr
