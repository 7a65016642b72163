"""tqdm bars in a job drive its progress, with no change to the job's code."""
import threading


from web_background import background

import processjobs

from tqdm import tqdm  # noqa: E402  (a test dependency: the test command installs it)


def test_a_tqdm_bar_in_a_job_drives_its_progress():
    @background
    def job():
        for _ in tqdm(range(40), desc="crunching", mininterval=0):
            pass

    j = job()
    assert j.wait(10) and j.status == "done", j.error
    assert j.progress == {"done": 40, "total": 40, "message": "crunching"}
    assert "\r" in j.output and "40/40" in j.output  # the bar itself is in the output, as in a terminal


def test_with_nested_bars_the_outermost_drives_the_progress():
    @background
    def job():
        for _ in tqdm(range(3), desc="outer", mininterval=0):
            for _ in tqdm(range(50), desc="inner", mininterval=0, leave=False):
                pass

    j = job()
    assert j.wait(10) and j.status == "done", j.error
    assert j.progress == {"done": 3, "total": 3, "message": "outer"}


def test_a_bar_without_a_total_reports_how_far_it_got():
    @background
    def job():
        bar = tqdm(desc="reading", mininterval=0)
        for _ in range(7):
            bar.update(1)
        bar.close()

    j = job()
    assert j.wait(10) and j.status == "done", j.error
    assert j.progress == {"done": 7, "total": None, "message": "reading"}


def test_bars_outside_jobs_change_no_job():
    seen = threading.Event()

    @background
    def job():
        seen.wait(10)

    j = job()
    for _ in tqdm(range(5), mininterval=0, disable=False, file=open("/dev/null", "w")):
        pass
    seen.set()
    assert j.wait(10) and j.progress is None


def test_a_tqdm_bar_in_a_process_job_drives_its_progress():
    j = processjobs.with_tqdm(30)
    assert j.wait(15) and j.status == "done", j.error
    assert j.progress == {"done": 30, "total": 30, "message": "crunching"}
