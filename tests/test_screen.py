"""What the page shows of programs that draw on a terminal (tqdm, rich, click,
colorama, pip, apt, docker), as thread and process jobs, beside a terminal
emulator (pyte) fed the same output; and what ``tty`` gives a job."""
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from web_background import background, configure
from web_background.terminal import HEIGHT, WIDTH, render

import apps
import screen_jobs
from screen_oracle import assert_same, page_rows, pyte_rows, text_of
from servers import ROOT

pytestmark = pytest.mark.stores("memory")  # what a job is told and the page shows do not depend on the store
PRODUCERS = sorted(screen_jobs.PRODUCERS)
TTY_SIZE = (120, 40)  # the default tty_size


def page_of(job):
    response = apps.app.request("/?_t=%s" % job.id)
    assert response.status == "200 OK", response.status
    return response.data.decode()


def output_of(page):
    return re.search(r'<pre id="output"[^>]*>(.*?)</pre>', page, re.S).group(1)


def size_of(name):
    return TTY_SIZE if name in screen_jobs.TTY_ONLY else (WIDTH, HEIGHT)


def ran(name, executor):
    job = screen_jobs.start(name, executor)
    assert job.wait(30) and job.status == "done", job.error
    return job


# -- the page beside a terminal ------------------------------------------------------------


@pytest.mark.parametrize("executor", ["threads", "processes"])
@pytest.mark.parametrize("name", PRODUCERS)
def test_the_server_rendered_page_shows_what_a_terminal_shows(name, executor):
    job = ran(name, executor)
    oracle = pyte_rows(job.output, *size_of(name))
    assert oracle, "the producer wrote nothing"
    assert_same(page_rows(output_of(page_of(job))), oracle)


def test_nested_tqdm_bars_end_as_the_outer_bar_and_the_next_line():
    lines = text_of(page_rows(output_of(page_of(ran("tqdm_nested", "processes")))))
    assert len(lines) == 2 and lines[0].startswith("outer: 100%") and lines[1] == "after the bars"


def test_a_rich_status_spinner_leaves_nothing_behind():
    lines = text_of(page_rows(output_of(page_of(ran("rich_status", "threads")))))
    assert lines == ["done and reversed and struck"]


def test_an_apt_status_row_stays_out_of_the_text():
    lines = text_of(page_rows(output_of(page_of(ran("apt_style", "processes")))))
    assert [line for line in lines if line] == ["Unpacking package-%d (1.%d) ..." % (i, i) for i in range(12)]


def test_a_docker_pull_block_ends_with_every_layer_pulled():
    lines = text_of(page_rows(output_of(page_of(ran("docker_pull", "threads")))))
    assert lines[:3] == [layer + ": Pull complete" for layer in ("a3ed95caeb02", "5f70bf18a086", "d3c894b5b2b0")]
    assert lines[3:] == ["Status: done", "DigestOKsha256:0123"]  # "OK" written over ": " after s, u and moves


# -- tty=True beside the same program in a real terminal ----------------------------------------


@pytest.mark.parametrize("name", ["tqdm_nested", "rich_progress", "click_bar", "colorama_moves"])
def test_a_tty_process_job_shows_what_the_same_program_shows_in_a_real_terminal(name):
    job = screen_jobs.in_process_tty(name, False)  # unchanged: the libraries find the terminal themselves
    assert job.wait(30) and job.status == "done", job.error
    in_pty = pyte_rows(screen_jobs.run_in_pty(name, TTY_SIZE), *TTY_SIZE)
    assert text_of(in_pty) == text_of(pyte_rows(job.output, *TTY_SIZE))
    assert_same(page_rows(output_of(page_of(job))), in_pty)


def test_a_tty_job_page_wraps_long_lines_at_the_terminal_width():
    configure(tty_size=(40, 10))

    @background(tty=True)
    def long_line():
        print("x" * 100)

    job = long_line()
    assert job.wait(10)
    page = page_of(job)
    assert '<pre id="output" class="tty">' in page
    assert text_of(page_rows(output_of(page))) == ["x" * 40, "x" * 40, "x" * 20]


# -- what a job is told about its output ----------------------------------------------------------

REPORT = """
import json, os, sys
report = {"stdout": sys.stdout.isatty(), "stderr": sys.stderr.isatty(), "stdin": os.isatty(0),
          "term": os.environ.get("TERM"), "columns": os.environ.get("COLUMNS"), "lines": os.environ.get("LINES"),
          "pager": os.environ.get("PAGER")}
try:
    report["size"] = list(os.get_terminal_size(1))
except OSError:
    report["size"] = None
try:
    open("/dev/tty").close()
    report["dev_tty"] = True
except OSError:
    report["dev_tty"] = False
print(json.dumps(report))
"""


@background(executor="processes", tty=True)
def reports_in_a_tty_process():
    exec(REPORT, {})


@background(executor="processes")
def reports_in_a_process():
    exec(REPORT, {})


