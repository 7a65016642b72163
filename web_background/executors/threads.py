"""Jobs in a bounded pool of threads of this process (the default).

Cheap to start and able to share anything with the app, but not isolated: a
stop is raised in the job's thread asynchronously (``PyThreadState_SetAsyncExc``),
which reaches it at its next Python bytecode.  A thread stuck inside C past
``cancel_grace`` is abandoned: the job is recorded as stopped and the pool
starts a fresh thread in its place, so hung jobs never shrink the pool; past
``workers`` such threads, a stuck one keeps its slot instead, so that hung jobs
cannot grow the process without bound either.
"""

import collections
import ctypes
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Set, Type

from ..capture import Cancelled
from . import Executor

if TYPE_CHECKING:
    from ..running import Running

log = logging.getLogger("web_background")


def _async_raise(ident: int, exc: Optional[Type[BaseException]]) -> None:
    """Raise ``exc`` in thread ``ident`` at its next bytecode (None: drop one still pending)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc) if exc else None)


_greenlets: Dict[int, Any] = {}  # thread ident -> greenlet, for jobs running under gevent


def _greenlet() -> Any:
    """The running greenlet when gevent has patched threading (a job's "thread" is then
    a greenlet, which PyThreadState_SetAsyncExc cannot reach), else None."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return None
    import gevent

    return gevent.getcurrent()


def _throw_later(running: "Running", ident: int, glet: Any, reason: Type[Cancelled]) -> None:
    import gevent

    def throw() -> None:  # runs in the hub, while no greenlet runs: the check cannot race the job's end
        if running.ident == ident and not glet.dead:
            glet.throw(reason)

    gevent.get_hub().loop.run_callback(throw)


def raise_in_thread(running: "Running", reason: Type[Cancelled]) -> None:
    """Raise ``reason`` in the thread running the job's body, only while it runs it
    (never in the runner's code around it, nor in the thread's next job)."""
    with running.lock:
        if running.ident is not None:
            glet = _greenlets.get(running.ident)
            if glet is not None:
                _throw_later(running, running.ident, glet, reason)
            else:
                _async_raise(running.ident, reason)


def drop_pending(running: "Running", ident: int) -> None:
    """The body has returned: a stop still on its way must not land after it."""
    _async_raise(ident, None)


class ThreadPool:
    """``workers`` threads taking callables from a queue of at most ``queue_limit``.

    Threads are daemons started on first use in each process (never carried
    across a fork) and stop after ``shutdown()`` once the queue is empty.
    """

    def __init__(self, workers: int = 8, queue_limit: int = 100) -> None:
        if workers < 1 or queue_limit < 0:
            raise ValueError("workers must be >= 1 and queue_limit >= 0")
        self.workers = workers
        self.queue_limit = queue_limit
        self._queue: Deque[Optional[Callable[[], None]]] = collections.deque()
        self._cond = threading.Condition()
        self._threads: List[threading.Thread] = []
        self._abandoned: Set[threading.Thread] = set()
        self._held: Set[threading.Thread] = set()  # stuck in a stopped job, keeping their slot
        self._pid = 0
        self._active = 0  # callables taken by a thread and not yet returned (abandoned ones not counted)
        self._closed = False
        self._made = 0

    def submit(self, fn: Callable[[], None]) -> bool:
        """Queue ``fn``; False (nothing queued) when the queue is full."""
        with self._cond:
            if self._closed:
                raise RuntimeError("this pool was shut down")
            if self._pid != os.getpid():  # first use, or a forked child
                self._pid, self._threads, self._active = os.getpid(), [], 0
                self._queue.clear()
                self._abandoned.clear()
                self._held.clear()
            free = self.workers - self._active
            if len(self._queue) - free >= self.queue_limit:
                return False
            self._queue.append(fn)
            self._fill()
            self._cond.notify()
        return True

    def _fill(self) -> None:
        while len(self._threads) < self.workers:
            self._made += 1
            t = threading.Thread(target=self._work, name="web_background-%d" % self._made, daemon=True)
            self._threads.append(t)
            t.start()

    def abandon(self, thread: threading.Thread) -> bool:
        """Give back the slot of a thread stuck in a job: a fresh thread takes
        its place, and the stuck one ends once its job returns, if ever.  False
        (the thread keeps its slot) when ``workers`` threads are abandoned already."""
        with self._cond:
            if thread not in self._threads or self._closed:
                return True
            if len(self._abandoned) >= self.workers:
                self._held.add(thread)
                return False
            self._threads.remove(thread)
            self._abandoned.add(thread)
            self._active -= 1
            self._fill()
            if self._queue:
                self._cond.notify()
        return True

    def stuck(self) -> int:
        """Threads stuck in a stopped job that has not returned yet."""
        with self._cond:
            return len(self._abandoned) + len(self._held)

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                fn = self._queue.popleft()
                if fn is None:
                    return
                self._active += 1
            try:
                fn()
            except Exception:  # the job body records its own errors; keep the thread
                log.exception("job runner error")
            finally:
                with self._cond:
                    self._held.discard(me)
                    if me in self._abandoned:
                        self._abandoned.discard(me)
                        return
                    self._active -= 1

    def shutdown(self, wait: bool = False, timeout: Optional[float] = None) -> None:
        """Let the threads end once the queued work is done."""
        with self._cond:
            self._closed = True
            self._queue.extend([None] * len(self._threads))
            self._cond.notify_all()
            threads = list(self._threads)
        if wait:
            for t in threads:
                t.join(timeout)


class ThreadExecutor(Executor):
    """Jobs run by a ``ThreadPool`` of ``workers`` threads in this process."""

    name = "threads"

    def __init__(self, runner: Any) -> None:
        super().__init__(runner)
        self.pool = ThreadPool(runner.settings["workers"], runner.settings["queue_limit"])

    def start(self, running: "Running", call: Any) -> bool:
        func, args, kwargs, ctx = call

        def run() -> None:
            glet = _greenlet()
            if glet is not None:
                _greenlets[threading.get_ident()] = glet
            try:
                self.runner.run(running, func, args, kwargs, ctx)
            finally:
                _greenlets.pop(threading.get_ident(), None)

        return self.pool.submit(run)

    stop = staticmethod(raise_in_thread)  # type: ignore[assignment]
    disarm = staticmethod(drop_pending)  # type: ignore[assignment]

    def kill(self, running: "Running", record_end: Callable[[], None]) -> None:
        if running.thread is not None:
            if self.pool.abandon(running.thread):
                log.warning("job %s did not stop within cancel_grace; its thread is abandoned", running.id)
            else:
                log.warning("job %s did not stop within cancel_grace and keeps its thread: %d jobs are stuck in "
                            "threads that cannot be stopped, %d of them abandoned (the most this pool abandons); new "
                            "jobs wait for a free thread. executor='processes' stops such jobs for good",
                            running.id, self.pool.stuck(), self.pool.workers)
        record_end()

    def close(self) -> None:
        self.pool.shutdown()


EXECUTOR = ThreadExecutor
