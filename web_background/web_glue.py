"""The web.py side: the two decorators, and the request context a job runs in.

With ``responses`` (how a job is served), the only code that touches
``web.ctx``; everything below works without a request.
"""

import functools
import json
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar, overload
from urllib.parse import parse_qs, urlencode

import web

from . import capture, deployment, executors, jobs, responses, runner
from .jobs import Busy, Job, get_runner, check_executor, check_timeout, check_tty, threaddb
from .stores import StoreError

F = TypeVar("F", bound=Callable[..., Any])


class _RequestState:
    """A @backgrounder request in progress: what the handler printed, the
    first job it started (which that output begins) and who asked."""

    __slots__ = ("sink", "job", "owner", "new", "page")

    def __init__(self, owner: Optional[str]) -> None:
        self.sink = capture.Sink()
        self.job: Optional[Job] = None
        self.owner = owner
        self.page = web.ctx.homepath + web.ctx.path  # the handler that serves its jobs' ?_t= (live() points there)
        self.new = True  # False: the job was already running (its key), the handler's output is not its


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
    # the request's error stream ends with the request (mod_wsgi raises on a later write):
    # the job's web.debug() and the like write to the job's own output instead
    snapshot["env"]["wsgi.errors"] = capture.stream("stderr")
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


runner.run_in_context = _run_in_context


@overload
def background(func: F) -> Callable[..., Job]: ...
@overload
def background(func: None = None, *, executor: Optional[str] = None, queue: Optional[str] = None,
               timeout: Optional[float] = None, retries: int = 0, retry_delay: float = 1.0,
               backoff: float = 2.0, key: Any = None,
               tty: Optional[bool] = None) -> Callable[[F], Callable[..., Job]]: ...


