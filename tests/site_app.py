"""examples/site/app.py as the browser tests serve it, with one page more: a job page
whose layout also links a stylesheet from another origin ($FOREIGN_CSS), and the same
stylesheet on a plain page of the site (no job, so no CSP of the package)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples", "site"))

import web  # noqa: E402

import app as site  # noqa: E402
from web_background import backgrounder  # noqa: E402

FOREIGN = '<link rel="stylesheet" href="%s">' % os.environ.get("FOREIGN_CSS", "")
layouts = web.template.render(os.path.join(site.HERE, "templates"))  # no base: .layout is the layout alone


def foreign_layout(content):
    """The site's layout with a stylesheet from elsewhere in its head."""
    return str(layouts.layout(content)).replace("</head>", FOREIGN + "</head>", 1)


class foreign:
    @backgrounder(layout=foreign_layout)
    def GET(self):
        site.export_rows(3)


class foreign_plain:
    def GET(self):
        return ('<!DOCTYPE html><html><head>%s</head><body><header class="site-header">plain</header></body></html>'
                % FOREIGN)


index, export, report, login, stylesheet = site.index, site.export, site.report, site.login, site.stylesheet
urls = site.urls + ("/foreign", "foreign", "/foreign-plain", "foreign_plain")
app = web.application(urls, globals(), autoreload=False)

if __name__ == "__main__":
    app.run()
