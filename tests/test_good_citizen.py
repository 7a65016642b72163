"""Around other code: while jobs print, whatever swaps sys.stdout/stderr sees
exactly what it would without the package, a handler that starts no job is a
plain handler, pool threads belong to no job, and the app's log formatters run."""
import contextlib
import doctest
import faulthandler
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import unittest
from concurrent.futures import ThreadPoolExecutor

import pytest
import web

from conftest import needs, processes_running, wait_for
from servers import Server, free_port, get
from web_background import Cancelled, background, backgrounder, capture

pytestmark = pytest.mark.stores("memory")  # nothing here depends on the store
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@background
def ticking(stop, count):
    """Prints a numbered line to stdout and to stderr until ``stop``; ``count[0]``: lines so far."""
    n = 0
    while not stop.is_set() and n < 200_000:
        print("tick %d" % n)
        sys.stderr.write("tock %d\n" % n)
        n += 1
        count[0] = n
        stop.wait(0.0005)
    return n


class Ticker:
    """A job printing throughout; ``lines(k)`` waits until it has printed ``k`` more."""

    def __init__(self):
        self.stop, self.count = threading.Event(), [0]
        self.job = ticking(self.stop, self.count)

    def lines(self, k=20):
        target = self.count[0] + k
        wait_for(lambda: self.count[0] >= target)

    def finish(self):
        """Stop it; assert it kept every line it printed, whole and in order."""
        self.stop.set()
        assert self.job.wait(10) and self.job.status == "done", self.job.error
        n = self.job.result
        assert n > 0
        assert self.job.output == "".join("tick %d\ntock %d\n" % (i, i) for i in range(n))


@pytest.fixture
def ticker():
    t = Ticker()
    t.lines(1)
    yield t
    t.stop.set()
    t.job.wait(10)


def no_ticks(text):
    return "tick" not in text and "tock" not in text


# -- 1. routing that survives any swap ----------------------------------------


def test_capsys_gets_exactly_what_the_test_printed_while_a_job_prints(capsys, ticker):
    print("from the test")
    ticker.lines()
    sys.stderr.write("to stderr\n")
    ticker.lines()
    out = capsys.readouterr()
    assert (out.out, out.err) == ("from the test\n", "to stderr\n")
    ticker.finish()


def test_capfd_gets_exactly_what_the_test_printed_while_a_job_prints(capfd, ticker):
    print("from the test")
    ticker.lines()
    out = capfd.readouterr()
    assert (out.out, out.err) == ("from the test\n", "")
    ticker.finish()


def test_redirect_stdout_and_stderr_collect_only_the_swapping_threads_writes(ticker):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert sys.stdout is out and sys.stderr is err  # the very objects, as without the package
        print("mine")
        ticker.lines()
        print("mine too", file=sys.stderr)
        ticker.lines()
    assert (out.getvalue(), err.getvalue()) == ("mine\n", "mine too\n")
    ticker.finish()


def test_a_thread_outside_jobs_writes_into_the_swapped_in_stream_as_without_the_package(ticker):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        t = threading.Thread(target=print, args=("from another thread",))
        t.start()
        t.join(10)
        ticker.lines()
    assert out.getvalue() == "from another thread\n"
    ticker.finish()


def test_a_job_started_during_a_swap_keeps_earlier_jobs_routed_after_it_is_undone(ticker):
    saved, replacement = sys.stdout, io.StringIO()
    sys.stdout = replacement
    try:
        @background
        def other():
            print("other job")

        j = other()
        assert j.wait(10) and j.output == "other job\n"
        ticker.lines()
    finally:
        sys.stdout = saved
    ticker.lines()
    assert replacement.getvalue() == ""
    ticker.finish()


def test_a_job_that_redirects_its_own_stdout_gets_its_prints_and_no_other_jobs(ticker):
    @background
    def redirecting():
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            print("library output")
            ticker.lines()
        print("captured %r" % buf.getvalue())

    j = redirecting()
    assert j.wait(10) and j.status == "done", j.error
    assert j.output == "captured 'library output\\n'\n"
    ticker.finish()


def test_doctest_sees_its_examples_output_and_reports_to_the_real_stdout(capsys, ticker):
    def example():
        """
        >>> print("seen"); ticker.lines()
        seen
        >>> print("got this")
        expected that
        """

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(example, "example", globs={"ticker": ticker}):
        runner.run(test)
    assert (runner.failures, runner.tries) == (1, 2)
    report = capsys.readouterr().out
    assert "Expected:\n    expected that\nGot:\n    got this\n" in report
    assert no_ticks(report)
    ticker.finish()


def test_unittest_buffer_mode_shows_a_failing_tests_own_output(ticker):
    class Case(unittest.TestCase):
        def test_fails(self):
            print("from the test")
            ticker.lines()
            self.fail("on purpose")

    stream = io.StringIO()
    result = unittest.TextTestRunner(stream=stream, buffer=True).run(unittest.defaultTestLoader.loadTestsFromTestCase(Case))
    assert len(result.failures) == 1
    assert "Stdout:\nfrom the test\n" in result.failures[0][1]
    assert no_ticks(result.failures[0][1]) and no_ticks(stream.getvalue())
    ticker.finish()


