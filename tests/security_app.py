"""The app of tests/test_security.py, as a site on the open internet mounts it:
served by web.py's own server, by gunicorn and by gunicorn behind nginx.

python tests/security_app.py 127.0.0.1:PORT      web.py's own server
gunicorn --chdir tests security_app:application  any WSGI server

- ``/jobs``: ``dashboard()``, with neither ``allow`` nor ``owner`` (local requests only);
- ``/plain``: a plain answer (servers are ready when it answers);
- ``/sleep``: starts a job that runs until it is cancelled (at most 60 s);
- ``/mine``: starts a keyed job bound to the user (header ``X-User``), held until ``held`` is set;
- any other path (``/(.*)``): a ``@backgrounder`` handler starting a short job.
The store comes from WEB_BACKGROUND_STORE (memory:// when unset).
"""
import threading
import time

import web

from web_background import background, backgrounder, dashboard

urls = (
    "/jobs", dashboard(),
    "/plain", "plain",
    "/sleep", "sleep",
    "/mine", "mine",
    "/(.*)", "anywhere",
)

held = threading.Event()


class plain:
    def GET(self):
        return "plain"


class anywhere:
    @backgrounder
    def GET(self, path):
        print("asked for %r" % path)
        short()


@background
def short():
    print("done")


class sleep:
    @backgrounder
    def GET(self):
        sleeps()


@background
def sleeps():
    print("sleeping", flush=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.05)


def user():
    return web.ctx.env.get("HTTP_X_USER")


class mine:
    @backgrounder(owner=user)
    def GET(self):
        report()


@background(key="nightly-report")
def report():
    held.wait(30)


app = web.application(urls, globals(), autoreload=False)
application = app.wsgifunc()

if __name__ == "__main__":
    app.run()
