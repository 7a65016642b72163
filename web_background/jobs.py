"""Jobs as users see them: the ``Job`` handle, ``threaddb``, ``progress()``,
and the settings that bound them (``configure``).  Running them is the
runner's business (``runner.py``); nothing here knows about HTTP."""

import base64
import os
import pickle
import sys
import threading
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from . import executors, i18n
from .runner import Busy, Runner  # noqa: F401  (Busy: a public name, from here)
from .running import report_progress
from .stores import FINISHED, JobStatus

DEFAULTS: Dict[str, Any] = {
    "store": "memory://",
    "workers": 8,  # jobs running at once per process
    "queue_limit": 100,  # jobs waiting for a worker before Busy
    "ttl": 3600.0,  # seconds a finished job stays readable
    "max_jobs": 1000,  # finished jobs retained at most (oldest dropped first)
    "max_output": 1_000_000,  # characters of output retained per job (newest kept)
    "executor": executors.NAMES[0],  # where jobs run: one of executors.NAMES (threads first)
    "queue": "default",  # the RQ queue of jobs whose @background names none
    "stream_seconds": 15.0,  # a live stream gives its server thread back after this; the client resumes
    "max_streams": 4,  # live streams holding a server thread at once, per process
    "timeout": 0.0,  # seconds a job may run before it is stopped (0: no limit)
    "cancel_grace": 5.0,  # seconds a stopped job has to end before it is ended by force
    "nice": 10,  # how much lower the CPU priority of a job process is than the server's (0: the same)
    "tty": False,  # jobs write to a terminal (a pseudo-terminal for process jobs) unless @background says
    "tty_size": (120, 40),  # columns, rows of that terminal (and of the page's screen for the job)
}


def _from_environment(defaults: Dict[str, Any]) -> Dict[str, Any]:
    """Settings as the environment gives them: WEB_BACKGROUND_STORE,
    WEB_BACKGROUND_WORKERS, ... (one per setting), for operators and servers."""
    settings = dict(defaults)
    for key, default in defaults.items():
        raw = os.environ.get("WEB_BACKGROUND_" + key.upper())
        if raw:
            try:
                settings[key] = _setting_of(raw, default)
            except ValueError:
                raise ValueError("WEB_BACKGROUND_%s=%r is not a valid %s" % (key.upper(), raw, key)) from None
    return settings


def _setting_of(raw: str, default: Any) -> Any:
    """A setting from its environment variable's text: as ``default``'s type;
    booleans as 1/0, true/false, yes/no, on/off; a size as ``120x40``."""
    if isinstance(default, bool):
        words = {"1": True, "true": True, "yes": True, "on": True,
                 "0": False, "false": False, "no": False, "off": False}
        if raw.strip().lower() not in words:
            raise ValueError(raw)
        return words[raw.strip().lower()]
    if isinstance(default, tuple):
        return tuple(int(v) for v in raw.lower().replace(",", "x").split("x"))
    return type(default)(raw)


