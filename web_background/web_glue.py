"""The web.py side: the two decorators and the job responses for ``?_t=``.

The only module that touches ``web.ctx`` and HTTP; everything it calls works
without a request.
"""

import functools
import html
import json
import re
import secrets
import threading
from typing import Any, Callable, Dict, List, Optional, TypeVar, Union, overload
from urllib.parse import parse_qs, urlencode

import web

from . import capture, jobs
from .jobs import Busy, Job, _runner, cut_marker, threaddb
from .stores import FINISHED, StoreError

F = TypeVar("F", bound=Callable[..., Any])

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_OFFSET = re.compile(r"[0-9]{1,18}\Z")
_FORMATS = ("html", "text", "json")
# CSI (colours, cursor), OSC (titles, OSC 8 hyperlinks) and lone ESC sequences
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]")


class _RequestState:
    """A @backgrounder request in progress: what the handler printed, and
    the first job it started (which that output begins)."""

    __slots__ = ("sink", "job")

    def __init__(self) -> None:
        self.sink = capture.Sink()
        self.job: Optional[Job] = None


_request = threading.local()


# -- @background ---------------------------------------------------------------


def _snapshot_ctx() -> Optional[Dict[str, Any]]:
    """A copy of the current request's ``web.ctx``, or None outside a request."""
    if web.ctx.get("env") is None:
        return None
    try:
        web.input()  # reads and caches the body, so web.input() works in the job
    except Exception:  # an unparsable body: the job sees what web.py makes of it
        pass
    snapshot = web.ctx.copy()
    snapshot["env"] = snapshot["environ"] = dict(snapshot["env"])
    snapshot["headers"] = list(snapshot.get("headers") or [])
    return snapshot


PLAIN_CTX = ("ip", "path", "query", "home", "homepath", "method")


def _plain_ctx() -> Optional[Dict[str, Any]]:
    """The documented subset of ``web.ctx`` that travels to RQ workers:
    ``PLAIN_CTX`` and the text values of ``web.input()``."""
    if web.ctx.get("env") is None:
        return None
    try:
        values = {k: v for k, v in web.input().items() if isinstance(v, str)}
    except Exception:
        values = {}
    plain = {k: web.ctx.get(k) for k in PLAIN_CTX}
    plain["input"] = values
    return plain


