"""A job's output on its way from its sink into the store (the runner and its
maintenance thread call these): what the store refuses waits in memory, at most
``max_output`` of it, and is written once the store is back; what comes faster
than the store takes is cut to ``max_output`` here, counted as cut, as the
store would cut it.  Knows only the ``Store`` interface and ``Running``."""

import logging
import time

from .running import Running
from .stores import Store

log = logging.getLogger("web_background")


def flush(store: Store, running: Running) -> None:
    """Move what the job wrote since the last flush into the store (what the
    store refuses stays in ``running.pending``, at most ``max_output`` of it)."""
    with running.flush_lock:
        running.flushed = time.monotonic()
        _take(store, running)
        if running.pending or running.skipped:
            store.append(running.id, running.pending, running.skipped)
            running.pending, running.skipped = "", 0
        progress = running.progress
        if progress is not None:
            store.update(running.id, progress=progress)
            if running.progress is progress:
                running.progress = None
        if running.store_failing:
            running.store_failing = False
            log.warning("job %s: the store takes its output again", running.id)


def trim(store: Store, running: Running) -> None:
    """Keep at most ``max_output`` of what the job wrote and the store has not
    taken yet, counting the rest as cut: a fast writer's output in memory stays bounded."""
    with running.flush_lock:
        _take(store, running)


def _take(store: Store, running: Running) -> None:
    """Move what the sink holds behind ``pending``, keeping only its newest
    ``max_output`` (the store could keep no more) and counting the rest as cut."""
    _count_cuts(running)
    text = running.pending + running.sink.drain()
    over = max(0, len(text) - store.max_output)
    running.pending, running.skipped = text[over:], running.skipped + over


def _count_cuts(running: Running) -> None:
    """Output a job's only writer cut (``running.cuts``, see ``processes``) came
    after ``pending`` and before what the sink holds now: ``pending`` is past
    ``max_output`` too."""
    cut = 0
    while running.cuts:
        cut += running.cuts.pop()
    if cut:
        running.pending, running.skipped = "", running.skipped + len(running.pending) + cut


def trouble(running: Running, e: Exception) -> None:
    """Log that the store refused a write for this job, once until it takes one again."""
    if not running.store_failing:
        running.store_failing = True
        log.error("job %s: could not write its output yet (kept in memory, up to max_output, and written "
                  "once the store is back): %s", running.id, e)
