"""A web.py app for tests/test_good_citizen.py under gunicorn: a @backgrounder
handler that starts a job, and one that starts none but prints and logs."""
import logging
import sys

import web

from web_background import background, backgrounder

logging.basicConfig(level=logging.INFO, format="APP %(name)s %(message)s", stream=sys.stderr)
log = logging.getLogger("userapp")
urls = ("/job", "job", "/plain", "plain")


@background
def work():
    print("job line")


class job:
    @backgrounder
    def GET(self):
        print("before the job")
        work()


class plain:
    @backgrounder
    def GET(self):
        print("handler print")
        log.warning("handler record")
        return "plain answer"


app = web.application(urls, globals())
application = app.wsgifunc()
