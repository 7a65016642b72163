"""The jobs of the cluster example. The web app and every `rq worker` import
this module, so its configure() call points both at the same Redis and queue."""
import os
import time

import web
from web_background import background, configure, progress

configure(store=os.environ.get("WEB_BACKGROUND_STORE", "redis://127.0.0.1:6379/0"), executor="rq")


@background
def report(steps=10, delay=1.0):
    """A slow report: prints a line per step and reports its progress."""
    print("report for %s, asked from %s, run by worker pid %d" % (web.input(name="world").name, web.ctx.ip,
                                                                 os.getpid()))
    for i in range(steps):
        progress(i, steps, "step %d of %d" % (i + 1, steps))
        time.sleep(delay)
        print("%d: %s" % (i, time.ctime()))
    progress(steps, steps, "done")
    return steps


@background(queue="reports")
def nightly(name="nightly"):
    """A job on its own queue ("reports"): run a worker for it with `rq worker reports`."""
    print("building %s" % name)
    return name