def test_faulthandler_and_a_child_on_sys_stdout_write_to_the_swapped_in_files(capfd, ticker):
    faulthandler.dump_traceback(all_threads=False)  # reads sys.stderr in C, writes to its fileno()
    subprocess.run([sys.executable, "-c", "print('from a child')"], stdout=sys.stdout, check=True)
    ticker.lines()
    out = capfd.readouterr()
    assert out.out == "from a child\n"
    assert "test_faulthandler_and_a_child_on_sys_stdout" in out.err and no_ticks(out.err)
    ticker.finish()


def test_streams_keep_their_type_in_jobs_and_their_identity_outside():
    before = sys.stdout
    capture.install()
    assert sys.stdout is before  # outside jobs: the object itself (isatty, fileno, encoding, buffer, reconfigure)

    @background
    def job():
        return isinstance(sys.stdout, io.TextIOBase), isinstance(sys.stderr, io.TextIOBase)

    j = job()
    assert j.wait(10) and j.result == (True, True), j.error


# -- 2. a @backgrounder handler that starts no job ------------------------------


def handler_app(body):
    class page:
        @backgrounder
        def GET(self):
            return body()

    return web.application(("/", "page"), {"page": page})


def test_a_handler_that_starts_no_job_prints_where_it_would_at_once(capsys):
    seen = []

    def body():
        print("printed")
        seen.append(capsys.readouterr().out)  # already there, mid-request
        return "ok"

    response = handler_app(body).request("/")
    assert response.data == b"ok"
    assert seen == ["printed\n"]
    assert capsys.readouterr().out == ""  # and not a second time at the end


def test_web_debug_in_a_handler_that_starts_no_job_stays_on_stderr(capsys):
    def body():
        web.debug("debugging")
        return "ok"

    assert handler_app(body).request("/").data == b"ok"
    out = capsys.readouterr()
    assert "debugging" in out.err and "debugging" not in out.out


def test_log_records_of_a_handler_that_starts_no_job_reach_the_apps_handlers_once_and_nowhere_else(capsys):
    seen = io.StringIO()
    handler = logging.StreamHandler(seen)
    logger = logging.getLogger("userapp")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        def body():
            logger.warning("careful")
            return "ok"

        assert handler_app(body).request("/").data == b"ok"
        assert seen.getvalue() == "careful\n"
        out = capsys.readouterr()
        assert "careful" not in out.out and "careful" not in out.err
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_threads_a_handler_starts_write_where_they_would(capsys, gate):
    threads = []

    def body():
        t = threading.Thread(target=lambda: (print("during"), gate.wait(10), print("after")))
        threads.append(t)
        t.start()
        return "ok"

    assert handler_app(body).request("/").data == b"ok"
    gate.set()
    threads[0].join(10)
    assert capsys.readouterr().out == "during\nafter\n"


def test_a_handler_that_redirects_stdout_collects_its_library_output_and_no_jobs(ticker):
    def library():
        print("library says hi")
        ticker.lines()

    def body():
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            library()
        return buf.getvalue()

    assert handler_app(body).request("/").data == b"library says hi\n"
    ticker.finish()


# -- 3. a thread belongs to a job only while it works for it ----------------------


def test_a_pool_worker_started_inside_a_job_writes_where_it_would_when_reused_from_outside(capsys, gate):
    started = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        @background
        def job():
            pool.submit(print, "for the job").result(10)  # the pool's only worker starts here
            started.set()
            gate.wait(10)

        j = job()
        assert started.wait(10)
        pool.submit(print, "from outside").result(10)  # while the job still runs
        gate.set()
        assert j.wait(10) and j.status == "done", j.error
    assert j.output == "for the job\n"
    assert capsys.readouterr().out == "from outside\n"


def test_a_cancelled_jobs_work_fails_alone_and_the_shared_pool_serves_others(capsys, gate):
    submitted = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        def work():
            gate.wait(10)
            print("after the cancel")

        @background
        def job(futures):
            futures.append(pool.submit(work))
            submitted.set()
            futures[0].result(10)

        futures = []
        j = job(futures)
        assert submitted.wait(10)
        j.cancel()
        assert j.wait(10) and j.status == "cancelled"
        gate.set()
        with pytest.raises(Cancelled):
            futures[0].result(10)  # the job's own work is stopped at its next write
        assert pool.submit(lambda: print("from outside") or 42).result(10) == 42
    assert "after the cancel" not in j.output
    assert capsys.readouterr().out == "from outside\n"


def test_work_a_job_submits_to_a_pool_made_outside_is_the_jobs(capsys):
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(print, "warm-up").result(10)  # the worker starts outside any job

        @background
        def job():
            pool.submit(print, "for the job").result(10)

        j = job()
        assert j.wait(10) and j.status == "done", j.error
    assert j.output == "for the job\n"
    assert capsys.readouterr().out == "warm-up\n"


