"""Test suites nobody here wrote, run as usual and again while a thread job and a
process job print throughout (tests/other_suites/jobs_throughout.py): the
same tests pass, each prints the same, and the jobs keep every line."""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import needs, processes_running

pytestmark = pytest.mark.stores("memory")  # the suites run in processes of their own
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
USER_SUITE = os.path.join(HERE, "other_suites", "user_suite.py")
WEBPY_TESTS = os.environ.get("WB_WEBPY_TESTS", os.path.join(ROOT, ".venv", "web.py-0.76", "tests"))


def run_both(args, suite, tmp_path, at_once=True):
    """Run pytest ``args`` on the suite at ``suite`` (a file or a tests/ folder)
    twice, each in a folder of its own: without the package, and with jobs
    printing; ``at_once``: both together.  Their reports and terminal output."""
    procs = {}
    for mode in ("plain", "jobs"):
        if not at_once and procs:
            procs["plain"][1].wait(240)
        cwd = tmp_path / mode
        cwd.mkdir()
        os.symlink(suite, cwd / os.path.basename(suite))  # a suite's own files only: the installed web.py is tested
        report = str(tmp_path / ("%s.json" % mode))
        env = dict(os.environ, WB_SUITE_REPORT=report, WB_SUITE_JOBS="1" if mode == "jobs" else "0",
                   PYTHONPATH=os.pathsep.join([os.path.join(HERE, "other_suites"), ROOT]))
        procs[mode] = (report, subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "jobs_throughout", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q", *args,
             os.path.basename(suite)], cwd=str(cwd), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True))
    results = {}
    try:
        for mode, (report, proc) in procs.items():
            terminal, _ = proc.communicate(timeout=240)
            with open(report) as f:
                results[mode] = json.load(f), terminal
    finally:
        for _, proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    wait_gone(str(tmp_path))
    return results["plain"], results["jobs"]


def wait_gone(marker):
    """The fork server started by the jobs run ends with it; kill what is left (by pid)."""
    from conftest import wait_for

    try:
        wait_for(lambda: not processes_running(marker), timeout=10)
    finally:
        for pid in processes_running(marker):
            os.kill(pid, 9)


def steady(text):
    """Output with what differs from run to run made equal: numbers (web.db's query
    timings), addresses, and the random tokens of web.py's session tests."""
    return re.sub(r"[A-Za-z0-9+/=]{24,}|0x[0-9a-f]+|\d+(\.\d+)?", "N", text)


def assert_same_and_kept(plain, jobs):
    (before, _), (after, terminal) = plain, jobs
    assert before["exitstatus"] == 0 and after["exitstatus"] == 0, terminal
    assert len(before["tests"]) > 5
    assert {k: t["outcomes"] for k, t in after["tests"].items()} == {k: t["outcomes"] for k, t in before["tests"].items()}
    for nodeid, test in before["tests"].items():
        assert {k: steady(after["tests"][nodeid][k]) for k in ("out", "err", "log")} == \
            {k: steady(test[k]) for k in ("out", "err", "log")}, nodeid
    assert "tick" not in terminal
    for kind in ("thread", "process"):
        job = after["jobs"][kind]
        assert job["status"] == "done" and job["printed"] > 10 and job["complete"], (kind, job)


def test_web_pys_own_suite_passes_and_prints_the_same_while_jobs_print(tmp_path):
    if not os.path.isdir(WEBPY_TESTS):
        needs("web.py 0.76's test suite (scripts/test.sh unpacks its sdist into .venv)", WEBPY_TESTS)
    plain, jobs = run_both([], WEBPY_TESTS, tmp_path, at_once=False)  # its server tests take port 8080
    assert len(plain[0]["tests"]) >= 69
    assert_same_and_kept(plain, jobs)


def test_a_user_style_suite_passes_and_prints_the_same_while_jobs_print(tmp_path):
    plain, jobs = run_both([], USER_SUITE, tmp_path)
    assert_same_and_kept(plain, jobs)
    assert jobs[0]["tests"]["user_suite.py::test_plain_prints_are_the_tests_own"]["out"] == "hello plain\n"


def test_a_user_style_suite_run_with_s_prints_its_own_lines_and_no_jobs(tmp_path):
    plain, jobs = run_both(["-s"], USER_SUITE, tmp_path)
    (before, plain_terminal), (after, terminal) = plain, jobs
    assert after["exitstatus"] == 0, terminal
    assert "hello plain\n" in terminal and "greeted plain\n" in terminal
    assert [line for line in terminal.splitlines() if "hello" in line or "greeted" in line] == \
        [line for line in plain_terminal.splitlines() if "hello" in line or "greeted" in line]
    assert "tick" not in terminal
    assert all(after["jobs"][kind]["complete"] for kind in ("thread", "process")), after["jobs"]
