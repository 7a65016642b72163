"""The web process asked to stop (SIGTERM, as gunicorn's master and systemd
send; SIGINT): every line its jobs printed before the signal is in the store,
and the jobs are recorded ``interrupted`` at once; the app's own handler runs."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from web_background.stores import open_store

from conftest import wait_for
from servers import ROOT

pytestmark = pytest.mark.stores("memory")

WEB_PROCESS = textwrap.dedent("""
    import signal, sys, time
    sys.path[:0] = [%r, %r]
    store, counters, app_handler = sys.argv[1], sys.argv[2:4], sys.argv[4] == "yes"
    if app_handler:  # as gunicorn's worker has: set before the app (and so web_background) is imported
        def handler(signum, frame):
            print("the app's handler ran", flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, handler)
    import faultjobs
    from web_background import configure
    configure(store=store)
    jobs = [faultjobs.counts_in_a_thread(counters[0]), faultjobs.counts_in_a_process(counters[1])]
    print(" ".join(job.id for job in jobs), flush=True)
    for _ in range(6000):
        time.sleep(0.01)
""") % (ROOT, os.path.join(ROOT, "tests"))


def counted(path):
    try:
        with open(path, "rb") as f:
            return int(f.read(6) or -1)
    except (FileNotFoundError, ValueError):
        return -1


@pytest.mark.parametrize("signum, app_handler", [(signal.SIGTERM, "yes"), (signal.SIGTERM, "no"),
                                                 (signal.SIGINT, "no")],
                         ids=["SIGTERM, the app's handler", "SIGTERM", "SIGINT"])
def test_a_stopped_web_process_writes_every_line_first_and_records_its_jobs_interrupted(tmp_path, signum,
                                                                                       app_handler):
    url = "sqlite:///%s" % (tmp_path / "jobs.db")
    counters = [str(tmp_path / "thread.count"), str(tmp_path / "process.count")]
    web = subprocess.Popen([sys.executable, "-c", WEB_PROCESS, url, *counters, app_handler],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ids = web.stdout.readline().split()
        wait_for(lambda: min(counted(c) for c in counters) >= 100)
        printed = [counted(c) for c in counters]  # lines printed before the signal, at least
        os.kill(web.pid, signum)
        web.wait(10)
        output = web.stdout.read()
    finally:
        web.kill()
        web.wait(5)
    if app_handler == "yes":
        assert "the app's handler ran" in output
    store = open_store(url, 1_000_000, 3600)
    for job_id, last in zip(ids, printed):
        record = store.get(job_id)
        assert record["status"] == "interrupted", record
        assert "stopped by %s" % signal.Signals(signum).name in record["error"]
        lines = store.read(job_id, 0)[0].splitlines()
        assert lines[:last + 1] == ["line %06d" % i for i in range(last + 1)]
