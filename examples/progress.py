"""Progress and cancel: run it and open http://127.0.0.1:8080/

GET /work starts a job that reports progress; its page shows a progress bar.
POST /cancel with _t=<id> cancels it: the job stops at its next print or
progress() call and its status becomes "cancelled".
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import web  # noqa: E402
from web_background import background, backgrounder, progress, threaddb  # noqa: E402

urls = ("/", "home", "/work", "work", "/cancel", "cancel")

HOME = """<!DOCTYPE html><meta charset="utf-8"><title>progress and cancel</title>
<p><a href="/work?steps=20">Start a job of 20 steps</a></p>
<form method="post" action="/cancel"><input name="_t" placeholder="job id" size="30">
<button>Cancel that job</button></form>
<p>Jobs: %s</p>"""


class home:
    def GET(self):
        web.header("Content-Type", "text/html; charset=utf-8")
        jobs = ", ".join("%s (%s)" % (web.websafe(i), j.status) for i, j in threaddb.items())
        return HOME % (jobs or "none yet")


class work:
    @backgrounder
    def GET(self):
        steps = int(web.input(steps="20").steps)
        crunch(min(max(steps, 1), 1000))


class cancel:
    def POST(self):
        job = threaddb.get(web.input(_t="")._t)
        if job is None:
            raise web.notfound("No such job.\n")
        job.cancel()
        raise web.seeother("/work?_t=%s" % job.id)


@background
def crunch(steps):
    for i in range(steps):
        progress(i, steps, "step %d of %d" % (i + 1, steps))
        print("working on step %d" % (i + 1))
        time.sleep(float(os.environ.get("EXAMPLE_DELAY", "0.5")))
    progress(steps, steps, "finished")
    return steps


app = web.application(urls, globals())

if __name__ == "__main__":
    app.run()
