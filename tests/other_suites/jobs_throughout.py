"""A pytest plugin that runs another suite as usual and reports what it did,
with ``WB_SUITE_JOBS=1`` while a thread job and a process job of
web_background print throughout (tests/test_other_suites.py uses it).

``WB_SUITE_REPORT``: where it writes, as JSON, each test's outcome and captured
output, and what the jobs kept.  Without ``WB_SUITE_JOBS`` it never imports
web_background: the run is the suite as it is without the package.
"""
import json
import os
import time

JOBS = os.environ.get("WB_SUITE_JOBS") == "1"
STOP = os.environ.get("WB_SUITE_REPORT", "report.json") + ".stop"  # the jobs stop once this file exists
_tests = {}
_jobs = {}

if JOBS:
    from web_background import background

    def _print_until_stopped(label, stop, pause):
        n, deadline = 0, time.monotonic() + 300
        while not os.path.exists(stop) and time.monotonic() < deadline:
            print("%s tick %d" % (label, n))
            n += 1
            time.sleep(pause)
        return n

    @background
    def thread_ticks(stop):
        return _print_until_stopped("thread job", stop, 0.005)

    @background(executor="processes")
    def process_ticks(stop):
        return _print_until_stopped("process job", stop, 0.005)


def pytest_sessionstart(session):
    if JOBS:
        _jobs["thread"], _jobs["process"] = thread_ticks(STOP), process_ticks(STOP)
        deadline = time.monotonic() + 30
        while not all(job.output for job in _jobs.values()) and time.monotonic() < deadline:
            time.sleep(0.01)  # both print before the first test starts (the fork server takes a moment)


def pytest_runtest_logreport(report):
    test = _tests.setdefault(report.nodeid, {"outcomes": [], "out": "", "err": "", "log": ""})
    test["outcomes"].append("%s %s" % (report.when, report.outcome))
    test["out"] = report.capstdout  # each report has every phase so far
    test["err"] = report.capstderr
    test["log"] = report.caplog


def pytest_sessionfinish(session, exitstatus):
    kept = {}
    if JOBS:
        open(STOP, "w").close()
        for kind, job in _jobs.items():
            job.wait(30)
            n = job.result or 0
            label = "%s job" % kind
            kept[kind] = {"status": job.status, "error": job.error, "printed": n,
                          "complete": job.output == "".join("%s tick %d\n" % (label, i) for i in range(n))}
    with open(os.environ.get("WB_SUITE_REPORT", "report.json"), "w") as f:
        json.dump({"tests": _tests, "jobs": kept, "exitstatus": int(exitstatus)}, f)
