"""RQ settings of the preloaded worker of the first-line, process-start and
cancel rows: ``rq worker -c rqbench_settings --path benchmarks`` (run in
benchmarks/), as the README recommends for real workers
(examples/cluster/worker_settings.py).

RQ imports this module once, in the worker, before it forks a work-horse for
each job: importing the job module, web_background (and so web.py) and
``web_background.executors.rq`` (``rq_entry``'s module, what each work-horse
of an RQ-executor job runs) here loads them once instead of in every
work-horse.  Its ``configure()`` call is the one a real app's job module makes
at import (examples/cluster/jobs.py): it builds the Redis store here too,
before the fork.  (rqbench_jobs itself imports only rq, so that the plain RQ
job pays nothing of web_background in a worker without this module.)
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.dirname(here)]  # the jobs, and web_background when not installed

import rqbench_jobs  # noqa: E402  (preloaded: the work-horses inherit it)
import web_background.executors.rq  # noqa: E402,F401  (preload: the module each work-horse runs)
from web_background import configure  # noqa: E402  (and so web.py: what the RQ executor's job needs)

REDIS_URL = os.environ["WEB_BACKGROUND_STORE"]  # _harness.RQWorker starts the worker with it
QUEUES = [rqbench_jobs.QUEUE]

configure(store=REDIS_URL)
