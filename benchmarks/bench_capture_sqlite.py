"""capture-sqlite: the capture row with ``configure(store="sqlite:///<tmp>/jobs.db")``
(the output moved to SQLite in batches by the flusher thread)."""

import os
import shutil
import tempfile

from _harness import Row, ratio_row
from bench_capture import capture_rounds


def run(ctx):
    n = 1_000_000 * ctx.scale
    tmp = tempfile.mkdtemp(prefix="wb-bench-")
    try:
        a, b = capture_rounds("sqlite:///%s" % os.path.join(tmp, "jobs.db"), "SQLite", n,
                              3 if ctx.scale == 1 else 5, ctx.notes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [Row("capture-sqlite", *ratio_row("capture %dM lines, SQLite store" % (n // 1_000_000), a, b, "<=", 3.0))]
