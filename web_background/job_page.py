"""The HTML of a job: its view (status, progress, output, Cancel), the page at
``?_t=<id>`` around it (standalone, or in the site's layout) and the fragment
``live()`` gives to any page.  ``responses.py`` decides who may see which job;
everything here renders what it is given, in the request's language."""

import html
import json
import os
import secrets
import time
from typing import Any, Callable, Dict, Optional, Tuple

import web

from .i18n import gettext as _
from .i18n import html_lang, ngettext
from .stores import FINISHED, JobStatus
from .terminal import MAX_LINES, palette_css, render

Layout = Callable[[Any], Any]

_CSP = ("default-src 'none'; script-src 'nonce-{n}'; style-src 'nonce-{n}'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# in the site's layout: its own stylesheets, scripts, images and fonts too, from this origin only
_LAYOUT_CSP = ("default-src 'none'; script-src 'self' 'nonce-{n}'; style-src 'self' 'nonce-{n}'; "
               "img-src 'self'; font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
               "frame-ancestors 'none'")
_NONCE = "web_background_nonce"  # web.ctx keys: one nonce a response, assets once a page, views counted
_ASSETS = "web_background_assets"
_VIEWS = "web_background_views"


def static(name: str) -> str:
    """A file of web_background/static/, as text."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "static", name), encoding="utf-8") as f:
        return f.read()


# read once, inlined in every page with its nonce
_STYLE = static("job.css") + palette_css()
_PAGE_STYLE = static("page.css")  # the standalone page's body; a layout brings its own
_SCRIPT = static("terminal.js") + static("terminal_view.js") + static("job.js")  # model, view, wiring


def status_names() -> Dict[str, str]:
    """Every status (``JobStatus`` value) as the reader's language says it."""
    return {JobStatus.QUEUED.value: _("queued"), JobStatus.RUNNING.value: _("running"),
            JobStatus.DONE.value: _("done"), JobStatus.FAILED.value: _("failed"),
            JobStatus.CANCELLED.value: _("cancelled"), JobStatus.INTERRUPTED.value: _("interrupted")}


def status_name(status: str) -> str:
    """A status as the reader's language says it."""
    return status_names().get(status, status)


class Content:
    """What a layout is given: ``str()`` is the job's HTML (its view, style and
    script), ``.title`` the page's title, as Templetor's ``$:content`` and
    ``$content.title`` read a page."""

    __slots__ = ("title", "body")

    def __init__(self, title: str, body: str) -> None:
        self.title, self.body = title, body

    def __str__(self) -> str:
        return self.body

    def __html__(self) -> str:  # Jinja2 and MarkupSafe: already HTML
        return self.body


def lay_out(layout: Layout, title: str, body: str) -> str:
    """The whole page: ``layout`` given the ``Content`` of ``title`` and ``body``."""
    return str(_once(layout)(Content(title, body)))


def _once(layout: Layout) -> Layout:
    """Templetor's ``render(dir, base="layout").layout`` is the layout laid out in
    itself (web.py's Render wraps every template in its base, the base too): take
    the template it wraps, so that ``render.layout`` works as it is."""
    if getattr(layout, "__qualname__", "") != "Render.__getattr__.<locals>.template":
        return layout
    cells = _cells(layout)
    template, base = cells.get("t"), _cells(getattr(cells.get("self"), "_base", None)).get("base")
    filename = os.path.splitext(str(getattr(template, "filename", "") or ""))[0]
    if isinstance(base, str) and (filename == base or filename.endswith(os.sep + base)):
        return template
    return layout


def _cells(func: Any) -> Dict[str, Any]:
    code, closure = getattr(func, "__code__", None), getattr(func, "__closure__", None) or ()
    return dict(zip(code.co_freevars, (c.cell_contents for c in closure))) if code is not None else {}


def nonce() -> str:
    """The nonce of the current response's own style and script (one per request)."""
    value = web.ctx.get(_NONCE)
    if value is None:
        value = web.ctx[_NONCE] = secrets.token_urlsafe(12)
    return value


def csp(layout: bool) -> str:
    """The Content-Security-Policy of a job page (or of a page holding live views)."""
    return (_LAYOUT_CSP if layout else _CSP).format(n=nonce())


def _assets(with_page_style: bool = False) -> Tuple[str, str]:
    """The style (to go before the views) and the script (after them) of job views,
    with the response's nonce: once a page (the script wires every view on the
    page, those after it too); ("", "") when this page has them already."""
    if web.ctx.get("env") is not None:
        if web.ctx.get(_ASSETS):
            return "", ""
        web.ctx[_ASSETS] = True
    n = html.escape(nonce())
    style = (_PAGE_STYLE if with_page_style else "") + _STYLE
    return '<style nonce="%s">%s</style>' % (n, style), '<script nonce="%s">%s</script>' % (n, _SCRIPT)


def _prefix() -> str:
    """The id prefix of the next live view on this page ("wb1-", "wb2-", ...)."""
    count = (web.ctx.get(_VIEWS) or 0) + 1
    if web.ctx.get("env") is not None:
        web.ctx[_VIEWS] = count
    return "wb%d-" % count


def view(record: Dict[str, Any], state: Dict[str, Any], output: str, offset: int, *, prefix: str = "",
         url: str = "", tag: str = "section") -> str:
    """One job's view: name, status, elapsed time, Cancel, progress, the output
    as a terminal shows it and the failure.  ``prefix`` goes before every id
    (several views on a page); ``url`` is the ``?_t=`` URL that serves the job
    (empty: the page's own URL)."""
    esc = html.escape
    heading = "h1" if tag == "main" else "h2"  # a page has one h1: the job page's, or the site's own
    status = record["status"]
    running = status not in FINISHED
    progress = record.get("progress") or {}
    job_url = "%s?_t=%s" % (url, record["id"])

    def ident(name: str) -> str:
        return esc(prefix + name)

    bar = '<progress id="%s"%s%s%s></progress>' % (
        ident("bar"), "" if progress else " hidden",
        ' value="%s"' % esc(str(progress["done"])) if progress.get("total") else "",
        ' max="%s"' % esc(str(progress["total"])) if progress.get("total") else "")
    error = state["error"]
    size = tty_size(record)
    screen = render(output, MAX_LINES, *size) if size else render(output, MAX_LINES)
    # what the page's script needs to go on rendering where this page stops
    terminal = {"lines": MAX_LINES, "hidden": screen.hidden, "state": screen.state()}
    names = status_names()
    words = {"status": names, "cancelling": _("Cancelling\u2026"),
             "failed": _("The job failed."), "seconds": _("%d s"),
             "hidden": [ngettext("%s earlier line not shown", "%s earlier lines not shown", n) for n in (1, 2)]}
    text_url = job_url + "&_format=text"
    return "".join([
        '<%s id="%s" class="wb-job" data-ids="%s" data-url="%s" data-offset="%d" data-state="%s" '
        'data-terminal="%s" data-words="%s">' % (
            tag, ident("job"), esc(prefix), esc(url and job_url), offset, esc(json.dumps(state)),
            esc(json.dumps(terminal)), esc(json.dumps(words, ensure_ascii=False))),
        '<%s class="wb-name">%s</%s>' % (heading, esc(record.get("name") or "job"), heading),
        '<div class="wb-meta"><span>%s <strong id="%s" class="%s">%s</strong></span>' % (
            esc(_("Status:")), ident("status"), esc(status),
            esc(_("Cancelling\u2026") if state["cancel_requested"] else names.get(status, status))),
        '<span>%s <span id="%s">%s</span></span>' % (esc(_("Elapsed:")), ident("elapsed"), esc(_elapsed(record))),
        '<form id="%s" method="post" action="%s&amp;_action=cancel"%s>'
        '<button type="submit">%s</button></form></div>' % (
            ident("cancel"), esc(job_url), "" if running else " hidden", esc(_("Cancel"))),
        bar,
        '<p id="%s" class="wb-message">%s</p>' % (ident("message"), esc(progress.get("message") or "")),
        '<p id="%s"%s><span id="%s">%s</span>: <a href="%s">%s</a> '
        '(<a href="%s&amp;_download=1">%s</a>)</p>' % (
            ident("hidden"), "" if screen.hidden else " hidden", ident("hidden-count"),
            esc(hidden_lines(screen.hidden)), esc(text_url), esc(_("the whole output as text")), esc(text_url),
            esc(_("download"))),
        '<pre id="%s"%s>%s</pre>' % (ident("output"), ' class="tty"' if size else "", screen.html()),
        '<pre id="%s" class="failed"%s>%s</pre>' % (
            ident("failed"), "" if status == "failed" else " hidden",
            esc(_("The job failed.") + ("\n" + error if error else ""))),
        "</%s>" % tag,
    ])


def page(record: Dict[str, Any], state: Dict[str, Any], output: str, offset: int,
         layout: Optional[Layout]) -> str:
    """The whole page at ``?_t=<id>``: in ``layout`` (given a ``Content``), or standalone."""
    running = record["status"] not in FINISHED
    # without JavaScript the page refreshes itself until the job has ended
    refresh = '<noscript><meta http-equiv="refresh" content="1"></noscript>' if running else ""
    title = "%s: %s" % (record.get("name") or "job", status_name(record["status"]))
    main = view(record, state, output, offset, tag="main")
    if layout is not None:
        style, script = _assets()
        return lay_out(layout, title, refresh + style + main + script)
    style, script = _assets(with_page_style=True)
    return "".join([
        '<!DOCTYPE html><html lang="%s"><head><meta charset="utf-8">' % html.escape(html_lang()),
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>%s</title>" % html.escape(title), refresh,
        style, "</head><body>", main, script, "</body></html>",
    ])


def fragment(record: Dict[str, Any], state: Dict[str, Any], output: str, offset: int, url: str) -> str:
    """A live view of the job for any page, its updates from ``url?_t=<id>``."""
    style, script = _assets()
    return style + view(record, state, output, offset, prefix=_prefix(), url=url) + script


def tty_size(record: Dict[str, Any]) -> Optional[Tuple[int, int]]:
    """The (columns, rows) of a ``tty`` job's terminal, or None."""
    size = record.get("tty")
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v >= 2 for v in size):
        return size[0], size[1]
    return None


def hidden_lines(count: int) -> str:
    """The notice of how many earlier lines the view no longer shows."""
    return ngettext("%s earlier line not shown", "%s earlier lines not shown", count) % "{:,}".format(count)


def _elapsed(record: Dict[str, Any]) -> str:
    start = record.get("started") or record.get("created")
    if not start:
        return "-"
    return _("%d s") % max(0, round((record.get("finished") or time.time()) - start))