def report_of(job):
    assert job.wait(20) and job.status == "done", job.error
    return json.loads(job.output.strip().splitlines()[-1])


def test_a_tty_process_job_writes_to_a_terminal_of_tty_size_that_never_waits_for_input():
    configure(tty_size=(132, 43))
    report = report_of(reports_in_a_tty_process())
    assert report == {"stdout": True, "stderr": True, "stdin": False, "term": "xterm-256color", "columns": "132",
                      "lines": "43", "pager": "cat", "size": [132, 43], "dev_tty": False}


@background(executor="processes", tty=True)
def asks_for_input():
    try:
        input("Continue? [y/N] ")
    except EOFError:
        print("no answer")
    subprocess.run(["sh", "-c", "read answer; echo read: $?"], timeout=10)


def test_a_prompt_in_a_tty_job_ends_at_once_instead_of_waiting():
    job = asks_for_input()
    assert job.wait(20) and job.status == "done", job.error
    assert "no answer" in job.output and "read: 1" in job.output


def test_a_tty_thread_job_sees_a_terminal_on_its_own_streams_only():
    import threading

    seen = {}

    @background(tty=True)
    def asks():
        seen["job"] = (sys.stdout.isatty(), sys.stderr.isatty(), sys.stdout.buffer.isatty())
        helper = threading.Thread(target=lambda: seen.setdefault("its thread", sys.stdout.isatty()))
        helper.start()
        helper.join()

    assert asks().wait(10)
    assert seen == {"job": (True, True, True), "its thread": True}


@background(executor="processes", tty=False)
def reports_in_a_process_without_tty():
    exec(REPORT, {})


def test_configure_tty_makes_jobs_tty_jobs_unless_background_says_otherwise():
    configure(tty=True)
    assert report_of(reports_in_a_process())["stdout"] is True
    assert report_of(reports_in_a_process_without_tty())["stdout"] is False


@pytest.mark.parametrize("bad", [(0, 40), (120,), "120x40", (120, 40.0), (1001, 40), (True, 40)])
def test_a_bad_tty_size_is_refused(bad):
    with pytest.raises(ValueError, match="tty_size"):
        configure(tty_size=bad)


def test_tty_must_be_a_bool():
    with pytest.raises(TypeError, match="tty"):
        background(tty="yes")
    with pytest.raises(TypeError, match="tty"):
        configure(tty=1)


def test_without_tty_no_job_sees_a_terminal_whatever_the_servers_console_is():
    """A server started in a terminal (its fds 0, 1 and 2 a pty of 132x40): thread
    and process jobs alike are told their output is no terminal."""
    import pty

    script = textwrap.dedent("""
        import json, sys
        sys.path[:0] = [%r, %r]
        from web_background import background, configure
        import test_screen
        configure(store="memory://")
        from web_background import background

        @background
        def in_thread():
            return [sys.stdout.isatty(), sys.stderr.isatty()]

        thread_job, process_job = in_thread(), test_screen.reports_in_a_process()
        thread_job.wait(20)
        with open(sys.argv[1], "w") as f:
            json.dump({"server": sys.stdout.isatty(), "thread": thread_job.result,
                       "process": test_screen.report_of(process_job)}, f)
    """ % (os.path.join(ROOT, "tests"), ROOT))
    leader, follower = pty.openpty()
    result = os.path.join(os.environ.get("TMPDIR", "/tmp"), "wb-tty-%d.json" % os.getpid())
    try:
        proc = subprocess.Popen([sys.executable, "-c", script, result], stdin=follower, stdout=follower,
                                stderr=follower, cwd=ROOT)
        os.close(follower)
        try:
            while os.read(leader, 4096):  # drain the console until the server has done
                pass
        except OSError:
            pass
        assert proc.wait(60) == 0
        with open(result) as f:
            got = json.load(f)
    finally:
        os.close(leader)
        if os.path.exists(result):
            os.remove(result)
    assert got["server"] is True
    assert got["thread"] == [False, False]
    assert got["process"]["stdout"] is False and got["process"]["stderr"] is False


def test_render_of_a_tty_job_uses_its_size():
    assert render("x" * 50, 100, 20, 5).text() == "x" * 20 + "\n" + "x" * 20 + "\n" + "x" * 10


def test_tty_settings_come_from_the_environment_too(monkeypatch):
    from web_background import DEFAULTS
    from web_background.jobs import _from_environment

    monkeypatch.setenv("WEB_BACKGROUND_TTY", "1")
    monkeypatch.setenv("WEB_BACKGROUND_TTY_SIZE", "80x24")
    settings = _from_environment(DEFAULTS)
    assert settings["tty"] is True and settings["tty_size"] == (80, 24)
    monkeypatch.setenv("WEB_BACKGROUND_TTY", "maybe")
    with pytest.raises(ValueError, match="WEB_BACKGROUND_TTY"):
        _from_environment(DEFAULTS)
