"""Settings for the workers: `rq worker -c worker_settings` (run in examples/cluster).

RQ imports this module once, in the worker, before it forks a work-horse for
each job: importing the jobs here loads web_background and web.py once instead
of in every work-horse (about 30 ms a job), as RQ's own docs advise.
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.join(here, "..", "..")]  # the jobs, and web_background when not installed

import jobs  # noqa: E402,F401  (preloaded: the work-horses inherit it)
import web_background.executors.rq  # noqa: E402,F401  (preload: the module each work-horse runs)

REDIS_URL = os.environ.get("WEB_BACKGROUND_STORE", "redis://127.0.0.1:6379/0")
QUEUES = ["default", "reports"]
