"""Where jobs run: a bounded pool of threads (the embedded default), or RQ workers."""

import collections
import importlib
import logging
import os
import pickle
import threading
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple


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


class RQExecutor:
    """Jobs enqueued on RQ queues, run by stock ``rq worker`` processes.

    The worker imports the job function's module, whose ``configure()`` call
    points it at the same Redis store, and runs the same job body as a thread
    would (capture, progress, cancellation).
    """

    def __init__(self, client: Any, default_queue: str = "default", result_ttl: float = 3600.0) -> None:
        try:
            import rq  # noqa: F401
        except ImportError:
            raise RuntimeError("the RQ executor needs rq: pip install 'web_background[rq]'") from None
        self.client = client
        self.default_queue = default_queue
        self.result_ttl = int(result_ttl)

    def enqueue(self, job_id: str, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any],
                ctx: Optional[Dict[str, Any]], queue: Optional[str]) -> None:
        """Put the job on its queue; raises at once (not in the worker, later)
        when the function cannot be imported there or the arguments do not pickle."""
        import rq

        ref = function_ref(func)
        try:
            pickle.dumps((args, kwargs, ctx))
        except Exception as e:
            raise TypeError("arguments of a job run by RQ must pickle: %s" % e) from None
        q = rq.Queue(queue or self.default_queue, connection=self.client)
        q.enqueue_call("web_background.executors.rq_entry", args=(job_id, ref, args, kwargs, ctx), job_id=job_id,
                       timeout=-1, result_ttl=self.result_ttl, failure_ttl=self.result_ttl,
                       description="%s (web_background job %s)" % (ref, job_id))

    def ended(self, job_id: str, started: bool) -> Optional[Tuple[str, Optional[str]]]:
        """``(status, error)`` when RQ knows the job ended without our body
        recording it (an import error, a dead work-horse), else None."""
        import rq
        from rq.job import JobStatus as RQStatus

        try:
            job = rq.job.Job.fetch(job_id, connection=self.client)
            status = job.get_status()
        except rq.exceptions.NoSuchJobError:
            return None
        if status in (RQStatus.STOPPED, RQStatus.CANCELED):
            return "cancelled", None
        if status == RQStatus.FAILED:
            result = job.latest_result()
            error = result.exc_string if result is not None else None
            return ("interrupted" if started else "failed"), error
        return None

    def cancel_queued(self, job_id: str) -> None:
        """Take a job off its queue so that it never starts."""
        import rq

        try:
            rq.job.Job.fetch(job_id, connection=self.client).cancel()
        except Exception:  # already taken by a worker: the flag stops it there
            pass


def function_ref(func: Callable[..., Any]) -> str:
    """``module:qualname`` of a @background function a worker can import."""
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        raise TypeError("a job run by RQ must be a function defined at module level in an importable "
                        "module (not __main__, not nested): %r" % (func,))
    found = _resolve("%s:%s" % (module, qualname))
    if getattr(found, "__wrapped__", found) is not func:
        raise TypeError("%s:%s is not the @background function %r" % (module, qualname, func))
    return "%s:%s" % (module, qualname)


def _resolve(ref: str) -> Any:
    module, qualname = ref.split(":", 1)
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def rq_entry(job_id: str, ref: str, args: Tuple[Any, ...], kwargs: Dict[str, Any],
             ctx: Optional[Dict[str, Any]]) -> Any:
    """What the RQ worker runs: import the job's module (and so its configure()),
    then run the job body here, in the work-horse."""
    import rq

    from . import jobs

    func = _resolve(ref)
    func = getattr(func, "__wrapped__", func)
    runner = jobs._runner()
    current = rq.get_current_job()
    share = getattr(runner.store, "share_connection", None)
    if current is not None and share is not None:
        share(current.connection)
    return runner.run_here(job_id, func, args, kwargs, ctx)
