"""Checks of the server a job is started under, for setups that cannot work.

The deployment matrix (tests/test_deploy.py) runs the same app under web.py's
own server, gunicorn (sync, gthread, gevent), uWSGI, Waitress, mod_wsgi and
flup FastCGI behind nginx and lighttpd.  Most setups work as they are; these
do not, and fail in ways that say nothing of why.  ``check_server`` finds them
and raises a ``RuntimeError`` that says what to change:

- gevent (or eventlet) monkey-patched ``threading`` after web.py was imported
  (``gunicorn -k gevent --preload``): web.py's ``web.ctx`` is then one object
  shared by every greenlet of the process, so concurrent requests read each
  other's request and a job gets the wrong one (seen: a job failing with
  ``'ThreadedDict' object has no attribute 'env'``, concurrent 500s).
- uWSGI before 2.0.27 without ``--enable-threads`` (or ``--threads``): the
  Python threads an app starts run only while a request is being served, so
  a thread job stalls between requests.
- uWSGI's ``harakiri`` at or below ``stream_seconds``: a live page holds its
  request that long, and harakiri then kills the worker with every job in it.

Each check costs a few attribute lookups: call ``check_server`` at every job
start, or once per process.
"""

import sys
from typing import Any, Dict, Optional, Tuple

__all__ = ["check_server"]

# uWSGI enables Python threads by default from this version on ("enable-threads"
# became a stub option); before it, app threads need --enable-threads or --threads.
UWSGI_THREADS_BY_DEFAULT = (2, 0, 27)
_GREEN = ("gevent", "eventlet")


def check_server(environ: Optional[Dict[str, Any]] = None) -> None:
    """Raise ``RuntimeError`` (saying what to change) when this process cannot
    run background jobs correctly; return None when it can.

    ``environ``: the WSGI environ of the request starting the job (``web.ctx.env``),
    or None outside a request.
    """
    for problem in (_ctx_shared_between_greenlets(), _uwsgi_threads_off(), _uwsgi_harakiri_cuts_streams()):
        if problem:
            raise RuntimeError(problem)


# -- gevent / eventlet ----------------------------------------------------------------


def _ctx_shared_between_greenlets() -> Optional[str]:
    """``threading.local`` was replaced (monkey-patched) after web.py made
    ``web.utils.ThreadedDict`` (``web.ctx``) from the real one."""
    utils = sys.modules.get("web.utils")
    threading = sys.modules.get("threading")
    if utils is None or threading is None:
        return None
    local = getattr(threading, "local", None)
    threaded_dict = getattr(utils, "ThreadedDict", None)
    if local is None or threaded_dict is None or local in threaded_dict.__mro__:
        return None
    library = (getattr(local, "__module__", "") or "").split(".", 1)[0]
    if library not in _GREEN:
        return None  # replaced by something else: not a setup we know to be broken
    patch = {"gevent": "from gevent import monkey; monkey.patch_all()",
             "eventlet": "import eventlet; eventlet.monkey_patch()"}[library]
    return (
        "%(lib)s monkey-patched threading after web.py was imported, so web.ctx (web.utils.ThreadedDict) is "
        "one object shared by every greenlet of this process: concurrent requests read each other's request, "
        "and background jobs get the wrong one. Patch before web.py is imported: with gunicorn, drop --preload "
        "(its %(lib)s worker then patches before it loads the app), or start the module gunicorn loads first "
        "(a config file given with -c, or the app module itself) with `%(patch)s`; or use threads "
        "(gunicorn -k gthread)." % {"lib": library, "patch": patch}
    )


# -- uWSGI ----------------------------------------------------------------------------


def _uwsgi() -> Any:
    return sys.modules.get("uwsgi")  # importable only inside uWSGI, where it is always loaded


def _version(raw: Any) -> Tuple[int, ...]:
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw or "")
    parts = []
    for piece in text.split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _option(opt: Dict[Any, Any], name: str) -> Any:
    for key in (name, name.encode()):
        if key in opt:
            value = opt[key]
            return value[-1] if isinstance(value, list) and value else value
    return None


def _truthy(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def _uwsgi_threads_off() -> Optional[str]:
    uwsgi = _uwsgi()
    if uwsgi is None:
        return None
    version = _version(getattr(uwsgi, "version", b""))
    if not version or version >= UWSGI_THREADS_BY_DEFAULT:
        return None
    opt = getattr(uwsgi, "opt", None) or {}
    threads = _option(opt, "threads")
    try:
        threaded = int(threads.decode() if isinstance(threads, bytes) else threads or 0) > 0
    except (TypeError, ValueError):
        threaded = _truthy(threads)
    if threaded or _truthy(_option(opt, "enable-threads")):
        return None
    return (
        "uWSGI %s runs without Python threads (no --enable-threads): the threads this app starts run only while "
        "a request is being served, so background jobs stall between requests. Add --enable-threads to uWSGI's "
        "command line (enable-threads = true in its ini), or run it with --threads N, or use uWSGI 2.0.27 or "
        "newer, where threads are on by default." % ".".join(map(str, version))
    )


def _uwsgi_harakiri_cuts_streams() -> Optional[str]:
    uwsgi = _uwsgi()
    if uwsgi is None:
        return None
    raw = _option(getattr(uwsgi, "opt", None) or {}, "harakiri")
    try:
        harakiri = int(raw.decode() if isinstance(raw, bytes) else raw or 0)
    except (TypeError, ValueError):
        return None
    if harakiri <= 0:
        return None
    from .jobs import get_runner

    stream_seconds = get_runner().settings["stream_seconds"]
    if stream_seconds < harakiri:
        return None
    return (
        "uWSGI's harakiri (%d s) is not above stream_seconds (%g s): a live job page holds its request for "
        "stream_seconds, and harakiri then kills the worker with every job running in it. Call "
        "web_background.configure(stream_seconds=%d) (or less), or raise harakiri above %g."
        % (harakiri, stream_seconds, max(1, harakiri // 2), stream_seconds)
    )
