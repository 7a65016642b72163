"""Job functions for the Redis/RQ rows of benchmarks/bench.py.

Two stock ``rq worker`` processes run them, each on its own queue:

- ``QUEUE``: the worker the README recommends, ``rq worker -c rqbench_settings``
  (benchmarks/rqbench_settings.py, RQ's settings module), which imports this
  module, web_background (with it web.py) and web_background.executors.rq
  once, in the worker, before it forks a work-horse for each job;
- ``QUEUE_COLD``: a plain ``rq worker --path benchmarks``, which imports nothing
  before it forks: each work-horse imports this module (for the plain RQ job)
  or web_background and this module (for the RQ executor's job), as RQ's
  default forking Worker does.

This module imports nothing but the standard library and rq, so the plain RQ
job pays for nothing of web_background in either worker.

bench_first_line.py makes the web_background jobs out of ``first_line`` itself:
``background(first_line)`` (the thread executor) and
``background(queue=QUEUE)(first_line)``, ``background(queue=QUEUE_COLD)(first_line)``
(the RQ executor, whose work-horse runs ``web_background.executors.rq.rq_entry``,
which imports web_background, unless the worker preloaded it, and then
``rqbench_jobs:first_line``).  The work-horse's store is the
``WEB_BACKGROUND_STORE`` _harness.RQWorker puts in the worker's environment (web_background
reads its settings from the environment on import), so nothing here calls
configure().  bench_process_start.py runs ``first_line`` on the process
executor too, and bench_cancel.py runs ``sleeper`` on the RQ and process
executors.
"""

import sys
import time

from rq import get_current_job

QUEUE = "wbbench"  # the worker with the settings module (preloaded)
QUEUE_COLD = "wbbench-cold"  # the worker without it
MAX_PAUSE = 5.0  # whatever it is asked, no job here stays running longer (but sleeper, which is cancelled)
SLEEP = 3600.0  # s sleeper sleeps: until cancelled (or, past cancel_grace, killed)


def line_for(tag):
    """The line a job prints: its tag and when it was printed (``time.time()``)."""
    return "first line %s %.6f" % (tag, time.time())


def first_line(tag, pause=0.0):
    """Print one line at once, then stay running ``pause`` seconds."""
    print(line_for(tag))
    if pause:
        time.sleep(min(pause, MAX_PAUSE))
    return tag


def plain_first_line(tag, pause=0.0):
    """The same as a plain RQ job: the line also goes into ``job.meta``, where
    a poll with ``job.get_meta()`` sees it at once.  ``meta["preloaded"]`` says
    whether the work-horse found web_background already imported (by the
    worker's settings module, before the fork)."""
    line = line_for(tag)
    print(line)
    job = get_current_job()
    job.meta["line"] = line
    job.meta["preloaded"] = "web_background" in sys.modules
    job.save_meta()
    if pause:
        time.sleep(min(pause, MAX_PAUSE))
    return tag


def sleeper(tag):
    """Print one line at once, then ``time.sleep(SLEEP)``: the job of the
    cancel rows (bench_cancel.py), which cancel it once its line is visible."""
    print(line_for(tag), flush=True)
    time.sleep(SLEEP)
    return tag
