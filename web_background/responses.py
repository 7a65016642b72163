"""How a job is served at ``?_t=<id>``: the HTML page, text, JSON, a chunked
text stream, Server-Sent Events, and the cancel POST.

Everything here validates its input first (``_t``, ``_offset``, ``_format``,
``Accept``, ``Last-Event-ID``) and answers bad input with a short 400/404/503,
never a traceback.
"""

import hmac
import json
import logging
import re
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import web

from . import job_page
from .i18n import gettext as _
from .jobs import Job, get_runner, cut_marker, page_setting
from .stores import FINISHED, StoreError, redact

JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_OFFSET = re.compile(r"[0-9]{1,18}\Z")
FORMATS = ("html", "text", "json", "stream", "events")
_FILENAME_JUNK = re.compile(r"[^A-Za-z0-9._-]+")
_CSP = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'"
_LOCATION_SAFE = "/?&=%+:@!$'()*,;~"  # kept as they are in a Location; anything else is %-escaped
POLL_INTERVAL = 0.1  # how often a stream looks for new output
KEEPALIVE = 5.0  # seconds of silence after which an event stream sends a comment

Query = Dict[str, List[str]]
log = logging.getLogger("web_background")


# -- answers ------------------------------------------------------------------------


def safe_headers(csp: str = _CSP, **more: str) -> None:
    # straight onto ctx.headers: these values are ours, not user input
    web.ctx.headers.extend([("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"),
                            ("Content-Security-Policy", csp)])
    web.ctx.headers.extend(more.items())


def error(status: str, message: str, headers: Optional[Dict[str, str]] = None) -> web.HTTPError:
    """A short plain-text answer for a request we refuse, in the reader's language."""
    web.ctx.headers = []
    safe_headers(**dict(headers or {}, **{"Content-Type": "text/plain; charset=utf-8"}))
    return web.HTTPError(status, {}, _(message) + "\n")


def see_other(target: str) -> web.HTTPError:
    """``303 See Other`` to ``target``: ``"?query"`` (this same URL with another
    query) or ``"/path"`` below the app's home, sent relative (no scheme or host),
    which the browser resolves against the URL it asked for.  web.seeother's
    absolute URL is built from the Host header, which a proxy may pass without its
    port (Debian's uwsgi_params and fastcgi_params say $host) or with the wrong
    scheme (TLS ended at the proxy).  The Location never leaves the site: control
    characters, backslashes and non-ASCII are %-escaped, and a path never starts
    with ``//`` (a browser reads ``//x`` and ``/\\x`` as host x)."""
    location = quote(target if target.startswith("?") else web.ctx.homepath + target, safe=_LOCATION_SAFE)
    if location.startswith("/"):
        location = "/" + location.lstrip("/")
    safe_headers(**{"Content-Type": "text/html", "Location": location})
    return web.HTTPError("303 See Other", {}, "")


def see_this_page(**changes: Optional[str]) -> web.HTTPError:
    """``303`` to the URL asked for with these query parameters set (None:
    dropped): a query-only Location, so the path is exactly the browser's own."""
    query = parse_qs(web.ctx.env.get("QUERY_STRING", ""), keep_blank_values=True)
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = [value]
    return see_other("?" + urlencode(query, doseq=True))


def store_unavailable(e: Exception) -> web.HTTPError:
    """``503`` with a fixed short body for a store that failed; what failed goes
    to the server's log only (with passwords and tokens redacted), never to the
    client: a store URL holds a password, a SQLite path the server's layout."""
    log.error("the job store is unavailable: %s", redact(str(e)))
    return error("503 Service Unavailable", "The job store is unavailable; try again shortly.", {"Retry-After": "2"})


def _own_origins() -> Tuple[str, ...]:
    """This request's own scheme://host[:port]; with a ``Host`` that lacks the
    port (nginx's Debian uwsgi_params and fastcgi_params pass $host), also the
    one with the port the server listens on."""
    own = web.ctx.homedomain.lower()
    port = web.ctx.env.get("SERVER_PORT")
    if re.search(r":[0-9]+\Z", own) or not port or port == {"http": "80", "https": "443"}.get(web.ctx.protocol):
        return (own,)
    return own, "%s:%s" % (own, port)


def _same_origin() -> bool:
    """The request comes from a page of this site: its ``Origin`` (or, without
    one, its ``Referer``'s origin) is this request's own (see ``_own_origins``)."""
    env = web.ctx.env
    origin = env.get("HTTP_ORIGIN")
    if origin is None:
        referer = env.get("HTTP_REFERER")
        if not referer:
            return False
        try:
            parts = urlsplit(referer)
        except ValueError:
            return False
        origin = "%s://%s" % (parts.scheme, parts.netloc.rsplit("@", 1)[-1])
    return origin.lower() in _own_origins()


def check_same_origin() -> None:
    """403 for a POST that another site's page may have made a browser send."""
    if not _same_origin():
        raise error("403 Forbidden", "Forbidden: not from this site (Origin or Referer).")


