"""The dashboard's HTML: the list page, its rows, and the small formats they use
(``dashboard.py`` decides what is listed and who may see it)."""

import html
import json
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlencode

import web

from .i18n import gettext as _
from .i18n import html_lang
from .job_page import lay_out, nonce, static, status_name
from .stores import JobStatus

STATUSES = tuple(s.value for s in JobStatus)
_MAX_NAME = 200  # characters of a name filter

# read once, inlined in every page with its nonce
_STYLE = static("dashboard.css")
_PAGE_STYLE = static("page.css")  # standalone only; a layout brings its own
_SCRIPT = static("dashboard.js")


def _duration(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return _("%d s") % s
    if s < 3600:
        return _("%d min %d s") % divmod(s, 60)
    if s < 86400:
        return _("%d h %d min") % (s // 3600, s % 3600 // 60)
    return _("%d d %d h") % (s // 86400, s % 86400 // 3600)


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


def _page(view: Dict[str, Any], mine: bool, layout: Optional[Callable[[Any], Any]] = None) -> str:
    """The list page: in ``layout`` (given a ``Content``), or standalone."""
    esc = html.escape
    n = esc(nonce())
    base = web.ctx.homepath
    status, name = view["status"], view["name"]
    listq = urlencode(_list_query(status, name, view["page"]))
    json_url = base + "/?" + urlencode(_list_query(status, name, view["page"]) + [("_format", "json")])
    title = _("My jobs") if mine else _("Jobs")
    words = {"actions": {"cancel": _("Cancel"), "retry": _("Retry")}, "page_of": _("page %d of %d"),
             "poll_failed": _("the list could not be updated (%s)")}

    def count(key: str) -> str:
        value = view["total"] if key == "all" else view["counts"][key]
        return '<span class="count" data-count="%s">%d</span>' % (key, value)

    links = ['<a href="%s"%s>%s %s</a>' % (esc(_list_url(base, "", name)), "" if status else ' class="current"',
                                           esc(_("all")), count("all"))]
    for s in STATUSES:
        links.append('<a href="%s" class="st-%s%s">%s %s</a>' % (
            esc(_list_url(base, s, name)), s, " current" if s == status else "", esc(status_name(s)), count(s)))
    options = "".join('<option value="%s"%s>%s</option>' % (
        s, " selected" if s == status else "", esc(status_name(s) if s else _("any"))) for s in ("",) + STATUSES)
    pager = ('<nav id="pager"><a id="newer" href="%s"%s>%s</a> <span id="page-of">%s</span> '
             '<a id="older" href="%s"%s>%s</a></nav>') % (
        esc(view["newer"] or ""), "" if view["newer"] else " hidden", esc(_("\u2190 newer")), esc(_page_of(view)),
        esc(view["older"] or ""), "" if view["older"] else " hidden", esc(_("older \u2192")))
    headings = (_("Status"), _("Name"), _("Owner"), _("Progress"), _("Age"), _("Elapsed"), _("Last line"), "")
    main = "".join([
        '<main id="dashboard" data-json="%s" data-base="%s" data-query="%s" data-words="%s">' % (
            esc(json_url), esc(base), esc(listq), esc(json.dumps(words, ensure_ascii=False))),
        "<h1>%s</h1>" % esc(title),
        '<p id="summary">%s</p>' % (esc(_("%s running, %s waiting, %s retained"))
                                    % (count("running"), count("queued"), count("all"))),
        '<nav id="statuses">%s</nav>' % " ".join(links),
        '<div class="tools"><form id="filter" method="get" action="%s/">' % esc(base),
        '<label>%s <select name="status">%s</select></label> ' % (esc(_("Status")), options),
        '<label>%s <input name="name" value="%s" maxlength="%d"></label> ' % (esc(_("Name")), esc(name), _MAX_NAME),
        '<button type="submit">%s</button></form>' % esc(_("Filter")),
        '<form id="purge" method="post" action="%s/purge%s">' % (esc(base), esc("?" + listq if listq else "")),
        '<button type="submit">%s</button></form></div>' % esc(_("Purge finished jobs")),
        '<p id="notice" role="status" hidden></p>',
        '<table id="jobs"><thead><tr>%s</tr></thead>' % "".join("<th>%s</th>" % esc(h) for h in headings),
        '<tbody id="rows">%s</tbody></table>' % "".join(_row_html(row, base, listq) for row in view["jobs"]),
        '<p id="empty"%s>%s</p>' % (" hidden" if view["jobs"] else "", esc(_("No jobs."))),
        pager,
        "</main>",
    ])
    assets = '<style nonce="%s">%s</style>' % (n, ("" if layout else _PAGE_STYLE) + _STYLE)
    script = '<script nonce="%s">%s</script>' % (n, _SCRIPT)
    if layout is not None:
        return lay_out(layout, title, assets + main + script)
    return "".join([
        '<!DOCTYPE html><html lang="%s"><head><meta charset="utf-8">' % esc(html_lang()),
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>%s</title>" % esc(title), assets, '</head><body class="wide">', main, script, "</body></html>",
    ])


def _page_of(view: Dict[str, Any]) -> str:
    return _("page %d of %d") % (view["page"], view["pages"])


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
            esc(base), action, esc("?" + listq if listq else ""), esc(row["id"]), action,
            esc(_("Cancel") if action == "cancel" else _("Retry")))
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
