"""A user's own tests of code that prints and logs, in the usual pytest ways
(tests/test_other_suites.py runs it with and without jobs printing, and with -s)."""
import contextlib
import io
import logging
import sys
import time


def greet(name):
    print("hello", name)
    sys.stderr.write("greeted %s\n" % name)
    logging.getLogger("user").warning("greeted %s", name)
    time.sleep(0.05)  # jobs print meanwhile


def test_plain_prints_are_the_tests_own():
    greet("plain")


def test_capsys_sees_what_the_test_printed(capsys):
    greet("capsys")
    out = capsys.readouterr()
    assert (out.out, out.err) == ("hello capsys\n", "greeted capsys\n")


def test_capfd_sees_what_the_test_printed(capfd):
    greet("capfd")
    out = capfd.readouterr()
    assert out.out == "hello capfd\n"
    assert out.err.startswith("greeted capfd\n")  # the log record follows, with -s


def test_caplog_gets_the_record_once(caplog):
    greet("caplog")
    assert [r.getMessage() for r in caplog.records] == ["greeted caplog"]


def test_redirect_stdout_collects_what_the_call_printed():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        greet("redirect")
    assert buf.getvalue() == "hello redirect\n"


def test_redirect_stderr_collects_what_the_call_wrote():
    buf = io.StringIO()
    with contextlib.redirect_stderr(buf):
        greet("stderr")
    assert buf.getvalue().startswith("greeted stderr\n")
