"""The dashboard's HTML: the list page, its rows, and the small formats they use
(``dashboard.py`` decides what is listed and who may see it)."""

import html
import os
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlencode

import web

from .stores import JobStatus

STATUSES = tuple(s.value for s in JobStatus)
_MAX_NAME = 200  # characters of a name filter

def _static(name: str) -> str:
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "static", name), encoding="utf-8") as f:
        return f.read()


# read once, inlined in every page with its nonce
_STYLE = _static("dashboard.css")
_SCRIPT = _static("dashboard.js")


def _duration(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return "%d s" % s
    if s < 3600:
        return "%d min %d s" % divmod(s, 60)
    if s < 86400:
        return "%d h %d min" % (s // 3600, s % 3600 // 60)
    return "%d d %d h" % (s // 86400, s % 86400 // 3600)


def _progress_text(progress: Optional[Dict[str, Any]]) -> str:
    if not progress:
        return ""
    done = "%g/%g" % (progress["done"], progress["total"]) if progress.get("total") else "%g" % progress["done"]
    return done + (" " + progress["message"] if progress.get("message") else "")


def _list_query(status: str, name: str, page: int = 1) -> List[Tuple[str, str]]:
    return [(k, v) for k, v in (("status", status), ("name", name), ("page", str(page) if page > 1 else ""))
            if v]


def _list_url(base: str, status: str, name: str, page: int = 1) -> str:
    query = urlencode(_list_query(status, name, page))
    return base + "/" + ("?" + query if query else "")


# -- the page ------------------------------------------------------------------------------

COLUMNS = ("status", "name", "owner", "progress", "age", "elapsed", "last", "actions")


def _page(view: Dict[str, Any], nonce: str, mine: bool) -> str:
    esc = html.escape
    base = web.ctx.homepath
    status, name = view["status"], view["name"]
    listq = urlencode(_list_query(status, name, view["page"]))
    json_url = base + "/?" + urlencode(_list_query(status, name, view["page"]) + [("_format", "json")])
    title = "My jobs" if mine else "Jobs"

    def count(key: str) -> str:
        value = view["total"] if key == "all" else view["counts"][key]
        return '<span class="count" data-count="%s">%d</span>' % (key, value)

    links = ['<a href="%s"%s>all %s</a>' % (esc(_list_url(base, "", name)), "" if status else ' class="current"',
                                            count("all"))]
    for s in STATUSES:
        links.append('<a href="%s" class="st-%s%s">%s %s</a>' % (
            esc(_list_url(base, s, name)), s, " current" if s == status else "", s, count(s)))
    options = "".join('<option value="%s"%s>%s</option>' % (s, " selected" if s == status else "", s or "any")
                      for s in ("",) + STATUSES)
    pager = ('<nav id="pager"><a id="newer" href="%s"%s>&larr; newer</a> <span id="page-of">%s</span> '
             '<a id="older" href="%s"%s>older &rarr;</a></nav>') % (
        esc(view["newer"] or ""), "" if view["newer"] else " hidden", _page_of(view),
        esc(view["older"] or ""), "" if view["older"] else " hidden")
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>%s</title>" % title,
        '<style nonce="%s">%s</style></head><body>' % (nonce, _STYLE),
        '<main id="dashboard" data-json="%s" data-base="%s" data-query="%s">' % (
            esc(json_url), esc(base), esc(listq)),
        "<h1>%s</h1>" % title,
        '<p id="summary">%s running, %s waiting, %s retained</p>' % (count("running"), count("queued"),
                                                                      count("all")),
        '<nav id="statuses">%s</nav>' % " ".join(links),
        '<div class="tools"><form id="filter" method="get" action="%s/">' % esc(base),
        '<label>Status <select name="status">%s</select></label> ' % options,
        '<label>Name <input name="name" value="%s" maxlength="%d"></label> ' % (esc(name), _MAX_NAME),
        '<button type="submit">Filter</button></form>',
        '<form id="purge" method="post" action="%s/purge%s">' % (esc(base), esc("?" + listq if listq else "")),
        '<button type="submit">Purge finished jobs</button></form></div>',
        '<p id="notice" role="status" hidden></p>',
        '<table id="jobs"><thead><tr><th>Status</th><th>Name</th><th>Owner</th><th>Progress</th>'
        "<th>Age</th><th>Elapsed</th><th>Last line</th><th></th></tr></thead>",
        '<tbody id="rows">%s</tbody></table>' % "".join(_row_html(row, base, listq) for row in view["jobs"]),
        '<p id="empty"%s>No jobs.</p>' % (" hidden" if view["jobs"] else ""),
        pager,
        '</main><script nonce="%s">%s</script></body></html>' % (nonce, _SCRIPT),
    ])


def _page_of(view: Dict[str, Any]) -> str:
    return "page %d of %d" % (view["page"], view["pages"])


def _row_html(row: Dict[str, Any], base: str, listq: str) -> str:
    """One job as a table row; static/dashboard.js builds the very same with DOM APIs."""
    esc = html.escape
    progress = row["progress"] or {}
    bar = "<progress%s%s%s></progress>" % (
        "" if row["progress"] else " hidden",
        ' max="%s"' % esc(str(progress["total"])) if progress.get("total") else "",
        ' value="%s"' % esc(str(progress["done"])) if progress.get("total") else "")
    forms = "".join(
        '<form method="post" action="%s/%s%s"><input type="hidden" name="id" value="%s">'
        '<button type="submit" class="%s">%s</button></form>' % (
            esc(base), action, esc("?" + listq if listq else ""), esc(row["id"]), action, action.capitalize())
        for action in row["actions"])
    cells = {
        "status": esc(row["status_text"]),
        "name": '<a href="%s">%s</a>' % (esc(row["url"]), esc(row["name"])),
        "owner": esc(row["owner"] or ""),
        "progress": '%s<span class="msg">%s</span>' % (bar, esc(row["progress_text"])),
        "age": esc(row["age"]), "elapsed": esc(row["elapsed"]), "last": esc(row["last_line"]),
        "actions": forms,
    }
    return '<tr class="st-%s" data-id="%s" data-actions="%s">%s</tr>' % (
        esc(row["status"]), esc(row["id"]), esc(",".join(row["actions"])),
        "".join('<td class="%s">%s</td>' % (c, cells[c]) for c in COLUMNS))
