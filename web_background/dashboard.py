"""Every retained job in the browser: a web.py application to mount under a prefix.

    urls = ("/jobs", web_background.dashboard(allow=is_admin), "/", "index")

Paths, relative to the prefix:

- ``GET /`` the list (newest first, ``?status=``, ``?name=``, ``?page=``);
  ``?_format=json`` (or ``Accept: application/json``) the same as JSON, which
  the page's script polls every second.
- ``GET /job?_t=<id>`` the job's own page (every format of ``responses.serve``);
  ``POST /job?_t=<id>&_action=cancel`` its Cancel button.
- ``POST /cancel``, ``POST /retry`` (form field ``id``) and ``POST /purge``:
  ``303`` back to the list (a retry: to the new job's page), or JSON with
  ``Accept: application/json``.  Only from the same origin; a GET never
  changes anything.
"""

import json
import logging
import math
import re
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlencode

import web

from . import jobs, responses
from .dashboard_page import (
    _MAX_NAME,
    STATUSES,
    _duration,
    _list_url,
    _page,
    _progress_text,
)
from .i18n import gettext as _
from .job_page import csp, status_name
from .jobs import Busy, get_runner, page_setting
from .stores import FINISHED, Page, StoreError, count_statuses
from .terminal import render

log = logging.getLogger("web_background")

PAGE_SIZE = 50  # jobs a page shows
TAIL = 2000  # characters read from the end of a job's output for its last line
LOCAL = ("127.0.0.1", "::1", "::ffff:127.0.0.1")  # who may look without ``allow``
# a request that passed through a proxy (on this host, its REMOTE_ADDR is a loopback address too)
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED", "HTTP_VIA", "HTTP_X_FORWARDED_HOST",
                 "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_SERVER", "HTTP_X_CLIENT_IP", "HTTP_TRUE_CLIENT_IP",
                 "HTTP_CF_CONNECTING_IP")
_LOCAL_HOST = re.compile(r"(?:localhost|127\.0\.0\.1|\[::1\])(?::[0-9]{1,5})?\Z", re.IGNORECASE)
_PAGE = re.compile(r"[1-9][0-9]{0,8}\Z")
_LIST_PARAMS = ("status", "name", "page")

Query = Dict[str, List[str]]


def dashboard(allow: Optional[Callable[[], Any]] = None,
              owner: Optional[Callable[[], Any]] = None,
              layout: Optional[Callable[[Any], Any]] = None) -> web.application:
    """A web.py application listing retained jobs, live, with Cancel, Retry and
    Purge; mount it under a prefix: ``urls = ("/jobs", dashboard(...), ...)``.

    ``allow``: a callable deciding per request (truthy: served, else ``403``);
    without ``allow`` and ``owner`` only local requests are served (from a
    loopback address, through no proxy, to a loopback name).  ``owner``: a
    callable giving the requester's identity, as ``@backgrounder(owner=...)``
    takes: the dashboard then shows exactly the jobs that owner started and
    acts on them only (another's job is ``404``).
    Both given: both apply.  ``layout``: its pages (the list, each job's) in this
    layout, as ``configure(layout=...)`` takes (default: that setting).
    """
    if layout is not None and not callable(layout):
        raise TypeError("layout must be a callable given the page's content, not %r" % (layout,))
    board = _Board(allow, owner, layout)
    urls = ("/?", _handler(board, get=board.listing),
            "/job", _handler(board, get=board.job_page, post=board.job_cancel),
            "/cancel", _handler(board, post=board.cancel),
            "/retry", _handler(board, post=board.retry),
            "/purge", _handler(board, post=board.purge),
            "/.*", _handler(board, get=_unknown, post=_unknown))
    return web.application(urls, {}, autoreload=False)


def _handler(board: "_Board", get: Optional[Callable[[], Any]] = None,
             post: Optional[Callable[[], Any]] = None) -> type:
    """A web.py handler class answering GET and POST with these, through the
    board's guard; a method not given is 405."""

    class handler:
        def GET(self) -> Any:
            return board.guard(get or _use_post)

        def POST(self) -> Any:
            return board.guard(post or _use_get)

    return handler


def _use_post() -> Any:
    raise responses.error("405 Method Not Allowed", "Use POST.", {"Allow": "POST"})


def _use_get() -> Any:
    raise responses.error("405 Method Not Allowed", "Use GET.", {"Allow": "GET"})


def _unknown() -> Any:
    raise responses.error("404 Not Found", "No such page.")


def _query() -> Query:
    return parse_qs(web.ctx.env.get("QUERY_STRING", ""), keep_blank_values=True)


def _one(query: Query, name: str, default: str = "") -> str:
    return query.get(name, [default])[0]


def _bad(message: str) -> web.HTTPError:
    return responses.error("400 Bad Request", message)


