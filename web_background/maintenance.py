"""The per-process maintenance thread of a runner: the pace of output into the
store, heartbeats, cancels made elsewhere, deadlines, the force past
``cancel_grace``, attempts that are due, and the expiry of old jobs."""

import logging
import time
from typing import TYPE_CHECKING

from . import output
from .capture import Cancelled, TimedOut
from .running import _Running
from .stores import JobStatus

if TYPE_CHECKING:
    from .runner import _Runner

log = logging.getLogger("web_background")
FLUSH_INTERVAL = 0.1  # seconds between batched writes of a job's output to the store
TICK = 0.01  # how soon output after a quiet spell is written (the first line, mostly)
HEARTBEAT_INTERVAL = 1.0  # seconds between "still alive" marks on this process's jobs


def maintain(runner: "_Runner") -> None:
    """Write output out (new output within a TICK when nothing was written
    for FLUSH_INTERVAL, else batched every FLUSH_INTERVAL), pick up cancels
    made elsewhere, stop jobs at their deadline and force those that do not
    stop within ``cancel_grace``, mark this process's jobs alive, expire old jobs."""
    last_beat = last_check = time.monotonic()
    while not runner._closed.is_set():
        runner._wake.wait(TICK if runner._local else 0.25)
        runner._wake.clear()
        now = time.monotonic()
        beat, check = now - last_beat >= HEARTBEAT_INTERVAL, now - last_check >= FLUSH_INTERVAL
        last_beat, last_check = (now if beat else last_beat), (now if check else last_check)
        for running in list(runner._local.values()):
            try:
                if running.final is not None:
                    runner._write_end(running)
                    continue
                if running.retry_at is not None and now >= running.retry_at:
                    running.retry_at = None
                    if not running.executor.start(running, running.call):
                        runner.finish(running, JobStatus.FAILED, error="no room to start its next attempt")
                if running.sink.size() > runner.store.max_output:  # a fast writer: memory stays bounded
                    output.trim(runner.store, running)
                if now - running.flushed >= FLUSH_INTERVAL and (check or running.sink.has_output()):
                    runner.flush(running)
                if beat:
                    runner.store.update(running.id, heartbeat=time.time())
                _watch(runner, running, now, check)
            except Exception as e:  # kept in memory (see _Runner.flush); tried again next time
                output.trouble(running, e)
        try:
            runner.expire(throttle=1.0)
        except Exception:
            log.exception("could not expire old jobs")

def _watch(runner: "_Runner", running: _Running, now: float, check: bool) -> None:
    """Stop a started job when it is cancelled elsewhere or reaches its deadline;
    force one that was asked to stop ``cancel_grace`` ago."""
    if not running.started:
        return
    if running.stopping is None:
        if running.deadline is not None and now >= running.deadline:
            runner._stop(running, TimedOut)
        elif check:
            record = runner.store.get(running.id)
            if record is not None and record["cancel"]:
                runner._stop(running, Cancelled)
    elif not running.killed and now - running.stop_at >= runner.settings["cancel_grace"]:
        running.killed = True
        running.executor.kill(running, lambda: runner.finish_stopped(running))
