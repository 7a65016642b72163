"""Jobs run by real `rq worker` processes, served by real web processes, through a real Redis."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from web_background import StoreError, background, configure, threaddb
from web_background.jobs import get_runner
from web_background.records import HEARTBEAT_TIMEOUT

import rqjobs
from conftest import needs, wait_for
from servers import ROOT, RedisServer, Server, free_port, get

pytestmark = pytest.mark.stores("redis")
CLUSTER = os.path.join(ROOT, "examples", "cluster")


def rq_command():
    found = shutil.which("rq", path=os.path.dirname(sys.executable)) or shutil.which("rq")
    if found is None:
        needs("rq", "the rq command is not installed")
    return found


class Workers:
    """Stock `rq worker` processes (the default forking Worker) for the test."""

    def __init__(self, redis_url, queues, path, count=1, options=(), env=None, console=None):
        self.redis_url, self.procs = redis_url, []
        env = dict(os.environ, WEB_BACKGROUND_STORE=redis_url, PYTHONPATH=ROOT, **(env or {}))
        for _ in range(count):
            self.procs.append(subprocess.Popen(
                [rq_command(), "worker", "--url", redis_url, "--path", path, "--logging_level", "WARNING"]
                + list(options) + list(queues),
                cwd=path, env=env, stdout=console or subprocess.DEVNULL, stderr=console or subprocess.PIPE,
                start_new_session=True))
        import redis
        import rq

        conn = redis.Redis.from_url(redis_url)
        wait_for(lambda: len(rq.Worker.all(connection=conn)) >= count, timeout=20)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
            if p.stderr is not None:
                p.stderr.close()


@pytest.fixture
def redis_url(url_of_store):
    return url_of_store


@pytest.fixture
def workers(redis_url):
    started = []

    def start(queues=(rqjobs.QUEUE,), path=os.path.join(ROOT, "tests"), count=1, options=(), console=None):
        w = Workers(redis_url, list(queues), path, count, options, console=console)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def cluster_app(redis_url):
    port = free_port()
    return Server([sys.executable, os.path.join(CLUSTER, "app.py"), "127.0.0.1:%d" % port], port,
                  env=dict(WEB_BACKGROUND_STORE=redis_url))


def poll(url):
    status, _, body = get(url + "&_format=json")
    assert status == 200, (status, body)
    return json.loads(body)


def test_a_jobs_output_appears_in_polls_while_an_rq_worker_runs_it(workers):
    workers()
    job = rqjobs.numbered(40, 0.05)
    wait_for(lambda: job.output.count("\n") >= 3)
    assert job.status == "running"
    assert job.wait(30) and job.status == "done" and job.result == 40
    assert job.output == "".join("line %05d\n" % i for i in range(40))


def test_two_web_processes_serve_the_same_rq_job(redis_url, workers):
    workers(queues=[], path=CLUSTER, options=["-c", "worker_settings"], count=2)  # the README's two workers
    with cluster_app(redis_url) as a, cluster_app(redis_url) as b:
        status, headers, _ = get(a.url + "/?steps=5&delay=0.05&name=Ada")
        assert status == 303
        query = headers["Location"].split("?", 1)[1]
        wait_for(lambda: poll(b.url + "/?" + query)["status"] == "done", timeout=30)
        seen_a, seen_b = poll(a.url + "/?" + query), poll(b.url + "/?" + query)
        assert seen_a == seen_b
        lines = seen_b["output"].splitlines()
        assert lines[0] == "queued by 127.0.0.1"
        assert lines[1].startswith("report for Ada, asked from 127.0.0.1, run by worker pid")
        assert len(lines) == 2 + 5


def test_progress_result_and_the_plain_ctx_reach_the_worker(workers):
    import web
    from web_background.web_glue import backgrounder

    class handler:
        @backgrounder
        def POST(self):
            rqjobs.show_ctx()

    app = web.application(("/start", "handler"), {"handler": handler})
    workers()
    response = app.request("/start?x=1", method="POST", data="name=Grace", headers={"REMOTE_ADDR": "10.1.2.3"})
    job = threaddb[response.headers["Location"].rsplit("_t=", 1)[1]]
    assert job.wait(30) and job.status == "done", job.error
    assert job.progress == {"done": 1, "total": 2, "message": "half"}
    assert "path=/start query=?x=1 method=POST" in job.output
    assert "name=Grace\n" in job.output
    assert job.result["pid"] != os.getpid()


def test_an_exception_in_the_worker_fails_the_job_with_its_traceback(workers):
    workers()
    job = rqjobs.failing()
    assert job.wait(30)
    assert job.status == "failed" and "KeyError: 'missing'" in job.error
    assert job.output == "about to fail\n"


def test_kill_9_of_the_worker_mid_job_ends_interrupted_with_its_output_kept(workers):
    w = workers()
    job = rqjobs.numbered(2000, 0.02)
    wait_for(lambda: job.output.count("\n") >= 5)
    before = job.output
    horse = int(get_runner().store.get(job.id)["runner"].split("@")[0])
    os.kill(horse, signal.SIGKILL)
    os.killpg(w.procs[0].pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: job.status == "interrupted", timeout=HEARTBEAT_TIMEOUT + 10)
    assert time.monotonic() - killed <= HEARTBEAT_TIMEOUT + 10
    assert job.output.startswith(before)


def test_cancel_from_the_web_side_stops_the_job_in_the_worker(workers):
    workers()
    job = rqjobs.numbered(5000, 0.01)
    wait_for(lambda: "line 00003" in job.output)
    assert job.cancel() is True
    assert job.wait(20) and job.status == "cancelled"
    assert job.output.count("\n") < 5000


def test_a_cancelled_queued_job_never_starts_on_a_worker(workers):
    job = rqjobs.numbered(3)  # no worker yet: it waits on the queue
    assert job.status == "queued"
    assert job.cancel() is True and job.status == "cancelled"
    workers()
    other = rqjobs.numbered(1)
    assert other.wait(30) and other.status == "done"
    assert job.status == "cancelled" and job.output == "" and job.started is None


def test_a_function_a_worker_cannot_import_is_refused_at_call_time():
    @background(queue="wbtest")
    def nested():
        pass

    with pytest.raises(TypeError, match="module level"):
        nested()
    assert list(threaddb) == []


def test_arguments_that_do_not_pickle_are_refused_at_call_time():
    with pytest.raises(TypeError, match="must pickle"):
        rqjobs.numbered(lambda: 1)
    assert list(threaddb) == []


def test_the_rq_executor_needs_a_redis_store(tmp_path):
    configure(store="sqlite:///%s" % (tmp_path / "x.db"))
    with pytest.raises(ValueError, match="Redis store"):
        rqjobs.numbered(1)


def test_redis_unreachable_fails_fast_with_a_clear_error_and_503():
    import web
    from web_background.web_glue import backgrounder

    configure(store="redis://127.0.0.1:%d/0" % free_port())

    class handler:
        @backgrounder
        def GET(self):
            rqjobs.numbered(1)

    app = web.application(("/", "handler"), {"handler": handler})
    started = time.monotonic()
    with pytest.raises(StoreError):
        rqjobs.numbered(1)
    response = app.request("/")
    assert response.status.startswith("503") and b"Traceback" not in response.data
    poll = app.request("/?_t=%s&_format=json" % ("a" * 22))
    assert poll.status.startswith("503") and b"Traceback" not in poll.data
    assert time.monotonic() - started < 15


def test_polls_answer_503_while_redis_restarts_and_recover_after(tmp_path):
    port = free_port()
    redis = RedisServer(port, tmp_path)
    redis.argv[redis.argv.index("--appendonly") + 1] = "yes"  # keep jobs across the restart
    redis.start()
    try:
        with cluster_app(redis.url) as app:
            configure(store=redis.url)
            job = rqjobs.numbered(1)
            url = app.url + "/?_t=%s&_format=json" % job.id
            assert get(url)[0] == 200
            redis.stop()
            statuses = [get(url)[0] for _ in range(5)]
            assert set(statuses) == {503}
            redis.start()
            wait_for(lambda: get(url)[0] == 200, timeout=20)
            assert json.loads(get(url)[2])["status"] == "queued"
            status, _, _ = get(app.url + "/?steps=1&delay=0")
            assert status == 303  # new work is accepted again
    finally:
        redis.stop()


def test_a_work_horse_shares_the_workers_connection_only_to_the_same_redis(redis_url):
    import redis
    from web_background.stores.redis import RedisStore

    store = RedisStore(redis_url)
    other_db = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/5")
    assert store.share_connection(other_db) is False
    same = redis.Redis.from_url(redis_url)
    assert store.share_connection(same) is True and store.client is same
    store.create({"id": "shared", "status": "queued", "created": time.time()})
    store.append("shared", "through the shared connection\n")
    assert store.read("shared", 0)[0] == "through the shared connection\n"


def test_cancel_interrupts_a_sleeping_rq_job_at_once_and_its_finally_runs(workers):
    workers()
    job = rqjobs.sleeps()
    wait_for(lambda: "sleeping" in job.output, timeout=30)
    asked = time.monotonic()
    assert job.cancel()
    assert job.wait(5) and time.monotonic() - asked < 1.0
    assert job.status == "cancelled"
    assert job.output == "sleeping\nfinally ran\n"


def test_an_rq_job_that_ignores_cancel_has_its_work_horse_stopped_after_cancel_grace(redis_url):
    w = Workers(redis_url, [rqjobs.QUEUE], os.path.join(ROOT, "tests"), env={"WEB_BACKGROUND_CANCEL_GRACE": "0.5"})
    try:
        job = rqjobs.refuses_to_stop()
        wait_for(lambda: "stubborn" in job.output, timeout=30)
        horse = int(job.output.split("pid=")[1].split()[0])
        job.cancel()
        assert job.wait(15)
        assert job.status == "cancelled"
        assert "ignoring the cancel" in job.output
        wait_for(lambda: not os.path.exists("/proc/%d" % horse) or open("/proc/%d/stat" % horse).read().split()[2]
                 == "Z", timeout=10)  # the work-horse is gone
        assert w.procs[0].poll() is None  # and its worker goes on
    finally:
        w.stop()


def test_an_rq_job_past_its_timeout_is_stopped_and_fails_saying_so(workers):
    workers()
    job = rqjobs.sleeps_past_its_timeout()
    assert job.wait(30)
    assert job.status == "failed" and job.error.startswith("the job timed out after 0.5 seconds")
    assert job.output == "started\nfinally ran\n"


def test_an_rq_job_that_fails_twice_then_succeeds_ends_done_with_three_attempts(workers, tmp_path):
    workers()
    job = rqjobs.fails_twice(str(tmp_path / "count"))
    assert job.wait(30)
    assert job.status == "done" and job.result == 3 and job.attempt == 3
    assert job.output == "attempt 1\n--- attempt 2 of 3 ---\nattempt 2\n--- attempt 3 of 3 ---\nattempt 3\n"


def test_an_rq_job_is_told_it_writes_to_no_terminal_unless_tty_and_then_as_a_thread_job(workers):
    """A worker started in a terminal (its stdout and stderr a pty): the job's
    isatty() is False by default, True with tty=True (RQ jobs are as thread jobs)."""
    import pty

    leader, follower = pty.openpty()
    try:
        workers(console=follower)
        plain, tty = rqjobs.isatty_report(), rqjobs.isatty_report_with_tty()
        assert plain.wait(30) and tty.wait(30), (plain.error, tty.error)
        assert plain.result == {"stdout": False, "stderr": False, "worker's fd 1": True}
        assert tty.result == {"stdout": True, "stderr": True, "worker's fd 1": True}
    finally:
        os.close(follower)
        os.close(leader)
