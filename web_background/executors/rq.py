"""Jobs enqueued on RQ queues, run by stock ``rq worker`` processes.

The worker imports the job function's module, whose ``configure()`` call
points it at the same Redis store, and runs the same job body as a thread
would (capture, progress), in the work-horse's main thread: a stop is a
signal there, and past ``cancel_grace`` the work-horse is killed.
"""

import os
import signal
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple, Type

from ..capture import Cancelled
from ..stores import StoreError
from .threads import drop_pending, raise_in_thread
from . import STOP_SIGNALS, Executor, check_pickles, function_ref, raise_on_stop_signals, resolve

if TYPE_CHECKING:
    from ..running import Running


def _rq() -> Any:
    try:
        import rq
    except ImportError:
        raise RuntimeError("the RQ executor needs rq: pip install 'web_background[rq]'") from None
    return rq


class RQExecutor(Executor):
    """Enqueues jobs on RQ; the web process only reads what the work-horse writes to the store."""

    name = "rq"
    local = False
    plain_context = True

    def __init__(self, runner: Any) -> None:
        super().__init__(runner)
        _rq()
        self.client = getattr(runner.store, "client", None)
        if self.client is None:
            raise ValueError("running jobs on RQ needs a Redis store: configure(store='redis://host:port/db')")
        self.default_queue = runner.settings["queue"]
        self.result_ttl = int(runner.settings["ttl"])

    def prepare(self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any],
                ctx: Optional[Dict[str, Any]], queue: Optional[str]) -> Any:
        ref = function_ref(func)
        check_pickles((args, kwargs, ctx), "by RQ")
        return ref, args, kwargs, ctx, queue or self.default_queue

    def start(self, running: "Running", call: Any) -> bool:
        rq = _rq()
        ref, args, kwargs, ctx, queue = call
        try:
            rq.Queue(queue, connection=self.client).enqueue_call(
                "web_background.executors.rq.rq_entry", args=(running.id, ref, args, kwargs, ctx), job_id=running.id,
                timeout=-1, result_ttl=self.result_ttl, failure_ttl=self.result_ttl,
                description="%s (web_background job %s)" % (ref, running.id))
        except Exception as e:
            if type(e).__module__.startswith("redis"):
                raise StoreError("cannot enqueue on RQ: %s" % e) from None
            raise
        return True

    def cancel_queued(self, job_id: str) -> bool:
        rq = _rq()
        try:
            rq.job.Job.fetch(job_id, connection=self.client).cancel()
        except Exception:  # already taken by a worker: the store's cancel flag stops it there
            return False
        return True

    def ended(self, record: Dict[str, Any]) -> Optional[Tuple[str, Optional[str]]]:
        rq = _rq()
        from rq.job import JobStatus as RQStatus

        try:
            job = rq.job.Job.fetch(record["id"], connection=self.client)
            status = job.get_status()
        except rq.exceptions.NoSuchJobError:
            return None
        if status in (RQStatus.STOPPED, RQStatus.CANCELED):
            return "cancelled", None
        if status == RQStatus.FAILED:
            result = job.latest_result()
            return ("interrupted" if record.get("started") else "failed"), (
                result.exc_string if result is not None else None)
        return None


EXECUTOR = RQExecutor


class _WorkHorse(Executor):
    """The job as an RQ work-horse runs it: in its main thread, stopped by a
    signal to itself; past ``cancel_grace`` the work-horse ends itself."""

    name = "rq"

    def __init__(self, runner: Any) -> None:
        super().__init__(runner)
        # a worker class that runs jobs in threads is stopped as a thread job is
        self.in_main = threading.current_thread() is threading.main_thread()

    def start(self, running: "Running", call: Any) -> bool:
        running.rerun.set()  # the next attempt: rq_entry's loop runs it in the work-horse's main thread
        return True

    def arm(self, running: "Running") -> None:
        if self.in_main:
            raise_on_stop_signals(lambda: running.ident is not None)

    def stop(self, running: "Running", reason: Type[Cancelled]) -> None:
        if self.in_main:
            signal.pthread_kill(threading.main_thread().ident or 0, STOP_SIGNALS[reason])
        else:
            raise_in_thread(running, reason)

    def disarm(self, running: "Running", ident: int) -> None:
        if not self.in_main:
            drop_pending(running, ident)

    def kill(self, running: "Running", record_end: Callable[[], None]) -> None:
        record_end()
        os.kill(os.getpid(), signal.SIGKILL)


def rq_entry(job_id: str, ref: str, args: Tuple[Any, ...], kwargs: Dict[str, Any],
             ctx: Optional[Dict[str, Any]]) -> Any:
    """What the RQ worker runs: import the job's module (and so its configure()),
    then run the job body here, in the work-horse."""
    rq = _rq()
    from .. import jobs

    func = resolve(ref)
    runner = jobs.get_runner()
    current = rq.get_current_job()
    share = getattr(runner.store, "share_connection", None)
    if current is not None and share is not None:
        share(current.connection)
    return runner.run_here(job_id, func, args, kwargs, ctx, _WorkHorse(runner))
