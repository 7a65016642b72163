"""Output capture: each job's thread writes to its job, everything else is untouched."""
import io
import logging
import sys
import threading

import pytest

from conftest import wait_for
from web_background import Thread, background, progress, run_process
from web_background import capture


def test_job_output_collects_what_the_job_prints():
    @background
    def job():
        print("hello")
        sys.stderr.write("to stderr\n")
        print("bye")

    j = job()
    assert j.wait(10)
    assert j.output == "hello\nto stderr\nbye\n"


def test_other_threads_output_goes_where_it_went_before(capsys, gate):
    started = threading.Event()

    @background
    def job():
        started.set()
        gate.wait(10)
        print("inside")

    j = job()
    assert started.wait(10)
    print("outside")
    gate.set()
    assert j.wait(10)
    assert "outside" not in j.output
    assert capsys.readouterr().out == "outside\n"
    assert j.output == "inside\n"


def test_twenty_jobs_printing_at_once_never_mix_a_line():
    barrier = threading.Barrier(20, timeout=10)

    @background
    def job(n):
        barrier.wait()
        for i in range(300):
            print("job %d line %d" % (n, i))

    from web_background import configure
    configure(workers=20)
    jobs = [job(n) for n in range(20)]
    for n, j in enumerate(jobs):
        assert j.wait(20)
        assert j.output == "".join("job %d line %d\n" % (n, i) for i in range(300))


def test_log_records_go_to_the_job_and_to_the_apps_handlers():
    seen = io.StringIO()
    handler = logging.StreamHandler(seen)
    logger = logging.getLogger("test.app")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        @background
        def job():
            logger.info("working on %s", "it")

        j = job()
        assert j.wait(10)
        assert j.output == "INFO:test.app:working on it\n"
        assert seen.getvalue() == "working on it\n"
    finally:
        logger.removeHandler(handler)


def test_handlers_added_after_the_first_job_still_get_records():
    @background
    def first():
        pass

    assert first().wait(10)
    seen = io.StringIO()
    handler = logging.StreamHandler(seen)
    logging.getLogger("test.late").addHandler(handler)
    logging.getLogger("test.late").setLevel(logging.WARNING)
    try:
        @background
        def job():
            logging.getLogger("test.late").warning("late handler")

        j = job()
        assert j.wait(10)
        assert j.output == "WARNING:test.late:late handler\n"
        assert seen.getvalue() == "late handler\n"
    finally:
        logging.getLogger("test.late").removeHandler(handler)


def test_a_stderr_handler_made_after_the_first_job_writes_to_the_server_and_the_record_once_to_the_job(capsys):
    @background
    def first():
        pass

    assert first().wait(10)  # the capture is in place: sys.stderr is its proxy now
    logger = logging.getLogger("test.stderr")
    handler = logging.StreamHandler()  # made now, on sys.stderr: the proxy
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        @background
        def job():
            logger.warning("only once")

        j = job()
        assert j.wait(10) and j.status == "done", j.error
        assert j.output == "WARNING:test.stderr:only once\n"  # once, not twice
        assert capsys.readouterr().err.count("only once") == 1  # and in the server's stderr
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_log_records_outside_jobs_are_not_captured():
    @background
    def job(done):
        done.wait(10)

    done = threading.Event()
    j = job(done)
    logging.getLogger("test.outside").warning("not mine")
    done.set()
    assert j.wait(10)
    assert j.output == ""


def test_writing_bytes_raises_type_error_like_a_text_stream():
    @background
    def job():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.write(b"bytes")
            except TypeError as e:
                print("TypeError" if "bytes" in str(e) else "other message")
        assert sys.stdout.write("abc") == 3  # and str is counted as a text stream counts it

    j = job()
    assert j.wait(10)
    assert j.status == "done", j.error
    assert j.output == "TypeError\nTypeError\nabc"


def test_bytes_written_to_stdout_and_stderr_buffers_land_in_the_job_in_order(capsys):
    @background
    def job():
        print("text 1")
        sys.stdout.buffer.write(b"bytes 2\n")
        sys.stderr.buffer.write("bytes 3 \u00e9\n".encode())
        sys.stdout.buffer.flush()
        print("text 4")

    j = job()
    assert j.wait(10) and j.status == "done", j.error
    assert j.output == "text 1\nbytes 2\nbytes 3 \u00e9\ntext 4\n"
    out = capsys.readouterr()
    assert "bytes" not in out.out and "bytes" not in out.err


def test_a_character_split_across_two_byte_writes_is_decoded_whole_and_bad_bytes_replaced():
    @background
    def job():
        euro = "\u20ac".encode()  # three bytes
        sys.stdout.buffer.write(euro[:1])
        sys.stdout.buffer.write(euro[1:] + b" \xff!\n")

    j = job()
    assert j.wait(10) and j.status == "done", j.error
    assert j.output == "\u20ac \ufffd!\n"


