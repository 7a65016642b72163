"""Where jobs run: the executor seam.

The runner talks to one small interface, ``Executor``; the thread pool
(``threads``), the process pool (``processes``) and RQ workers (``rq``) each
implement it in a module of their own, loaded by name when first used.
"""

import importlib
import pickle
import runpy
import signal
import sys
import types
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple, Type

from ..capture import Cancelled, TimedOut

if TYPE_CHECKING:
    from ..running import Running
    from ..runner import Runner

NAMES = ("threads", "processes", "rq")
job_modules: Set[str] = set()  # modules that define @background functions (a process pool preloads them)


class Executor:
    """Starts jobs, stops them, and says what became of a job whose runner vanished.

    ``local``: this process runs the job's body or collects its output and end
    (the runner then keeps a ``Running`` for it, flushes its output, watches its
    deadline and cancel flag).  ``plain_context``: the job gets the plain,
    picklable subset of ``web.ctx`` instead of a full copy.
    """

    name = ""
    local = True
    plain_context = False

    def __init__(self, runner: "Runner") -> None:
        self.runner = runner

    def prepare(self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any],
                ctx: Optional[Dict[str, Any]], queue: Optional[str]) -> Any:
        """Check the call at call time (raise ``TypeError`` for what cannot run
        there) and return what ``start`` needs."""
        return func, args, kwargs, ctx

    def start(self, running: "Running", call: Any) -> bool:
        """Run or queue the job; False (nothing started) when the queue is full."""
        raise NotImplementedError

    def stop(self, running: "Running", reason: Type[Cancelled]) -> None:
        """Raise ``reason`` inside the running job now (or as soon as it can be)."""

    def kill(self, running: "Running", record_end: Callable[[], None]) -> None:
        """The job did not end within ``cancel_grace`` of ``stop``: end it by force.
        ``record_end`` records the stopped end, for executors that cannot wait for it."""
        record_end()

    def arm(self, running: "Running") -> None:
        """A job is about to run in the calling thread of this process (an RQ work-horse)."""

    def disarm(self, running: "Running", ident: int) -> None:
        """The body of a job run in thread ``ident`` has returned: drop any stop still on its way."""

    def cancel_queued(self, job_id: str) -> bool:
        """A job queued elsewhere (not local): take it off its queue; True if it will never start."""
        return False

    def ended(self, record: Dict[str, Any]) -> Optional[Tuple[str, Optional[str]]]:
        """``(status, error)`` when the executor knows a queued job ended without
        its runner recording it (RQ: an import error, a dead work-horse); else None."""
        return None

    def drain(self, timeout: float) -> None:
        """This process is about to stop: move what its jobs wrote so far into their sinks."""

    def close(self) -> None:
        """Let work in progress end; start nothing new."""


def create(name: str, runner: "Runner") -> Executor:
    """The executor called ``name`` (one of ``NAMES``) for ``runner``."""
    if name not in NAMES:
        raise ValueError("executor must be one of %s, not %r" % (", ".join(NAMES), name))
    module = importlib.import_module("." + name, __name__)
    executor: Executor = module.EXECUTOR(runner)
    return executor


def register_job_module(module: Optional[str]) -> None:
    """Remember a module that defines @background functions."""
    if module:
        job_modules.add(module)


def function_ref(func: Callable[..., Any], allow_main: bool = False) -> str:
    """``module:qualname`` of a @background function another process can import."""
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if not module or (module == "__main__" and not allow_main) or "<" in qualname:
        raise TypeError("a job run in another process must be a function defined at module level in an importable "
                        "module (%snot nested): %r" % ("" if allow_main else "not __main__, ", func))
    if resolve("%s:%s" % (module, qualname)) is not func:
        raise TypeError("%s:%s is not the @background function %r" % (module, qualname, func))
    return "%s:%s" % (module, qualname)


def import_main(main_file: Optional[str] = None, main_module: Optional[str] = None) -> Any:
    """Run an app's main script (or ``-m`` module) as ``__mp_main__``, so that its
    ``if __name__ == "__main__":`` block does not run, and make it ``__main__``:
    its @background functions can then be found by name in another process."""
    main = types.ModuleType("__mp_main__")
    if main_module:
        main.__dict__.update(runpy.run_module(main_module, run_name="__mp_main__", alter_sys=True))
    elif main_file:
        main.__dict__.update(runpy.run_path(main_file, run_name="__mp_main__"))
    sys.modules["__main__"] = sys.modules["__mp_main__"] = main
    return main


def resolve(ref: str, main_file: Optional[str] = None, wrapper: bool = False) -> Any:
    """The function behind a ``function_ref``: the plain function, or with
    ``wrapper`` the @background function itself (its options come along).
    ``main_file``: the app's script, imported when ``__main__`` is not it."""
    module, qualname = ref.split(":", 1)
    obj: Any = importlib.import_module(module)
    if module == "__main__" and main_file and not hasattr(obj, qualname.split(".")[0]):
        obj = import_main(main_file)  # another process than the app's: its script
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj if wrapper else getattr(obj, "__wrapped__", obj)


def check_pickles(value: Any, what: str) -> bytes:
    """``value`` pickled, or a clear ``TypeError`` now rather than in the worker later."""
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        raise TypeError("arguments of a job run %s must pickle: %s" % (what, e)) from None


STOP_SIGNALS: Dict[Type[Cancelled], int] = {Cancelled: signal.SIGUSR1, TimedOut: signal.SIGUSR2}


def raise_on_stop_signals(armed: Callable[[], bool]) -> None:
    """In a process whose main thread runs one job: SIGUSR1 raises ``Cancelled``
    and SIGUSR2 ``TimedOut`` there (interrupting sleeps and blocking calls),
    while ``armed()`` says the job's body is running; once only."""
    fired: List[int] = []

    def handler(signum: int, frame: Any) -> None:
        if armed() and not fired:
            fired.append(signum)
            raise (TimedOut if signum == STOP_SIGNALS[TimedOut] else Cancelled)("job stopped")

    for signum in STOP_SIGNALS.values():
        signal.signal(signum, handler)