def background(func: Optional[F] = None, *, executor: Optional[str] = None, queue: Optional[str] = None,
               timeout: Optional[float] = None, retries: int = 0, retry_delay: float = 1.0,
               backoff: float = 2.0, key: Any = None, tty: Optional[bool] = None) -> Any:
    """Make ``func`` run as a background job: calling it starts a job and
    returns its ``Job`` at once, inside a request or outside one.

    Inside a request the job sees a copy of ``web.ctx`` and ``web.input()``;
    inside a ``@backgrounder`` handler the response becomes a redirect to it.
    ``executor``: ``"threads"``, ``"processes"`` or ``"rq"`` (default: the
    ``executor`` setting); ``queue="name"`` runs it on that RQ queue;
    ``timeout``: seconds after which it is stopped and ends ``failed``;
    ``retries``: an attempt that raises (or times out) runs again, as the same
    job, after ``retry_delay * backoff ** (k - 1)`` seconds (k: the attempt
    that failed), up to ``retries`` times; ``key``: a string, or a callable of
    the call's arguments giving one: while a job with the same key is queued or
    running, calling the function returns that job instead of starting another;
    ``tty``: it writes to a terminal (default: the ``tty`` setting; see the README).
    """
    if executor is None and queue is not None:
        executor = "rq"  # queue= has always meant RQ
    if executor is not None:
        check_executor(executor)
    check_timeout(timeout)
    check_tty(tty)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError("retries must be an int >= 0, not %r" % (retries,))
    for name, value in (("retry_delay", retry_delay), ("backoff", backoff)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError("%s must be a number >= 0, not %r" % (name, value))
    if key is not None and not (isinstance(key, str) or callable(key)):
        raise TypeError("key must be a string or a callable of the call's arguments, not %r" % (key,))
    if func is None:
        return functools.partial(background, executor=executor, queue=queue, timeout=timeout, retries=retries,
                                 retry_delay=retry_delay, backoff=backoff, key=key, tty=tty)
    executors.register_job_module(getattr(func, "__module__", None))

    @functools.wraps(func)
    def start(*args: Any, **kwargs: Any) -> Job:
        deployment.check_server(web.ctx.get("env"))  # a setup that cannot run jobs says so (0.4 µs)
        state: Optional[_RequestState] = getattr(_request, "state", None)
        first = state if state is not None and state.job is None else None
        jobs_runner = get_runner()
        ctx = _plain_ctx() if jobs_runner.executor(executor).plain_context else _snapshot_ctx()
        job_key = key(*args, **kwargs) if callable(key) else key
        if job_key is not None and not isinstance(job_key, str):
            raise TypeError("the key of a job must be a string, not %r" % (job_key,))
        owner = state.owner if state is not None else None
        job_id, new = jobs_runner.start(func, args, kwargs, sink=first.sink if first else None, ctx=ctx,
                                        executor=executor, queue=queue, timeout=timeout, retries=retries,
                                        retry_delay=retry_delay, backoff=backoff, tty=tty,
                                        key=None if job_key is None else _held_key(job_key, owner),
                                        owner=owner, page=state.page if state is not None else None,
                                        call=jobs.saved_call(func, args, kwargs))
        job = Job(job_id, jobs_runner)
        if first is not None:
            first.job, first.new = job, new
        return job

    return start


background.threaddb = threaddb  # type: ignore[attr-defined]


def _held_key(key: str, owner: Optional[str]) -> str:
    """The key as the store holds it: one per owner when the job has one (another
    owner's job is never the answer, nor revealed), else the key itself; a key
    held as written never starts with NUL, so the two kinds never meet."""
    if owner is None and not key.startswith("\0"):
        return key
    return "\0" + json.dumps([key] if owner is None else [owner, key])


# -- @backgrounder -------------------------------------------------------------


def _query() -> Dict[str, List[str]]:
    return parse_qs(web.ctx.env.get("QUERY_STRING", ""), keep_blank_values=True)


def _is_cancel(query: Dict[str, List[str]]) -> bool:
    """The page's Cancel button: ``POST ?_t=<id>&_action=cancel`` (never a GET)."""
    return web.ctx.method == "POST" and "_t" in query and query.get("_action") == ["cancel"]


def _identity(owner: Optional[Callable[[], Any]]) -> Optional[str]:
    """Who is asking, as ``@backgrounder(owner=...)`` tells; None without owner."""
    value = owner() if owner is not None else None
    return None if value is None else str(value)


class _Handler:
    """A @backgrounder handler method (a descriptor, so that it can give its
    class the POST that the job page's Cancel button needs)."""

    def __init__(self, func: Callable[..., Any], owner: Optional[Callable[[], Any]],
                 layout: Optional[Callable[[Any], Any]] = None) -> None:
        functools.update_wrapper(self, func)
        self.func, self.owner, self.layout = func, owner, layout

    def __set_name__(self, cls: type, name: str) -> None:
        existing = getattr(cls, "POST", None)
        if name != "POST" and not isinstance(existing, (_Handler, _CancelOnly)):
            setattr(cls, "POST", _CancelOnly(existing, self.owner))

    def __get__(self, obj: Any, cls: Optional[type] = None) -> Any:
        return self if obj is None else functools.partial(self.__call__, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        query = _query()
        if "_t" in query and web.ctx.method in ("GET", "HEAD"):
            return responses.serve(query, _identity(self.owner), self.layout)
        if _is_cancel(query):
            return responses.cancel(query, _identity(self.owner))
        return self._start(args, kwargs)

    def _start(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        state = _RequestState(_identity(self.owner))
        # what the handler writes goes where it would at once, and is kept to begin the first job it starts
        capture.route(state.sink, cancellable=False, tee=True)
        _request.state = state
        try:
            result = self.func(*args, **kwargs)
        except Busy:
            raise responses.error("503 Service Unavailable", "Too many jobs are waiting; try again shortly.",
                                  {"Retry-After": "5"})
        except StoreError as e:
            raise responses.store_unavailable(e)
        finally:
            _request.state = None
            capture.unroute()
            if state.job is not None and state.new:
                get_runner().flush_sink(state.job.id, state.sink)
        if state.job is not None:
            raise responses.see_this_page(_t=state.job.id)
        return result


class _CancelOnly:
    """The POST of a class whose GET is a @backgrounder: the Cancel button's
    ``POST ?_t=<id>&_action=cancel``, else the class's own POST (or 405)."""

    def __init__(self, post: Any, owner: Optional[Callable[[], Any]]) -> None:
        self.post, self.owner = post, owner

    def __get__(self, obj: Any, cls: Optional[type] = None) -> Any:
        def post(*args: Any, **kwargs: Any) -> Any:
            query = _query()
            if _is_cancel(query):
                return responses.cancel(query, _identity(self.owner))
            if self.post is None:
                allow = ", ".join(m for m in ("GET", "HEAD", "POST", "PUT", "DELETE") if hasattr(cls, m))
                raise responses.error("405 Method Not Allowed", "Method not allowed.", {"Allow": allow})
            return self.post.__get__(obj, cls)(*args, **kwargs)

        return post


@overload
def backgrounder(func: F) -> F: ...
@overload
def backgrounder(func: None = None, *, owner: Optional[Callable[[], Any]] = None,
                 layout: Optional[Callable[[Any], Any]] = None) -> Callable[[F], F]: ...


def backgrounder(func: Optional[F] = None, *, owner: Optional[Callable[[], Any]] = None,
                 layout: Optional[Callable[[Any], Any]] = None) -> Any:
    """Decorate a handler method: GET ``?_t=<id>`` serves that job; otherwise
    the handler runs, its printed output starts the first job it starts, and
    the response becomes ``303 See Other`` to the same URL with ``_t=<id>``.

    ``owner``: a callable giving the requester's identity (e.g. the session's
    user id); a job is then visible only to the owner that started it.
    ``layout``: the job page in this layout (as ``configure(layout=...)``, for
    this handler's jobs).
    """
    if layout is not None and not callable(layout):
        raise TypeError("layout must be a callable given the page's content, not %r" % (layout,))
    if func is None:
        return functools.partial(backgrounder, owner=owner, layout=layout)
    return _Handler(func, owner, layout)