def test_bytes_outside_jobs_go_to_the_real_stream():
    capture.install()
    router = vars(sys)["stdout"]  # what print() and tracebacks write through
    assert router is not sys.stdout
    assert router.buffer is sys.stdout.buffer


def test_the_router_passes_stream_attributes_through():
    capture.install()
    proxy, real = vars(sys)["stdout"], sys.stdout
    assert isinstance(proxy, io.TextIOBase)
    assert proxy.encoding == real.encoding
    assert proxy.isatty() == real.isatty()
    try:
        expected = real.fileno()
    except (OSError, io.UnsupportedOperation, AttributeError) as e:
        with pytest.raises(type(e)):
            proxy.fileno()
    else:
        assert proxy.fileno() == expected
    proxy.flush()
    assert proxy.write("") == 0


def test_a_stream_replaced_after_import_gets_unrouted_output_and_jobs_still_capture():
    capture.install()
    saved = sys.stdout
    replacement = io.StringIO()
    sys.stdout = replacement
    try:
        @background
        def job():
            print("in job")

        j = job()
        assert j.wait(10)
        print("after replace")
        assert j.output == "in job\n"
        assert sys.stdout is replacement
        assert replacement.getvalue() == "after replace\n"
    finally:
        sys.stdout = saved


def test_thread_helper_sends_a_child_threads_output_to_the_job():
    @background
    def job():
        t = Thread(target=lambda: print("from child thread"))
        t.start()
        t.join()
        print("parent")

    j = job()
    assert j.wait(10)
    assert j.output == "from child thread\nparent\n"


def test_run_process_copies_a_child_process_output_into_the_job():
    @background
    def job():
        done = run_process([sys.executable, "-c", "print('from child'); import sys; sys.exit(3)"])
        print("exit", done.returncode)

    j = job()
    assert j.wait(20)
    assert j.output == "from child\nexit 3\n"


def test_a_reused_pool_thread_starts_each_job_with_its_own_output():
    from web_background import configure
    configure(workers=1)

    @background
    def job(n):
        print("job %d" % n)
        return threading.get_ident()

    jobs = [job(n) for n in range(5)]
    for n, j in enumerate(jobs):
        assert j.wait(10)
        assert j.output == "job %d\n" % n
    assert len({j.result for j in jobs}) == 1  # the same thread ran them all


def test_a_plain_thread_started_by_a_job_writes_to_the_job(capsys):
    @background
    def job():
        t = threading.Thread(target=lambda: print("from plain thread"))
        t.start()
        t.join()

    j = job()
    assert j.wait(10) and j.status == "done", j.error
    assert j.output == "from plain thread\n"
    assert "from plain thread" not in capsys.readouterr().out


def test_thread_pool_workers_and_the_threads_they_start_write_to_the_job():
    from concurrent.futures import ThreadPoolExecutor

    def work(i):  # one write per line: print() writes the line and its end apart
        sys.stdout.write("task %d\n" % i)
        inner = threading.Thread(target=lambda: sys.stdout.write("inner %d\n" % i))
        inner.start()
        inner.join()

    @background
    def job():
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(work, range(6)))

    j = job()
    assert j.wait(10) and j.status == "done", j.error
    assert sorted(j.output.splitlines()) == sorted(["task %d" % i for i in range(6)] + ["inner %d" % i for i in range(6)])


def test_a_thread_started_by_a_job_reports_the_jobs_progress():
    @background
    def job():
        t = threading.Thread(target=lambda: progress(3, 4, "from a thread"))
        t.start()
        t.join()

    j = job()
    assert j.wait(10) and j.status == "done", j.error
    assert j.progress == {"done": 3, "total": 4, "message": "from a thread"}


def test_a_thread_that_outlives_its_job_writes_to_the_server_output_again(capsys, gate):
    started = threading.Event()
    threads = []

    def lingering():
        print("while the job runs")
        started.set()
        gate.wait(10)
        print("after the job ended")

    @background
    def job():
        t = threading.Thread(target=lingering)
        threads.append(t)
        t.start()
        assert started.wait(10)

    j = job()
    assert j.wait(10) and j.status == "done", j.error
    gate.set()
    threads[0].join(10)
    assert j.output == "while the job runs\n"
    assert "after the job ended" in capsys.readouterr().out


def test_the_thread_helper_stays_as_an_alias_of_threading_thread():
    assert Thread is threading.Thread


def test_cancel_reaches_threads_started_with_the_helper(gate):
    from web_background import Cancelled
    reached = threading.Event()
    seen = []

    def child():
        reached.set()
        gate.wait(10)
        try:
            print("after cancel")
        except Cancelled:
            seen.append("cancelled")

    @background
    def job():
        t = Thread(target=child)
        t.start()
        t.join()

    j = job()
    assert reached.wait(10)
    j.cancel()
    gate.set()
    assert j.wait(10)  # the job's own thread is stopped at once, in t.join()
    wait_for(lambda: seen == ["cancelled"])  # and the helper thread at its next write
    assert "after cancel" not in j.output