# -- 4. log records reach the app's handlers unformatted ---------------------------


class OneLine(logging.Formatter):
    def formatException(self, exc_info):
        return "exception: %r" % (exc_info[1],)


def test_the_apps_handlers_format_a_jobs_exception_with_their_own_formatter():
    seen, records = io.StringIO(), []
    handler = logging.StreamHandler(seen)
    handler.setFormatter(OneLine("%(message)s"))
    handler.addFilter(lambda record: records.append((record.exc_text, hasattr(record, "message"))) or True)
    logger = logging.getLogger("test.formats")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        @background
        def job():
            try:
                raise ValueError("bad")
            except ValueError:
                logger.exception("it failed")

        j = job()
        assert j.wait(10) and j.status == "done", j.error
        assert records == [(None, False)]  # the record reached the handler as made: nothing cached on it
        assert seen.getvalue() == "it failed\nexception: ValueError('bad')\n"
        assert j.output.startswith("ERROR:test.formats:it failed\nTraceback (most recent call last):\n")
        assert j.output.endswith("ValueError: bad\n")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_caplog_gets_a_jobs_records_as_from_a_plain_thread(caplog):
    @background
    def job():
        logging.getLogger("test.caplog").warning("from the job")

    with caplog.at_level(logging.INFO):
        j = job()
        assert j.wait(10) and j.status == "done", j.error
    assert [(r.name, r.getMessage()) for r in caplog.records if r.name == "test.caplog"] == [("test.caplog", "from the job")]
    assert j.output == "WARNING:test.caplog:from the job\n"


# -- 5. a process job started while the fork server imports the app -------------

UNGUARDED = '''
import os, sys
depth = int(os.environ.get("WB_TEST_DEPTH", "0"))
if depth > 2:  # without the fix each fork server starts another: end the chain for the test
    os._exit(3)
os.environ["WB_TEST_DEPTH"] = str(depth + 1)
from web_background import background, configure
configure(executor="processes")

@background
def hello():
    print("hello from the job")

job = hello()  # no `if __name__ == "__main__":`: the fork server runs this line too
job.wait(20)
print("STATUS", job.status)
print("ERROR", job.error)
mine = [p for p in os.listdir("/proc") if p.isdigit() and os.path.exists("/proc/%s/cmdline" % p)
        and __file__.encode() in open("/proc/%s/cmdline" % p, "rb").read()]
print("PROCESSES", len(mine))
'''


def test_a_process_job_started_while_the_fork_server_imports_the_script_fails_at_once_and_clearly(tmp_path):
    script = tmp_path / "unguarded_app.py"
    script.write_text(UNGUARDED)
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("WB_TEST_DEPTH", None)
    try:
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env,
                              cwd=str(tmp_path))
        out = done.stdout.splitlines()
        assert "STATUS failed" in out, done.stdout + done.stderr
        assert "a process job was started while web_background's fork server was importing" in done.stdout
        assert 'if __name__ == "__main__":' in done.stdout  # the fix, in the job's error
        assert done.stderr.count("RuntimeError: a process job was started while") == 1  # in the server's log, once
        assert int(out[-1].split()[1]) <= 4  # the web process, one fork server, its spare and the job's child
        wait_for(lambda: not processes_running(str(script)), timeout=10)  # the fork server ends with the app
    finally:
        for pid in processes_running(str(script)):
            os.kill(pid, signal.SIGKILL)


def test_under_gunicorn_a_handler_that_starts_no_job_prints_and_logs_once_beside_gunicorns_own_lines():
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable))
    if gunicorn is None:
        needs("gunicorn", "not installed next to %s" % sys.executable)
    port = free_port()
    argv = [gunicorn, "--workers", "1", "--worker-class", "sync", "--bind", "127.0.0.1:%d" % port,
            "--access-logfile", "-", "--chdir", os.path.join(ROOT, "tests"), "citizen_app:application"]
    with Server(argv, port) as server:
        status, headers, _ = get(server.url + "/job")
        assert status == 303
        page = headers["Location"] + "&_format=json"
        wait_for(lambda: json.loads(get(page)[2])["status"] == "done")
        status, _, body = get(server.url + "/plain")
        assert (status, body) == (200, b"plain answer")
        wait_for(lambda: '"GET /plain HTTP/1.1" 200' in server.output())
        lines = server.output().splitlines()
    assert lines.count("APP userapp handler record") == 1  # through the app's handler, once
    assert not [line for line in lines if line.startswith(("WARNING:", "INFO:"))]  # no second copy of any record
    assert lines.count("handler print") == 1
    assert lines.count("before the job") == 1  # a handler's prints go where they would, and begin its job
    assert "job line" not in lines  # the job's output is the job's
    assert sum('"GET /job HTTP/1.1" 303' in line for line in lines) == 1  # gunicorn's own lines stay its own
