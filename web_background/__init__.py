"""Background jobs with live output for web.py.

Decorate a slow function with ``@background`` and the GET handler that calls
it with ``@backgrounder``: the browser is sent at once to ``?_t=<job id>``,
which shows everything the function has printed so far, its progress and its
end.
"""

import web

from . import logs, progress_bars  # noqa: F401  (log records and tqdm bars in jobs)
from .capture import Cancelled, Thread, TimedOut, run_process
from .dashboard import dashboard
from .jobs import DEFAULTS, Busy, Job, configure, progress, threaddb
from .responses import live
from .stores import JobStatus, Store, StoreError
from .web_glue import background, backgrounder

__version__ = "0.1.0"
__all__ = [
    "background", "backgrounder", "Job", "JobStatus", "progress", "configure", "threaddb",
    "Cancelled", "TimedOut", "Busy", "Store", "StoreError", "Thread", "run_process", "DEFAULTS",
    "dashboard", "live",
]

# Old code says @web.background / @web.backgrounder: keep it running unchanged.
for _name, _value in (("background", background), ("backgrounder", backgrounder)):
    if not hasattr(web, _name):
        setattr(web, _name, _value)