def _run_in_context(ctx: Optional[Dict[str, Any]], func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``func`` with ``web.ctx`` set to the starting request's (a full copy,
    or the plain subset rebuilt so that ``web.input()`` returns its values)."""
    if ctx is None:
        return func(*args, **kwargs)
    if "input" in ctx and "env" not in ctx:
        ctx = dict(ctx)
        query = urlencode(ctx.pop("input"))
        ctx["env"] = ctx["environ"] = {"REQUEST_METHOD": "GET", "QUERY_STRING": query,
                                       "REMOTE_ADDR": ctx.get("ip"), "PATH_INFO": ctx.get("path")}
        ctx.update(fullpath=(ctx.get("path") or "") + (ctx.get("query") or ""), status="200 OK", headers=[])
    web.ctx.clear()
    web.ctx.__dict__.update(ctx)
    try:
        return func(*args, **kwargs)
    finally:
        web.utils.ThreadedDict.clear_all()  # the pool thread must not keep it


jobs.run_in_context = _run_in_context


@overload
def background(func: F) -> Callable[..., Job]: ...
@overload
def background(func: None = None, *, queue: Optional[str] = None) -> Callable[[F], Callable[..., Job]]: ...


def background(func: Optional[F] = None, *, queue: Optional[str] = None) -> Any:
    """Make ``func`` run as a background job: calling it starts a job and
    returns its ``Job`` at once, inside a request or outside one.

    Inside a request the job sees a copy of ``web.ctx`` and ``web.input()``;
    inside a ``@backgrounder`` handler the response becomes a redirect to it.
    ``queue="name"`` runs it on that RQ queue instead of a thread.
    """
    if func is None:
        return functools.partial(background, queue=queue)

    @functools.wraps(func)
    def start(*args: Any, **kwargs: Any) -> Job:
        state: Optional[_RequestState] = getattr(_request, "state", None)
        first = state is not None and state.job is None
        runner = _runner()
        ctx = _plain_ctx() if runner.uses_rq(queue) else _snapshot_ctx()
        job = runner.start(func, args, kwargs, sink=state.sink if first else None, ctx=ctx, queue=queue,
                           name=getattr(func, "__qualname__", repr(func)))
        if first:
            state.job = job
        return job

    return start


background.threaddb = threaddb  # type: ignore[attr-defined]


# -- @backgrounder -------------------------------------------------------------


def backgrounder(func: F) -> F:
    """Decorate a handler method: GET ``?_t=<id>`` serves that job; otherwise
    the handler runs, its printed output starts the first job it starts, and
    the response becomes ``303 See Other`` to the same URL with ``_t=<id>``."""

    @functools.wraps(func)
    def handler(*args: Any, **kwargs: Any) -> Any:
        if web.ctx.method in ("GET", "HEAD"):
            query = parse_qs(web.ctx.env.get("QUERY_STRING", ""), keep_blank_values=True)
            if "_t" in query:
                return _serve(query)
        state = _RequestState()
        capture.route(state.sink, cancellable=False)  # cancelling the job must not break the request
        _request.state = state
        try:
            result = func(*args, **kwargs)
        except Busy:
            raise _error("503 Service Unavailable", "Too many jobs are waiting; try again shortly.",
                         {"Retry-After": "5"})
        except StoreError as e:
            raise _error("503 Service Unavailable", "The job store is unavailable: %s" % e,
                         {"Retry-After": "5"})
        finally:
            _request.state = None
            capture.unroute()
            if state.job is not None:
                _runner().flush_sink(state.job.id, state.sink)
            else:  # no job: the prints go where they would have gone
                print(state.sink.drain(), end="")
        if state.job is not None:
            raise web.seeother(web.changequery(_t=state.job.id))
        return result

    return handler  # type: ignore[return-value]


# -- serving ?_t= ----------------------------------------------------------------


_CSP = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'"


def _safe_headers(csp: str = _CSP, **more: str) -> None:
    # straight onto ctx.headers: these values are ours, not user input
    web.ctx.headers.extend([("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"),
                            ("Content-Security-Policy", csp)])
    web.ctx.headers.extend(more.items())


def _error(status: str, message: str, headers: Optional[Dict[str, str]] = None) -> web.HTTPError:
    web.ctx.headers = []
    _safe_headers()
    return web.HTTPError(status, dict(headers or {}, **{"Content-Type": "text/plain; charset=utf-8"}),
                         message + "\n")


def _wants_json() -> bool:
    accept = web.ctx.env.get("HTTP_ACCEPT", "")
    types = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    return "application/json" in types and "text/html" not in types


def _serve(query: Dict[str, List[str]]) -> Union[str, bytes]:
    job_id = query["_t"][0]
    if not _JOB_ID.match(job_id):
        raise _error("404 Not Found", "No such job.")
    fmt = query.get("_format", [None])[0]
    if fmt is None:
        fmt = "json" if _wants_json() else "html"
    if fmt not in _FORMATS:
        raise _error("400 Bad Request", "_format must be one of: %s." % ", ".join(_FORMATS))
    raw_offset = query.get("_offset", ["0"])[0]
    if not _OFFSET.match(raw_offset):
        raise _error("400 Bad Request", "_offset must be a whole number of characters >= 0.")
    offset = int(raw_offset)
    runner = _runner()
    try:
        record = runner.record(job_id)
        got = runner.store.read(job_id, offset if fmt != "html" else 0) if record else None
    except StoreError as e:
        raise _error("503 Service Unavailable", "The job store is unavailable: %s" % e, {"Retry-After": "2"})
    if record is None or got is None:
        raise _error("404 Not Found", "No such job.")
    text, end, cut = got
    if offset < cut or fmt == "html":
        text = cut_marker(cut) + text
    web.ctx.headers.extend([("X-Job-Status", str(record["status"])), ("X-Job-Offset", str(end))])
    if fmt == "text":
        _safe_headers(**{"Content-Type": "text/plain; charset=utf-8"})
        return text
    error = record["error"] if web.config.get("debug") else None
    if fmt == "json":
        _safe_headers(**{"Content-Type": "application/json"})
        return json.dumps({
            "id": job_id, "status": record["status"], "output": text, "offset": end, "cut": cut,
            "progress": record["progress"], "error": error,
        })
    nonce = secrets.token_urlsafe(12)
    _safe_headers("default-src 'none'; style-src 'nonce-%s'; base-uri 'none'; form-action 'self'; "
                  "frame-ancestors 'none'" % nonce, **{"Content-Type": "text/html; charset=utf-8"})
    return _page(record, text, error, nonce)


_STYLE = """body{font-family:system-ui,sans-serif;margin:1rem;max-width:60rem}
pre{background:#111;color:#eee;padding:.75rem;overflow:auto;white-space:pre-wrap;word-break:break-word}
progress{width:100%}.failed{color:#b00}"""


def _page(record: Dict[str, Any], output: str, error: Optional[str], nonce: str) -> str:
    status = record["status"]
    esc = html.escape
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>%s: %s</title>" % (esc(record.get("name") or "job"), esc(status)),
        '<meta http-equiv="refresh" content="1">' if status not in FINISHED else "",
        '<style nonce="%s">%s</style></head><body>' % (nonce, _STYLE),
        "<h1>%s</h1>" % esc(record.get("name") or "job"),
        '<p>Status: <strong id="status">%s</strong></p>' % esc(status),
    ]
    progress = record.get("progress")
    if progress:
        if progress.get("total"):
            parts.append('<progress value="%s" max="%s"></progress>' % (
                esc(str(progress["done"])), esc(str(progress["total"]))))
        else:
            parts.append("<progress></progress>")
        if progress.get("message"):
            parts.append("<p>%s</p>" % esc(progress["message"]))
    parts.append('<pre id="output">%s</pre>' % esc(_ANSI.sub("", output)))
    if status == "failed":
        parts.append('<p class="failed">The job failed.</p>')
        if error:
            parts.append('<pre class="failed">%s</pre>' % esc(error))
    parts.append("</body></html>")
    return "".join(parts)
