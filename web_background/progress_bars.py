"""tqdm bars drive a job's progress: a bar in a job updates ``job.progress``
(``done``, ``total`` and its description as ``message``) with no change to the
job's code; with several bars, the outermost.  tqdm is never a dependency,
nor imported here: its bar class is followed once something imports it."""

import importlib.abc
import importlib.util
import sys
from typing import Any, Optional, Sequence

from . import running


def _follow(tqdm_class: Any) -> None:
    """Report every redraw of a bar made in a job."""
    display = tqdm_class.display
    if getattr(display, "_wb_follows", False):
        return

    def display_and_report(self: Any, *args: Any, **kwargs: Any) -> Any:
        shown = display(self, *args, **kwargs)
        if running.in_job():
            _report(self)
        return shown

    display_and_report._wb_follows = True  # type: ignore[attr-defined]
    tqdm_class.display = display_and_report


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


class _WhenImported(importlib.abc.MetaPathFinder):
    """Follows tqdm's bars as soon as ``tqdm.std`` is imported, by whom and whenever."""

    def find_spec(self, name: str, path: Optional[Sequence[str]] = None, target: Any = None) -> Any:
        if name != "tqdm.std":
            return None
        sys.meta_path.remove(self)  # find the real module, then follow it once it has run
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            exec_module = spec.loader.exec_module

            def exec_and_follow(module: Any) -> None:
                exec_module(module)
                _follow(module.tqdm)

            spec.loader.exec_module = exec_and_follow  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Follow tqdm's bars now if it is imported, else when it is."""
    if "tqdm.std" in sys.modules:
        _follow(sys.modules["tqdm.std"].tqdm)
    elif not any(isinstance(f, _WhenImported) for f in sys.meta_path):
        sys.meta_path.insert(0, _WhenImported())


install()
