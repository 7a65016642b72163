"""Job functions for the Redis/RQ rows of benchmarks/bench.py.

A stock ``rq worker --path benchmarks`` imports this module in every
work-horse (the default Worker forks one per job; the worker itself never
imports job modules), so it imports nothing but the standard library and rq:
the plain RQ job pays for nothing of web_background.

bench.py makes the web_background jobs out of ``first_line`` itself:
``background(first_line)`` (the thread executor) and
``background(queue=QUEUE)(first_line)`` (the RQ executor, whose work-horse
runs ``web_background.executors.rq_entry``, which imports web_background and
then ``rqbench_jobs:first_line``).  The work-horse's store is the
``WEB_BACKGROUND_STORE`` bench.py puts in the worker's environment (web_background
reads its settings from the environment on import), so nothing here calls
configure().
"""

import time

from rq import get_current_job

QUEUE = "wbbench"
MAX_PAUSE = 5.0  # whatever it is asked, no job here stays running longer


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
    a poll with ``rq.job.Job.fetch`` sees it at once."""
    line = line_for(tag)
    print(line)
    job = get_current_job()
    job.meta["line"] = line
    job.save_meta()
    if pause:
        time.sleep(min(pause, MAX_PAUSE))
    return tag
