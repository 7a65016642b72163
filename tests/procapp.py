"""A web.py application whose jobs run in processes of their own (executor="processes").

python tests/procapp.py 127.0.0.1:PORT        web.py's own server (the jobs are in __main__)
gunicorn --chdir tests procapp:application    any WSGI server (the jobs are in the module procapp)

The store comes from WEB_BACKGROUND_STORE (memory:// when unset).  Every
response carries ``X-Served-By: <pid>`` of the web process that answered it,
so a test can tell which of several workers served a poll.  Debug is on, so
a job's ``error`` is in its JSON.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import web  # noqa: E402

from web_background import background, backgrounder, configure, progress  # noqa: E402

configure(store=os.environ.get("WEB_BACKGROUND_STORE", "memory://"))
web.config.debug = True  # the JSON view then carries a failed job's error

urls = (
    "/count", "count",
    "/sleep", "sleep",
    "/crash", "crash",
    "/timeout", "timeout",
    "/plain", "plain",
)


class count:
    @backgrounder
    def GET(self):
        print("counting in web process %d" % os.getpid())
        numbered()


@background(executor="processes")
def numbered():
    """``lines`` numbered lines, ``delay`` seconds apart (from the request's input), with progress."""
    i = web.input(lines="20", delay="0.01")
    lines, delay = min(int(i.lines), 10000), min(float(i.delay), 1.0)
    for n in range(lines):
        print("line %04d" % n)
        progress(n + 1, lines, "line %d of %d" % (n + 1, lines))
        if delay:
            time.sleep(delay)
    return lines


class sleep:
    @backgrounder
    def GET(self):
        sleeps()


@background(executor="processes")
def sleeps():
    """Sleeps until cancelled (30 s at most); its ``finally:`` block says it ran."""
    print("sleeping in pid %d" % os.getpid(), flush=True)
    try:
        time.sleep(30)
    finally:
        print("finally ran")


class crash:
    @backgrounder
    def GET(self):
        crashes()


@background(executor="processes")
def crashes():
    print("about to crash in pid %d" % os.getpid())  # no flush: os._exit must not lose it
    os._exit(3)


class timeout:
    @backgrounder
    def GET(self):
        times_out()


@background(executor="processes", timeout=0.5)
def times_out():
    print("started", flush=True)
    try:
        time.sleep(30)
    finally:
        print("finally ran")


class plain:
    def GET(self):
        return "plain answer from %d\n" % os.getpid()


def served_by(handle):
    web.header("X-Served-By", str(os.getpid()))
    return handle()


app = web.application(urls, globals(), autoreload=False)
app.add_processor(served_by)
application = app.wsgifunc()


if __name__ == "__main__":
    app.run()