def accepts(media_type: str) -> bool:
    """The request asks for ``media_type`` (and, for anything but HTML, not for HTML too)."""
    accept = web.ctx.env.get("HTTP_ACCEPT", "")
    types = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    return media_type in types and (media_type == "text/html" or "text/html" not in types)


def _one(query: Query, name: str, default: Optional[str] = None) -> Optional[str]:
    return query.get(name, [default])[0]


def _offset(raw: Optional[str]) -> int:
    if raw is None:
        return 0
    if not _OFFSET.match(raw):
        raise error("400 Bad Request", "_offset and Last-Event-ID must be a whole number of characters >= 0.")
    return int(raw)


def _download(raw: Optional[str], fmt: str) -> bool:
    """``_download=1`` (with ``_format=text``): the output as an attachment."""
    if raw is None or raw == "0":
        return False
    if raw != "1" or fmt != "text":
        raise error("400 Bad Request", "_download must be 0 or 1, and 1 goes with _format=text.")
    return True


def _filename(record: Dict[str, Any]) -> str:
    """``<job name>-<job id>.txt``, the name made a safe ASCII file name."""
    name = _FILENAME_JUNK.sub("_", str(record.get("name") or "job")).strip("._")[:80] or "job"
    return "%s-%s.txt" % (name, record["id"])


def _job(job_id: Optional[str], owner: Optional[str]) -> Dict[str, Any]:
    """The record of a job this requester may see; 404 for anything else."""
    try:
        record = get_runner().record(job_id) if job_id and JOB_ID.match(job_id) else None
    except StoreError as e:
        raise store_unavailable(e)
    if record is None or not _owned_by(record, owner):
        raise error("404 Not Found", "No such job.")
    return record


def _owned_by(record: Dict[str, Any], owner: Optional[str]) -> bool:
    expected = record.get("owner")
    if expected is None:
        return True
    return owner is not None and hmac.compare_digest(str(expected).encode(), owner.encode())


# -- GET ?_t= ------------------------------------------------------------------------


def serve(query: Query, owner: Optional[str], layout: Optional[job_page.Layout] = None) -> Union[str, Iterator[bytes]]:
    """Answer ``GET ?_t=<id>`` in the format asked for; the HTML page in ``layout``
    (or the ``layout`` setting), standalone without one."""
    job_id = _one(query, "_t")
    fmt = _one(query, "_format")
    if fmt is None:
        fmt = "events" if accepts("text/event-stream") else "json" if accepts("application/json") else "html"
    if fmt not in FORMATS:
        raise error("400 Bad Request", _("_format must be one of: %s.") % ", ".join(FORMATS))
    download = _download(_one(query, "_download"), fmt)
    last_event = web.ctx.env.get("HTTP_LAST_EVENT_ID")
    offset = _offset(last_event if fmt == "events" and last_event is not None else _one(query, "_offset"))
    record = _job(job_id, owner)
    if layout is None:
        layout = page_setting("layout")
    if fmt in ("stream", "events"):
        return _stream(record["id"], offset, events=fmt == "events")
    try:
        got = get_runner().store.read(record["id"], 0 if fmt == "html" else offset)
    except StoreError as e:
        raise store_unavailable(e)
    if got is None:
        raise error("404 Not Found", "No such job.")
    text, end, cut = got
    if offset < cut or fmt == "html":
        text = cut_marker(cut, _ if fmt == "html" else str) + text
    web.ctx.headers.extend([("X-Job-Status", str(record["status"])), ("X-Job-Offset", str(end))])
    if fmt == "text":
        safe_headers(**{"Content-Type": "text/plain; charset=utf-8"})
        if download:
            web.ctx.headers.append(("Content-Disposition", 'attachment; filename="%s"' % _filename(record)))
        return text
    if fmt == "json":
        safe_headers(**{"Content-Type": "application/json"})
        return json.dumps(dict(_state(record), output=text, offset=end, cut=cut))
    safe_headers(job_page.csp(layout=layout is not None), **{"Content-Type": "text/html; charset=utf-8"})
    return job_page.page(record, _state(record), text, end, layout)


def _state(record: Dict[str, Any]) -> Dict[str, Any]:
    """What a client is told of a job besides its output."""
    return {
        "id": record["id"], "status": record["status"], "progress": record.get("progress"),
        "cancel_requested": cancelling(record),
        "attempt": record.get("attempt") or 1, "attempts": record.get("attempts") or 1,
        "error": record.get("error") if web.config.get("debug") else None,
        "created": record.get("created"), "started": record.get("started"), "finished": record.get("finished"),
    }


def cancelling(record: Dict[str, Any]) -> bool:
    """A cancel was asked for and the job has not ended yet."""
    return bool(record.get("cancel")) and record["status"] not in FINISHED


# -- streams ---------------------------------------------------------------------------

_streams = {"active": 0}
_streams_lock = threading.Lock()


