"""The per-process maintenance thread of a runner: the pace of output into the
store, heartbeats, cancels made elsewhere, deadlines, the force past
``cancel_grace``, attempts that are due, and the expiry of old jobs."""

import logging
import time
from typing import TYPE_CHECKING, Set

from . import output
from .capture import Cancelled, TimedOut
from .running import Running
from .stores import PRUNE_SLICE, JobStatus

if TYPE_CHECKING:
    from .runner import Runner

log = logging.getLogger("web_background")
FLUSH_INTERVAL = 0.1  # seconds between batched writes of a job's output to the store
TICK = 0.01  # the shortest pause of the thread (a retry's wait between attempts uses it too)
HEARTBEAT_INTERVAL = 1.0  # seconds between "still alive" marks on this process's jobs (one batched write)
IDLE = 0.25  # the longest the thread sleeps (no job, or nothing due)
PRUNE_INTERVAL = 1.0  # seconds between passes over old jobs (a pass: slices back to back)


def maintain(runner: "Runner") -> None:
    """Write output out (batched every FLUSH_INTERVAL; a quiet job's next
    output at the next check), pick up cancels made elsewhere (one batched
    read a FLUSH_INTERVAL), stop jobs at their deadline and force those that do
    not stop within ``cancel_grace``, mark this process's jobs alive (one
    batched write a second), prune old jobs a slice at a time.  The thread
    sleeps until the next of these is due, or until woken (``runner.wake``)."""
    last_beat = last_check = last_prune = time.monotonic()
    more = False  # the last prune slice was full: the next goes at once
    while not runner.closed.is_set():
        runner.wake.wait(0.0 if more else _pause(runner, time.monotonic(), last_check, last_beat))
        runner.wake.clear()
        now = time.monotonic()
        beat, check = now - last_beat >= HEARTBEAT_INTERVAL, now - last_check >= FLUSH_INTERVAL
        last_beat, last_check = (now if beat else last_beat), (now if check else last_check)
        asked = cancel_check(runner) if check else set()
        for running in list(runner.local.values()):
            try:
                if running.final is not None:
                    runner.write_end(running)
                    continue
                if running.retry_at is not None and now >= running.retry_at:
                    running.retry_at = None
                    if not running.executor.start(running, running.call):
                        runner.finish(running, JobStatus.FAILED, error="no room to start its next attempt")
                if running.sink.size() > runner.store.max_output:  # a fast writer: memory stays bounded
                    output.trim(runner.store, running)
                if now - running.flushed >= FLUSH_INTERVAL and _has_news(running):
                    runner.flush(running)
                _watch(runner, running, now, running.id in asked)
            except Exception as e:  # kept in memory (see Runner.flush); tried again next time
                output.trouble(running, e)
        if beat:
            heartbeat(runner)
        if more or now - last_prune >= PRUNE_INTERVAL:
            last_prune = now
            more = prune_slice(runner)


def _has_news(running: Running) -> bool:
    """The job has output or progress the store does not have yet (a silent job costs no flush)."""
    return (running.sink.has_output() or running.progress is not None
            or bool(running.pending or running.skipped or running.cuts))


def _pause(runner: "Runner", now: float, last_check: float, last_beat: float) -> float:
    """How long the thread may sleep: until the next check, heartbeat, flush
    of pending output, deadline, attempt or force is due (at most IDLE)."""
    if not runner.local:
        return IDLE
    due = min(last_check + FLUSH_INTERVAL, last_beat + HEARTBEAT_INTERVAL)
    grace = runner.settings["cancel_grace"]
    for running in list(runner.local.values()):
        if running.final is not None:
            return 0.0
        if _has_news(running):
            due = min(due, running.flushed + FLUSH_INTERVAL)
        if running.retry_at is not None:
            due = min(due, running.retry_at)
        if running.stopping is None:
            if running.deadline is not None:
                due = min(due, running.deadline)
        elif not running.killed:
            due = min(due, running.stop_at + grace)
    return min(IDLE, max(TICK, due - now))


def heartbeat(runner: "Runner") -> None:
    """Mark every job of this process alive: one batched write to the store."""
    ids = [r.id for r in list(runner.local.values()) if r.final is None]
    if not ids:
        return
    try:
        runner.store.beat(ids, time.time())
    except Exception as e:
        log.error("could not mark %d jobs alive yet: %s", len(ids), e)


def cancel_check(runner: "Runner") -> Set[str]:
    """Which started jobs of this process were asked to stop elsewhere: one batched read."""
    ids = [r.id for r in list(runner.local.values()) if r.started and r.stopping is None and r.final is None]
    if not ids:
        return set()
    try:
        return runner.store.cancel_requested(ids)
    except Exception as e:
        log.error("could not check %d jobs for a cancel yet: %s", len(ids), e)
        return set()


def prune_slice(runner: "Runner") -> bool:
    """Drop one bounded slice of old jobs; True when there may be more."""
    try:
        return runner.prune() >= PRUNE_SLICE
    except Exception:
        log.exception("could not expire old jobs")
        return False


def _watch(runner: "Runner", running: Running, now: float, cancelled: bool) -> None:
    """Stop a started job when it is cancelled elsewhere or reaches its deadline;
    force one that was asked to stop ``cancel_grace`` ago."""
    if not running.started:
        return
    if running.stopping is None:
        if running.deadline is not None and now >= running.deadline:
            runner.stop(running, TimedOut)
        elif cancelled:
            runner.stop(running, Cancelled)
    elif not running.killed and now - running.stop_at >= runner.settings["cancel_grace"]:
        running.killed = True
        running.executor.kill(running, lambda: runner.finish_stopped(running))
