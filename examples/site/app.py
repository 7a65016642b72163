"""A site with a look of its own around its jobs: run it with
``bash scripts/example.sh site`` and open http://127.0.0.1:8080/

- ``/export`` starts a job; its page (``?_t=<id>``) is in the site's Templetor
  layout (templates/layout.html, with the site's stylesheet), set once by
  ``configure(layout=render.layout)``.
- ``/report`` starts two exports and shows both live inside the report page
  (``$:live(job)`` in templates/report.html).
- ``/jobs/`` is the dashboard, in the same layout, for admins only (``allow``):
  ``/login`` makes this browser an admin (a cookie; in a real site, your session's check).

The words of the job views and the dashboard follow the browser's language
(English, Simplified Chinese).
"""
import hmac
import os
import secrets
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))

import web  # noqa: E402

import web_background  # noqa: E402
from web_background import background, backgrounder, live, progress  # noqa: E402

render = web.template.render(os.path.join(HERE, "templates"), base="layout", globals={"live": live})
web_background.configure(layout=render.layout)  # every job page in the site's layout

ADMIN_TOKEN = secrets.token_urlsafe(16)  # what /login hands out, for this run of the app


def is_admin():
    return hmac.compare_digest(web.cookies().get("admin", ""), ADMIN_TOKEN)


urls = (
    "/", "index",
    "/export", "export",
    "/report", "report",
    "/login", "login",
    "/site.css", "stylesheet",
    "/jobs", web_background.dashboard(allow=is_admin),  # in the layout too: configure(layout=...)
)


@background
def export_rows(rows):
    delay = float(os.environ.get("EXAMPLE_DELAY", "0.2"))
    for i in range(1, rows + 1):
        time.sleep(delay)
        print("row %d of %d exported" % (i, rows))
        progress(i, rows, "exporting")
    return rows


def rows_asked():
    try:
        rows = int(web.input(rows="30").rows)
    except ValueError:
        raise web.badrequest("rows must be a whole number")
    if not 1 <= rows <= 10000:
        raise web.badrequest("rows must be from 1 to 10000")
    return rows


class index:
    def GET(self):
        return render.index()


class export:
    @backgrounder
    def GET(self):
        print("Export started")
        export_rows(rows_asked())


class report:
    @backgrounder  # also serves ?_t=<id> for the live views below
    def GET(self):
        ids = [i for i in web.input(jobs="").jobs.split(",") if i]
        return render.report(ids)

    def POST(self):
        rows = rows_asked()
        jobs = [export_rows(rows), export_rows(rows * 2)]
        raise web.seeother("/report?jobs=" + ",".join(job.id for job in jobs))


class login:
    def GET(self):
        return render.login(is_admin())

    def POST(self):
        web.setcookie("admin", ADMIN_TOKEN, httponly=True, samesite="Strict")
        raise web.seeother("/jobs/")


class stylesheet:
    def GET(self):
        web.header("Content-Type", "text/css; charset=utf-8")
        with open(os.path.join(HERE, "site.css"), encoding="utf-8") as f:
            return f.read()


app = web.application(urls, globals())
application = app.wsgifunc()

if __name__ == "__main__":
    app.run()