def _take_stream_slot(multithread: bool) -> bool:
    """A server thread may be held by a stream only while few others are: past
    ``max_streams`` (or on a server with one thread per process), a stream
    answers what there is now and lets the client come back."""
    if not multithread:
        return False
    with _streams_lock:
        if _streams["active"] >= get_runner().settings["max_streams"]:
            return False
        _streams["active"] += 1
        return True


def _release_stream_slot() -> None:
    with _streams_lock:
        _streams["active"] -= 1


def _stream(job_id: str, offset: int, events: bool) -> Iterator[bytes]:
    if events:
        safe_headers(**{"Content-Type": "text/event-stream; charset=utf-8", "X-Accel-Buffering": "no"})
    else:
        safe_headers(**{"Content-Type": "text/plain; charset=utf-8", "X-Accel-Buffering": "no",
                        "X-Job-Offset": str(offset)})
    return _stream_body(job_id, offset, events, bool(web.ctx.env.get("wsgi.multithread", False)))


def _sse(event: str, offset: int, data: Dict[str, Any]) -> bytes:
    # one JSON line per event: output with \r or \n can never break the framing
    return ("id: %d\nevent: %s\ndata: %s\n\n" % (offset, event, json.dumps(data))).encode("utf-8")


def _stream_body(job_id: str, offset: int, events: bool, multithread: bool) -> Iterator[bytes]:
    runner = get_runner()
    held = _take_stream_slot(multithread)
    deadline = time.monotonic() + (runner.settings["stream_seconds"] if held else 0)
    last_state: Optional[Tuple[Any, ...]] = None
    last_sent = time.monotonic()
    try:
        if events:
            yield b"retry: %d\n\n" % (1000 if held else 2000)
        while True:
            try:
                record = runner.record(job_id)
                got = runner.store.read(job_id, offset) if record else None
            except StoreError:
                return  # the client retries; a poll will then answer 503
            if record is None or got is None:
                return
            text, end, cut = got
            if offset < cut:
                text = cut_marker(cut) + text
            if text:
                offset = end
                last_sent = time.monotonic()
                yield _sse("output", offset, {"text": text, "offset": offset}) if events else text.encode("utf-8")
            state = (record["status"], json.dumps(record.get("progress")), record.get("started"),
                     cancelling(record))
            if events and state != last_state:
                last_state = state
                yield _sse("end" if record["status"] in FINISHED else "state", offset, _state(record))
            if record["status"] in FINISHED or time.monotonic() >= deadline:
                return
            if events and time.monotonic() - last_sent >= KEEPALIVE:
                last_sent = time.monotonic()
                yield b": keep-alive\n\n"
            time.sleep(POLL_INTERVAL)
    finally:
        if held:
            _release_stream_slot()


# -- POST ?_t=...&_action=cancel -------------------------------------------------------


def cancel(query: Query, owner: Optional[str]) -> str:
    """Cancel a job (a POST from this site's pages, never a GET); 303 back to its
    page, or JSON."""
    check_same_origin()
    record = _job(_one(query, "_t"), owner)
    try:
        cancelled = get_runner().cancel(record["id"])
    except StoreError as e:
        raise store_unavailable(e)
    if accepts("application/json") or _one(query, "_format") == "json":
        safe_headers(**{"Content-Type": "application/json"})
        return json.dumps({"id": record["id"], "cancelled": cancelled})
    raise see_this_page(_action=None, _format=None)


# -- a live view for any page ----------------------------------------------------------


def live(job: Union[Job, str], url: Optional[str] = None, owner: Optional[Callable[[], Any]] = None) -> str:
    """An HTML fragment showing ``job`` (a ``Job`` or a job id) live, for any page's
    template (``$:live(job)``): progress, output, status and Cancel, updated from
    ``url?_t=<id>`` (default: the @backgrounder handler that started the job, else
    this request's path).  Owner rules apply: a job with an owner shows only to
    that owner (``owner``: a callable as ``@backgrounder(owner=...)`` takes, giving
    the viewer); for anyone else, and for a job not retained, the fragment is empty."""
    job_id = job.id if isinstance(job, Job) else job
    try:
        record = get_runner().record(job_id) if isinstance(job_id, str) and JOB_ID.match(job_id) else None
        got = get_runner().store.read(job_id, 0) if record is not None else None
    except StoreError:
        return ""
    viewer = owner() if owner is not None else None
    if record is None or got is None or not _owned_by(record, None if viewer is None else str(viewer)):
        return ""
    if url is None:
        url = record.get("page") or (web.ctx.homepath + web.ctx.path if web.ctx.get("env") is not None else "")
    if web.ctx.get("env") is not None and not any(k.lower() == "content-security-policy"
                                                  for k, _v in web.ctx.get("headers") or []):
        safe_headers(job_page.csp(layout=True))
    text, end, cut = got
    return job_page.fragment(record, _state(record), cut_marker(cut, _) + text, end, url)
