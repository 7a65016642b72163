"""The app of the deployment matrix (tests/test_deploy.py): the same small
web.py app under every server, proxy and FastCGI gateway.

python tests/deploy_app.py 127.0.0.1:PORT            web.py's own server
python tests/deploy_app.py fastcgi 127.0.0.1:PORT    web.py's FastCGI server (flup)
gunicorn --chdir tests deploy_app:application        any WSGI server (uWSGI: --wsgi-file)

The store comes from WEB_BACKGROUND_STORE (memory:// when unset); DEPLOY_DEBUG
"1"/"0" sets web.config.debug (unset: web.py's own default).  Every response
carries ``X-Served-By: <pid>`` of the process that answered it.
"""
import os
import sys
import time

sys.path.insert(0, os.environ.get("DEPLOY_ROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import web  # noqa: E402

from web_background import background, backgrounder, configure, progress  # noqa: E402

configure(store=os.environ.get("WEB_BACKGROUND_STORE", "memory://"))
if os.environ.get("DEPLOY_DEBUG") in ("0", "1"):
    web.config.debug = os.environ["DEPLOY_DEBUG"] == "1"

urls = (
    "/count", "count",
    "/pcount", "pcount",
    "/sleep", "sleep",
    "/errors", "errors",
    "/plain", "plain",
    "/check", "check",
)


def _lines_and_delay():
    i = web.input(lines="20", delay="0.02")
    return min(int(i.lines), 1000), min(float(i.delay), 1.0)


class count:
    @backgrounder
    def GET(self):
        print("counting in web process %d" % os.getpid())
        numbered(*_lines_and_delay())


@background
def numbered(lines, delay):
    """``lines`` numbered lines, ``delay`` seconds apart, with progress."""
    for n in range(lines):
        print("line %04d" % n)
        progress(n + 1, lines, "line %d of %d" % (n + 1, lines))
        if delay:
            time.sleep(delay)
    return lines


class pcount:
    @backgrounder
    def GET(self):
        numbered_in_a_process(*_lines_and_delay())


@background(executor="processes")
def numbered_in_a_process(lines, delay):
    for n in range(lines):
        print("line %04d" % n)
        if delay:
            time.sleep(delay)
    return lines


class sleep:
    @backgrounder
    def GET(self):
        sleeps()


@background
def sleeps():
    """Sleeps (in short naps: a thread job is stopped between bytecodes) until cancelled, 30 s at most."""
    print("sleeping in pid %d" % os.getpid(), flush=True)
    try:
        for _ in range(600):
            time.sleep(0.05)
    finally:
        print("finally ran")


class errors:
    @backgrounder
    def GET(self):
        writes_to_the_request_after_it_ended()


@background
def writes_to_the_request_after_it_ended():
    """What a job sees of its request once that has been answered: web.debug()
    writes to the request's ``wsgi.errors``; web.input() and web.ctx are copies."""
    time.sleep(0.3)  # the 303 has gone out by now
    print("input: %s" % dict(web.input()))
    try:
        web.debug("web.debug from the job")
        print("web.debug returned")
    except Exception as e:
        print("web.debug raised %s: %s" % (type(e).__name__, e))


class plain:
    def GET(self):
        return "plain answer from %d\n" % os.getpid()


class check:
    def GET(self):
        """What web_background.deployment.check_server says of this server: ok, or its error."""
        from web_background.deployment import check_server

        try:
            check_server(web.ctx.env)
        except RuntimeError as e:
            return "RuntimeError: %s\n" % e
        return "ok\n"


def served_by(handle):
    web.header("X-Served-By", str(os.getpid()))
    return handle()


app = web.application(urls, globals())
app.add_processor(served_by)
application = app.wsgifunc()


if __name__ == "__main__":
    app.run()