class Job:
    """A handle on one job, by id; every attribute reads the current state."""

    __slots__ = ("id", "get_runner")

    def __init__(self, job_id: str, runner: "Runner") -> None:
        self.id = job_id
        self.get_runner = runner

    def _get(self, field: str) -> Any:
        record = self.get_runner.record(self.id)
        if record is None:
            raise LookupError("job %s is no longer retained" % self.id)
        return record.get(field)

    @property
    def status(self) -> JobStatus:
        return JobStatus(self._get("status"))

    @property
    def output(self) -> str:
        """Everything retained that the job wrote (a cut is marked at the start)."""
        got = self.get_runner.read(self.id, 0)
        if got is None:
            raise LookupError("job %s is no longer retained" % self.id)
        return cut_marker(got[2]) + got[0]

    @property
    def result(self) -> Any:
        """The function's return value (from SQLite or Redis: as JSON, else its repr)."""
        return self._get("result")

    @property
    def error(self) -> Optional[str]:
        """The traceback of a failed job, else None."""
        return self._get("error")

    @property
    def progress(self) -> Optional[Dict[str, Any]]:
        """None, or ``{"done", "total", "message"}`` as the job last reported."""
        return self._get("progress")

    @property
    def attempt(self) -> int:
        """Which attempt runs (or ran last): 1, then 2, ... with ``retries``."""
        return self._get("attempt") or 1

    @property
    def attempts(self) -> int:
        """How many attempts the job may take: ``retries + 1``."""
        return self._get("attempts") or 1

    @property
    def created(self) -> float:
        return self._get("created")

    @property
    def started(self) -> Optional[float]:
        return self._get("started")

    @property
    def finished(self) -> Optional[float]:
        return self._get("finished")

    def cancel(self) -> bool:
        """Ask the job to stop; False when it has already ended (or is unknown)."""
        return self.get_runner.cancel(self.id)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the job has ended; False if ``timeout`` passed first."""
        return self.get_runner.wait(self.id, timeout)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        record = self.get_runner.record(self.id)
        return "<Job %s %s>" % (self.id, record["status"] if record else "expired")


def cut_marker(cut: int, _: Callable[[str], str] = str) -> str:
    """The line that stands for ``cut`` characters dropped by ``max_output``
    (``_``: a gettext, for the pages; the output itself keeps it in English)."""
    return _("[... %d earlier characters cut ...]") % cut + "\n" if cut else ""


class _ThreadDB(Mapping):
    """A read-only view of retained jobs: job id -> Job."""

    def __getitem__(self, job_id: str) -> Job:
        runner = get_runner()
        if not isinstance(job_id, str) or runner.record(job_id) is None:
            raise KeyError(job_id)
        return Job(job_id, runner)

    def __iter__(self) -> Iterator[str]:
        """Ids newest first, read from the store a batch at a time (its page query)."""
        runner = get_runner()
        runner.expire()
        return (r["id"] for r in runner.store.walk(ttl=runner.settings["ttl"]))

    def __len__(self) -> int:
        runner = get_runner()
        runner.expire()
        return runner.store.page(limit=0).matching or 0

    def __repr__(self) -> str:
        return "<threaddb %r>" % {k: str(v.status) for k, v in self.items()}


threaddb = _ThreadDB()

_state: Dict[str, Any] = {"settings": _from_environment(DEFAULTS), "runner": None, "layout": None}
_state_lock = threading.Lock()


def get_runner() -> Runner:
    runner = _state["runner"]
    if runner is None:
        with _state_lock:
            runner = _state["runner"]
            if runner is None:
                runner = _state["runner"] = Runner(_state["settings"])
    return runner


def _reset() -> None:
    """Drop the runner and its jobs (tests start each from nothing with it)."""
    with _state_lock:
        old, _state["runner"] = _state["runner"], None
    if old is not None:
        old.close()
    _state["layout"] = None
    i18n.fix(None)


def page_setting(name: str) -> Any:
    """A setting of how pages look (``layout``), which jobs never see."""
    return _state[name]


def configure(
    *,
    store: Any = None,
    workers: Optional[int] = None,
    queue_limit: Optional[int] = None,
    ttl: Optional[float] = None,
    max_jobs: Optional[int] = None,
    max_output: Optional[int] = None,
    executor: Optional[str] = None,
    queue: Optional[str] = None,
    stream_seconds: Optional[float] = None,
    max_streams: Optional[int] = None,
    timeout: Optional[float] = None,
    cancel_grace: Optional[float] = None,
    nice: Optional[int] = None,
    tty: Optional[bool] = None,
    tty_size: Optional[Tuple[int, int]] = None,
    layout: Optional[Callable[[Any], Any]] = None,
    language: Optional[str] = None,
) -> None:
    """Set where jobs are stored, where they run and how they are bounded;
    unnamed settings keep their value.  ``tty``: jobs write to a terminal of
    ``tty_size`` (columns, rows) unless their ``@background(tty=...)`` says.  Call it
    once at start-up, in the module that defines the jobs (RQ workers import it
    too): jobs running under the previous settings finish under them.

    ``layout``: a callable given a job page's content (``str()`` its HTML,
    ``.title`` its title) returning the whole page, e.g. Templetor's
    ``render.layout``; ``language``: the pages' words in this language (``"en"``,
    ``"zh_CN"``) instead of each request's ``Accept-Language`` (``"auto"``, the default).  Neither restarts
    the runner."""
    if layout is not None and not callable(layout):
        raise TypeError("layout must be a callable given the page's content, not %r" % (layout,))
    i18n.check_language(language)
    given = dict(store=store, workers=workers, queue_limit=queue_limit, ttl=ttl,
                 max_jobs=max_jobs, max_output=max_output, executor=executor, queue=queue,
                 stream_seconds=stream_seconds, max_streams=max_streams, timeout=timeout,
                 cancel_grace=cancel_grace, nice=nice, tty=tty, tty_size=tty_size)
    new = dict(_state["settings"], **{k: v for k, v in given.items() if v is not None})
    check_timeout(new["timeout"])
    for key in ("workers", "max_jobs", "max_output"):
        if not isinstance(new[key], int) or new[key] < 1:
            raise ValueError("%s must be a positive int, not %r" % (key, new[key]))
    for key in ("queue_limit", "max_streams"):
        if not isinstance(new[key], int) or new[key] < 0:
            raise ValueError("%s must be an int >= 0, not %r" % (key, new[key]))
    check_executor(new["executor"])
    check_tty(new["tty"])
    new["tty_size"] = check_tty_size(new["tty_size"])
    if isinstance(new["nice"], bool) or not isinstance(new["nice"], int) or not 0 <= new["nice"] <= 19:
        raise ValueError("nice must be an int from 0 to 19, not %r" % (new["nice"],))
    if not isinstance(new["queue"], str) or not new["queue"]:
        raise ValueError("queue must be a queue name, not %r" % (new["queue"],))
    for key in ("ttl", "stream_seconds", "cancel_grace"):
        if isinstance(new[key], bool) or not isinstance(new[key], (int, float)) or new[key] < 0:
            raise ValueError("%s must be a number of seconds >= 0, not %r" % (key, new[key]))
    if layout is not None:
        _state["layout"] = layout
    if language is not None:
        i18n.fix(None if language == "auto" else language)
    if _state["runner"] is not None and new == _state["settings"]:
        return  # the same settings again (web.py's debug reloader re-running the app module): keep the jobs
    runner = Runner(new)  # opens the store: a bad URL fails here, nothing changed
    with _state_lock:
        old, _state["runner"], _state["settings"] = _state["runner"], runner, new
    if old is not None:
        old.close()


_SAVED_CALL_LIMIT = 65536  # bytes of pickled arguments kept with a job so that it can be retried


def saved_call(func: Any, args: Any, kwargs: Any) -> Optional[str]:
    """The call as the record keeps it, so that an operator can make it again
    (``retry``): the function by name and its pickled arguments; None when the
    function cannot be found by name or the arguments do not pickle (or are big)."""
    try:
        ref = executors.function_ref(func, allow_main=True)
        main = sys.modules.get("__main__")
        main_file = getattr(main, "__file__", None) if ref.startswith("__main__:") else None
        data = pickle.dumps((ref, args, kwargs, main_file and os.path.abspath(main_file)))
    except Exception:
        return None
    return base64.b64encode(data).decode("ascii") if len(data) <= _SAVED_CALL_LIMIT else None


def retry(job_id: str) -> Job:
    """Start a new job with the same function and arguments as an ended one.

    Raises ``LookupError`` for a job no longer retained, ``ValueError`` for one
    still queued or running or whose call cannot be made again.
    """
    runner = get_runner()
    record = runner.record(job_id)
    if record is None:
        raise LookupError("job %s is no longer retained" % job_id)
    if record["status"] not in FINISHED:
        raise ValueError("job %s has not ended: it is %s" % (job_id, record["status"]))
    if not record.get("call"):
        raise ValueError("job %s cannot be retried: its function or its arguments were not kept" % job_id)
    try:
        ref, args, kwargs, main_file = pickle.loads(base64.b64decode(record["call"]))
        start = executors.resolve(ref, main_file, wrapper=True)
    except Exception as e:
        raise ValueError("job %s cannot be retried: %s" % (job_id, e)) from None
    new: Job = start(*args, **kwargs)
    if record.get("owner") is not None:  # the new job is its owner's too
        runner.store.update(new.id, owner=record["owner"])
    return new


def check_executor(name: Any) -> str:
    """``name`` if it names an executor, else a clear ValueError."""
    if name not in executors.NAMES:
        raise ValueError("executor must be one of %s, not %r" % (", ".join(executors.NAMES), name))
    return name


def check_tty(tty: Any) -> Optional[bool]:
    """``tty`` if it is None, True or False, else a clear TypeError."""
    if tty is not None and not isinstance(tty, bool):
        raise TypeError("tty must be True or False, not %r" % (tty,))
    return tty


def check_tty_size(size: Any) -> Tuple[int, int]:
    """``(columns, rows)`` if ``size`` is two ints from 2 to 1000, else a clear ValueError."""
    if not isinstance(size, (tuple, list)) or len(size) != 2 or \
            not all(isinstance(v, int) and not isinstance(v, bool) and 2 <= v <= 1000 for v in size):
        raise ValueError("tty_size must be (columns, rows), two ints from 2 to 1000, not %r" % (size,))
    return size[0], size[1]


def check_timeout(seconds: Any) -> Optional[float]:
    """``seconds`` if it is a valid timeout (None or a number >= 0), else a clear ValueError."""
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0):
        raise ValueError("timeout must be None or a number of seconds >= 0, not %r" % (seconds,))
    return seconds


def progress(done: float, total: Optional[float] = None, message: Optional[str] = None) -> None:
    """Report how far the current job has got (shown as a progress bar).

    Raises ``Cancelled`` when the job has been cancelled.
    """
    if isinstance(done, bool) or not isinstance(done, (int, float)) or done < 0:
        raise ValueError("progress done must be a number >= 0, not %r" % (done,))
    if total is not None and (isinstance(total, bool) or not isinstance(total, (int, float)) or total <= 0):
        raise ValueError("progress total must be None or a number > 0, not %r" % (total,))
    if message is not None and not isinstance(message, str):
        raise TypeError("progress message must be a str, not %r" % (message,))
    report_progress(done, total, message)
