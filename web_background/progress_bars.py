"""tqdm bars drive a job's progress: a bar in a job updates ``job.progress``
(``done``, ``total`` and its description as ``message``) with no change to the
job's code; with several bars, the outermost.  tqdm is never a dependency:
without it this does nothing."""

import importlib.util
from typing import Any

from . import capture, running

@capture.on_first_job
def install() -> None:
    """Follow every tqdm bar's redraws (a job process calls it too)."""
    if importlib.util.find_spec("tqdm") is None:
        return
    import tqdm.std

    display = tqdm.std.tqdm.display

    def display_and_report(self: Any, *args: Any, **kwargs: Any) -> Any:
        shown = display(self, *args, **kwargs)
        if running.in_job():
            _report(self)
        return shown

    tqdm.std.tqdm.display = display_and_report


def _report(bar: Any) -> None:
    """The outermost bar (the lowest position) of the job's thread is its progress."""
    position = abs(getattr(bar, "pos", 0) or 0)
    try:
        others = [abs(getattr(b, "pos", 0) or 0) for b in list(bar._instances)]
    except (AttributeError, TypeError):
        others = []
    if others and position > min(others):
        return
    total = bar.total if isinstance(bar.total, (int, float)) and bar.total > 0 else None
    done = bar.n if isinstance(bar.n, (int, float)) and bar.n >= 0 else 0
    message = bar.desc.rstrip(": ") if isinstance(bar.desc, str) else None
    running.report_progress(done, total, message or None)
