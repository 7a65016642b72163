"""The web side of the cluster example: run it on as many machines as you like.

    WEB_BACKGROUND_STORE=redis://127.0.0.1:6379/0 python examples/cluster/app.py 127.0.0.1:8080
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.join(here, "..", "..")]

import web  # noqa: E402
from web_background import backgrounder  # noqa: E402

import jobs  # noqa: E402  (defines the jobs and configures the store and queue)

urls = ("/", "index")


class index:
    @backgrounder
    def GET(self):
        i = web.input(steps="10", delay="1")
        try:
            steps, delay = min(int(i.steps), 1000), min(float(i.delay), 10.0)
        except ValueError:
            raise web.badrequest("steps and delay must be numbers\n")
        print("queued by %s" % web.ctx.ip)
        jobs.report(steps, delay)


app = web.application(urls, globals())
application = app.wsgifunc()

if __name__ == "__main__":
    app.run()
