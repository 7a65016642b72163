"""Where jobs run: a bounded pool of threads (the embedded default)."""

import collections
import logging
import os
import threading
from typing import Callable, Deque, List, Optional


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
        self._pid = 0
        self._active = 0  # callables taken by a thread and not yet returned
        self._closed = False

    def submit(self, fn: Callable[[], None]) -> bool:
        """Queue ``fn``; False (nothing queued) when the queue is full."""
        with self._cond:
            if self._closed:
                raise RuntimeError("this pool was shut down")
            if self._pid != os.getpid():  # first use, or a forked child
                self._pid, self._threads, self._active = os.getpid(), [], 0
                self._queue.clear()
            free = self.workers - self._active
            if len(self._queue) - free >= self.queue_limit:
                return False
            self._queue.append(fn)
            while len(self._threads) < self.workers:
                t = threading.Thread(target=self._work, name="web_background-%d" % len(self._threads), daemon=True)
                self._threads.append(t)
                t.start()
            self._cond.notify()
        return True

    def _work(self) -> None:
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
                logging.getLogger("web_background").exception("job runner error")
            finally:
                with self._cond:
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
