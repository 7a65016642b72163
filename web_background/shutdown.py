"""When the web process is asked to stop (SIGTERM, as gunicorn's master and
systemd send; SIGINT) or exits: every job's output written so far goes to the
store and its jobs are recorded ``interrupted`` first; then the app's own
handler runs (or the signal's default).  Handlers can only be set from the main
thread: a runner made elsewhere gets them at its first job started there, and
the exit hook in any case.  Knows runners only as objects with ``process_stopping``."""

import atexit
import os
import signal
import threading
import weakref
from typing import Any, Dict

SIGNALS = (signal.SIGTERM, signal.SIGINT)
WAIT = 3.0  # seconds the stop waits for the store at most: a stuck store must not keep the process alive

_runners: "weakref.WeakSet[Any]" = weakref.WeakSet()
_previous: Dict[int, Any] = {}  # signal -> the handler ours runs after
_hooked = {"exit": False}


def watch(runner: Any) -> None:
    """Have ``runner.process_stopping(reason)`` called before this process stops."""
    _runners.add(runner)
    if not _hooked["exit"]:
        _hooked["exit"] = True
        atexit.register(_stopping, "the web process exited")
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in SIGNALS:
        current = signal.getsignal(signum)
        if current is _handler or current == signal.SIG_IGN or current is None:
            continue  # ours already; or ignored (this signal does not stop the process); or not Python's
        _previous[signum] = current
        signal.signal(signum, _handler)


def _handler(signum: int, frame: Any) -> None:
    _stopping("the web process (pid %d) was stopped by %s" % (os.getpid(), signal.Signals(signum).name))
    previous = _previous.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:  # the default: die of the signal, as without us
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _stopping(reason: str) -> None:
    """Tell every runner, from a thread of its own: the signal may have come while
    this thread holds a lock the runner needs (a flush in progress)."""
    runners = list(_runners)
    worker = threading.Thread(target=lambda: [r.process_stopping(reason) for r in runners],
                              name="web_background-stopping", daemon=True)
    worker.start()
    worker.join(WAIT)