def _no_such_job() -> web.HTTPError:
    return responses.error("404 Not Found", "No such job.")


def _wants_json() -> bool:
    return responses.accepts("application/json") or _one(_query(), "_format") == "json"


def _json(value: Any) -> str:
    responses.safe_headers(**{"Content-Type": "application/json"})
    return json.dumps(value)


def _is_local(env: Dict[str, Any]) -> bool:
    """The request was made on this machine, to this machine by a loopback name:
    from a loopback address, through no proxy (none of ``PROXY_HEADERS``), with
    ``Host`` localhost, 127.0.0.1 or [::1] (any port; another name is DNS
    rebinding).  Headers can only refuse: none makes a request local."""
    return (env.get("REMOTE_ADDR") in LOCAL and not any(name in env for name in PROXY_HEADERS)
            and bool(_LOCAL_HOST.match(env.get("HTTP_HOST") or "")))


def _last_line(record: Dict[str, Any]) -> str:
    """The last non-empty line of the job's output (escape sequences dropped)."""
    got = get_runner().store.read(record["id"], max(0, (record.get("end") or 0) - TAIL))
    if not got:
        return ""
    lines = [line for line in render(got[0], 50).text().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class _Board:
    """One mounted dashboard: who may see it, and what each of its paths answers."""

    def __init__(self, allow: Optional[Callable[[], Any]], owner: Optional[Callable[[], Any]],
                 layout: Optional[Callable[[Any], Any]] = None) -> None:
        self.allow, self.owner, self.layout = allow, owner, layout

    # -- access ------------------------------------------------------------------------

    def guard(self, handler: Callable[[], Any]) -> Any:
        """Answer with ``handler`` if this request is allowed, else 403; a store
        that is down is 503, a bug a short 500 (never web.py's traceback page)."""
        try:
            self._check_access()
            return handler()
        except web.HTTPError:
            raise
        except StoreError as e:
            raise responses.store_unavailable(e) from None
        except Exception:
            log.exception("the jobs dashboard failed")
            raise responses.error("500 Internal Server Error", "Internal error.") from None

    def _check_access(self) -> None:
        if self.allow is not None:
            if not self.allow():
                raise responses.error("403 Forbidden", "Forbidden: you may not see these jobs.")
        elif self.owner is None and not _is_local(web.ctx.env):
            raise responses.error("403 Forbidden",
                                  "Forbidden: local requests only; pass dashboard(allow=...) to serve others.")

    def _identity(self) -> Optional[str]:
        value = self.owner() if self.owner is not None else None
        return None if value is None else str(value)

    def _mine(self, record: Dict[str, Any], identity: Optional[str]) -> bool:
        if self.owner is None:
            return True
        return identity is not None and record.get("owner") is not None and str(record["owner"]) == identity

    def _record(self, job_id: Optional[str]) -> Dict[str, Any]:
        """The record of a job this requester may act on; 404 for anything else."""
        record = get_runner().record(job_id) if job_id and responses.JOB_ID.match(job_id) else None
        if record is None or not self._mine(record, self._identity()):
            raise _no_such_job()
        return record

    # -- the list -----------------------------------------------------------------------

    def view(self, query: Query) -> Dict[str, Any]:
        """The list as JSON gives it: a page of rows, counts per status, the pages
        (one page query: what the store holds costs nothing here)."""
        status, name, page = _filters(query)
        runner, identity, now = get_runner(), self._identity(), time.time()
        if self.owner is not None and identity is None:  # nobody's jobs
            found = Page([], count_statuses(()), 0)
        else:
            found = runner.store.page(status=status or None, name=name or None,
                                      owner=identity if self.owner is not None else None,
                                      limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        ttl = runner.settings["ttl"]
        records = []
        for record in found.jobs:
            if record["status"] not in FINISHED:  # its process may have died, or it may have news: record() says
                record = runner.record(record["id"])
            elif record.get("finished") is not None and record["finished"] + ttl <= now:
                record = None  # past ttl, not yet pruned
            if record is not None:
                records.append(record)
        counts = dict(count_statuses(()), **found.counts)
        matching = found.matching or 0
        pages = max(1, math.ceil(matching / PAGE_SIZE))
        base = web.ctx.homepath

        def page_url(n: int) -> Optional[str]:
            return _list_url(base, status, name, n) if 1 <= n <= pages else None

        return {
            "jobs": [self._row(r, now) for r in records],
            "counts": counts, "total": sum(counts.values()), "matching": matching,
            "running": counts["running"], "queued": counts["queued"],
            "status": status, "name": name, "page": page, "pages": pages,
            "newer": page_url(page - 1), "older": page_url(page + 1), "now": now,
        }

    def _row(self, record: Dict[str, Any], now: float) -> Dict[str, Any]:
        status = record["status"]
        ended = status in FINISHED
        cancelling = responses.cancelling(record)
        started, finished = record.get("started"), record.get("finished")
        actions = [a for a, ok in (("cancel", not ended), ("retry", ended and bool(record.get("call")))) if ok]
        return {
            "id": record["id"], "status": status,
            "status_text": _("Cancelling\u2026") if cancelling else status_name(status),
            "cancel_requested": cancelling, "name": str(record.get("name") or "job"),
            "owner": None if record.get("owner") is None else str(record["owner"]),
            "progress": record.get("progress"), "progress_text": _progress_text(record.get("progress")),
            "created": record.get("created"), "started": started, "finished": finished,
            "age": _duration(now - (record.get("created") or now)),
            "elapsed": _duration((finished or now) - started) if started else "-",
            "last_line": _last_line(record), "url": "%s/job?_t=%s" % (web.ctx.homepath, record["id"]),
            "actions": actions,
        }

    def listing(self) -> str:
        query = _query()
        fmt = _one(query, "_format") or ("json" if responses.accepts("application/json") else "html")
        if fmt not in ("html", "json"):
            raise _bad("_format must be html or json.")
        view = self.view(query)
        if fmt == "json":
            return _json(view)
        layout = self.layout or page_setting("layout")
        responses.safe_headers(csp(layout=layout is not None), **{"Content-Type": "text/html; charset=utf-8"})
        return _page(view, self.owner is not None, layout)

    # -- a job's own page ---------------------------------------------------------------

    def _as_seen_by(self, query: Query) -> Optional[str]:
        """The identity ``responses`` checks a job against: the requester's in
        owner mode, else the job's own owner (this dashboard may see every job)."""
        record = self._record(_one(query, "_t") or None)
        return self._identity() if self.owner is not None else record.get("owner")

    def job_page(self) -> Any:
        query = _query()
        return responses.serve(query, self._as_seen_by(query), self.layout)

    def job_cancel(self) -> str:
        responses.check_same_origin()
        query = _query()
        if query.get("_action") != ["cancel"]:
            raise _bad("Only _action=cancel is posted here.")
        return responses.cancel(query, self._as_seen_by(query))

    # -- actions --------------------------------------------------------------------------

    def _posted_id(self) -> Dict[str, Any]:
        responses.check_same_origin()
        try:
            job_id = web.input(id="").id
        except Exception:
            raise _bad("The form could not be read.") from None
        return self._record(job_id if isinstance(job_id, str) else None)

    def _back(self) -> web.HTTPError:
        """303 to the list the action was posted from (its filters and page)."""
        query = _query()
        kept = [(k, _one(query, k)) for k in _LIST_PARAMS if k in query]
        return responses.see_other("/" + ("?" + urlencode(kept) if kept else ""))

    def cancel(self) -> str:
        record = self._posted_id()
        cancelled = get_runner().cancel(record["id"])
        if _wants_json():
            return _json({"id": record["id"], "cancelled": cancelled})
        raise self._back()

    def retry(self) -> str:
        record = self._posted_id()
        try:
            new = jobs.retry(record["id"])
        except LookupError:
            raise _no_such_job() from None
        except ValueError as e:
            raise responses.error("409 Conflict", str(e)) from None
        except Busy:
            raise responses.error("503 Service Unavailable", "Too many jobs are waiting; try again shortly.",
                                  {"Retry-After": "5"}) from None
        if _wants_json():
            return _json({"id": record["id"], "retried_as": new.id})
        raise responses.see_other("/job?" + urlencode({"_t": new.id}))

    def purge(self) -> str:
        responses.check_same_origin()
        runner = get_runner()
        if self.owner is None:
            dropped = runner.store.expire(ttl=0, max_jobs=sys.maxsize)
        else:
            identity, dropped = self._identity(), 0
            if identity is not None:
                for status in sorted(FINISHED):
                    for record in list(runner.store.walk(status=status, owner=identity)):
                        runner.store.delete(record["id"])
                        dropped += 1
        if _wants_json():
            return _json({"purged": dropped})
        raise self._back()


def _filters(query: Query) -> Tuple[str, str, int]:
    """``status``, ``name`` and ``page`` of a list request; 400 for bad ones."""
    status = _one(query, "status")
    if status and status not in STATUSES:
        raise _bad(_("status must be one of: %s.") % ", ".join(STATUSES))
    name = _one(query, "name")
    if len(name) > _MAX_NAME:
        raise _bad(_("name must be at most %d characters.") % _MAX_NAME)
    page = _one(query, "page", "1")
    if not _PAGE.match(page):
        raise _bad("page must be a whole number >= 1.")
    return status, name, int(page)
