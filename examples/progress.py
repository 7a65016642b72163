"""Progress and cancel: run it and open http://127.0.0.1:8080/

GET /work starts a job that reports its progress: its page shows the lines as
they come, a progress bar and a Cancel button (a POST). The job stops at its
next print or progress() call and its status becomes "cancelled".
From code, the same is `threaddb[job_id].cancel()`.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import web  # noqa: E402
from web_background import background, backgrounder, progress, threaddb  # noqa: E402

urls = ("/", "home", "/work", "work")

HOME = """<!DOCTYPE html><meta charset="utf-8"><title>progress and cancel</title>
<p><a href="/work?steps=20">Start a job of 20 steps</a></p>
<p>Jobs: %s</p>"""


class home:
    def GET(self):
        web.header("Content-Type", "text/html; charset=utf-8")
        jobs = ", ".join('<a href="/work?_t=%s">%s</a> (%s)' % (i, i, j.status) for i, j in threaddb.items())
        return HOME % (jobs or "none yet")


class work:
    @backgrounder
    def GET(self):
        try:
            steps = min(max(int(web.input(steps="20").steps), 1), 1000)
        except ValueError:
            raise web.badrequest("steps must be a whole number\n")
        crunch(steps)


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
