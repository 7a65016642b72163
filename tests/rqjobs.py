"""Jobs for the RQ tests; `rq worker --path tests` imports this module."""
import os
import sys
import time

import web
from web_background import background, configure, progress

if os.environ.get("WEB_BACKGROUND_STORE"):  # in the worker: the same configure() as the web side
    configure(store=os.environ["WEB_BACKGROUND_STORE"])

QUEUE = "wbtest"


@background(queue=QUEUE)
def numbered(lines, delay=0.0):
    for i in range(lines):
        print("line %05d" % i)
        if delay:
            time.sleep(delay)
    return lines


@background(queue=QUEUE)
def show_ctx():
    progress(1, 2, "half")
    print("ip=%s path=%s query=%s method=%s" % (web.ctx.ip, web.ctx.path, web.ctx.query, web.ctx.method))
    print("name=%s" % web.input(name="?").name)
    return {"pid": os.getpid()}


@background(queue=QUEUE)
def failing():
    print("about to fail")
    raise KeyError("missing")


@background(queue=QUEUE)
def exits(how):
    """Ends its worker's job the hard way: sys.exit() or os._exit()."""
    print("about to %s" % how, flush=True)
    if how == "sys.exit":
        sys.exit(3)
    os._exit(3)


@background(queue=QUEUE)
def sleeps():
    print("sleeping", flush=True)
    try:
        time.sleep(3600)
    finally:
        print("finally ran")


@background(queue=QUEUE)
def refuses_to_stop():
    from web_background import Cancelled

    print("stubborn pid=%d" % os.getpid(), flush=True)
    for _ in range(600):
        try:
            time.sleep(0.1)
        except Cancelled:
            print("ignoring the cancel", flush=True)


@background(queue=QUEUE, timeout=0.5)
def sleeps_past_its_timeout():
    print("started", flush=True)
    try:
        time.sleep(3600)
    finally:
        print("finally ran")


@background(queue=QUEUE, retries=2, retry_delay=0.05)
def fails_twice(counter_file):
    with open(counter_file, "a+") as f:
        f.write("x")
        f.seek(0)
        tries = len(f.read())
    print("attempt", tries)
    if tries < 3:
        raise ConnectionError("passing network error")
    return tries


def _isatty_report():
    return {"stdout": sys.stdout.isatty(), "stderr": sys.stderr.isatty(), "worker's fd 1": os.isatty(1)}


@background(queue=QUEUE)
def isatty_report():
    return _isatty_report()


@background(queue=QUEUE, tty=True)
def isatty_report_with_tty():
    return _isatty_report()
