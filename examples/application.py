"""The web.py cookbook example, unchanged: run it and open http://127.0.0.1:8080/"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import web  # noqa: E402
from web_background import background, backgrounder  # noqa: E402

urls = ("/", "index")


class index:
    @backgrounder
    def GET(self):
        print("Started at %s" % time.ctime())
        print("hit f5 to refresh!")
        longrunning()


@background
def longrunning():
    for i in range(int(os.environ.get("EXAMPLE_STEPS", "10"))):
        time.sleep(float(os.environ.get("EXAMPLE_DELAY", "1")))
        print("%s: %s" % (i, time.ctime()))


app = web.application(urls, globals())
application = app.wsgifunc()  # for WSGI servers: gunicorn --chdir examples application

if __name__ == "__main__":
    app.run()
